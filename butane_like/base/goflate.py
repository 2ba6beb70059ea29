"""Go's ``compress/gzip`` at ``BestCompression`` (what Butane compresses data URLs with), byte for byte.

Written from the algorithm of Go's ``compress/flate`` level 9 as Go 1.19 to 1.24 have it (their
sources differ only in form), and checked byte for byte against Go 1.19 and against Butane v0.29.0
built with Go 1.24 (tests/conformance/test_goflate.py):

- matching: a hash of the next 4 bytes (17 bits, multiplicative) chains every earlier position
  with the same hash; a search walks at most 4096 chain entries within the 32 KiB window, keeps the
  nearest of the longest matches (length 4 only within 4096 bytes), stops at 258; lazy matching
  with one byte of look-ahead; Go's window of 64 KiB slides by 32 KiB, and a slide cuts the
  window a search may reach and the stored-block option of the block it passes;
- blocks of at most 16384 tokens, each the smallest of stored / fixed / dynamic Huffman as Go
  estimates them (extra bits only counted when the block could be stored), and an empty final
  block (see ``deflate``: its form is what changed in Go 1.26, which the Butane release uses);
- Huffman code lengths by Go's length-limited construction (bit counts per level, leaves sorted
  by frequency then symbol, codes assigned in symbol order within a length).

Pure Python: ~0.1-0.5 MB/s on this machine, so ``dataurl`` bounds its use by size.
"""

from __future__ import annotations

import zlib
from operator import mul

_WINDOW = 1 << 15
_MAX_MATCH = 258
_CHAIN = 4096
_MAX_TOKENS = 1 << 14
_MAX_STORED = 65535
_MAXINT32 = (1 << 31) - 1
_MATCH = 1 << 30
_EOB = 256
# The header Go's gzip writer puts at BestCompression: no name or time, XFL 2, OS 255 (unknown).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"

# DEFLATE's length and distance codes (RFC 1951 3.2.5), by length-3 and distance-1.
_LEN_EXTRA = [0] * 8 + [c // 4 - 1 for c in range(8, 28)] + [0]
_LEN_BASE = [0]
for _c in range(27):
    _LEN_BASE.append(_LEN_BASE[-1] + (1 << _LEN_EXTRA[_c]))
_LEN_BASE.append(255)  # length 258 has a code of its own
_LEN_CODE = [0] * 256
for _c, _b in enumerate(_LEN_BASE):
    for _x in range(_b, _LEN_BASE[_c + 1] if _c < 28 else 256):
        _LEN_CODE[_x] = _c
_OFF_EXTRA = [0, 0, 0, 0] + [c // 2 - 1 for c in range(4, 30)]
_OFF_BASE = [0, 1, 2, 3] + [(2 | (c & 1)) << (c // 2 - 1) for c in range(4, 30)]
_CODEGEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


def _off_code(x: int) -> int:
    if x < 4:
        return x
    nb = x.bit_length() - 1
    return 2 * nb + ((x >> (nb - 1)) & 1)


_REV8 = [int(f"{b:08b}"[::-1], 2) for b in range(256)]


def _reverse(code: int, nbits: int) -> int:
    """The low ``nbits`` bits of ``code`` in reverse order (DEFLATE sends Huffman codes MSB first)."""
    return (_REV8[code & 0xFF] << 8 | _REV8[code >> 8]) >> (16 - nbits)


class _Code:
    """A Huffman code: bit lengths and (bit-reversed) codes per symbol."""

    __slots__ = ("codes", "lens")

    def __init__(self, lens: list[int], codes: list[int]) -> None:
        self.lens = lens
        self.codes = codes

    def bit_length(self, freq: list[int]) -> int:
        return sum(map(mul, freq, self.lens))


def _fixed_literal() -> _Code:
    lens, codes = [], []
    for ch in range(286):
        if ch < 144:
            bits, size = ch + 48, 8
        elif ch < 256:
            bits, size = ch + 400 - 144, 9
        elif ch < 280:
            bits, size = ch - 256, 7
        else:
            bits, size = ch + 192 - 280, 8
        lens.append(size)
        codes.append(_reverse(bits, size))
    return _Code(lens, codes)


_FIXED_LIT = _fixed_literal()
_FIXED_OFF = _Code([5] * 30, [_reverse(c, 5) for c in range(30)])


def _bit_counts(freqs: list[int], max_bits: int) -> list[int]:
    """How many symbols get each code length (index = length), for ``freqs`` sorted ascending:
    Go's construction, which walks the levels of a length-limited tree from the deepest up."""
    n = len(freqs)
    f = freqs + [_MAXINT32]
    max_bits = min(max_bits, n - 1)
    last = [0] * 17
    next_char = [0] * 17
    next_pair = [0] * 17
    needed = [0] * 17
    leaves = [[0] * 16 for _ in range(16)]
    for level in range(1, max_bits + 1):
        last[level] = f[1]
        next_char[level] = f[2]
        next_pair[level] = f[0] + f[1] if level != 1 else _MAXINT32
        leaves[level][level] = 2
    needed[max_bits] = 2 * n - 4
    level = max_bits
    while True:
        if next_pair[level] == _MAXINT32 and next_char[level] == _MAXINT32:
            needed[level] = 0
            next_pair[level + 1] = _MAXINT32
            level += 1
            continue
        prev_freq = last[level]
        if next_char[level] < next_pair[level]:
            k = leaves[level][level] + 1
            last[level] = next_char[level]
            leaves[level][level] = k
            next_char[level] = f[k]
        else:
            last[level] = next_pair[level]
            leaves[level][:level] = leaves[level - 1][:level]
            needed[level - 1] = 2
        needed[level] -= 1
        if needed[level] == 0:
            if level == max_bits:
                break
            next_pair[level + 1] = prev_freq + last[level]
            level += 1
        else:
            while needed[level - 1] > 0:
                level -= 1
    counts = leaves[max_bits]
    return [0] + [counts[lv] - counts[lv - 1] for lv in range(max_bits, 0, -1)]


def _huffman(freq: list[int], max_bits: int) -> _Code:
    lens = [0] * len(freq)
    codes = [0] * len(freq)
    used = [(f, sym) for sym, f in enumerate(freq) if f]
    if len(used) <= 2:
        for i, (_, sym) in enumerate(used):
            lens[sym], codes[sym] = 1, i
        return _Code(lens, codes)
    used.sort()
    code = 0
    for nbits, count in enumerate(_bit_counts([f for f, _ in used], max_bits)):
        code <<= 1
        if nbits == 0 or count == 0:
            continue
        # The most frequent symbols left get this (shortest remaining) length, in symbol order.
        for sym in sorted(sym for _, sym in used[len(used) - count :]):
            lens[sym], codes[sym] = nbits, _reverse(code, nbits)
            code += 1
        del used[len(used) - count :]
    return _Code(lens, codes)


class _BitWriter:
    __slots__ = ("acc", "nbits", "out")

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.nbits = 0

    def bits(self, value: int, n: int) -> None:
        self.acc |= value << self.nbits
        self.nbits += n
        if self.nbits >= 48:
            self.out += (self.acc & 0xFFFFFFFFFFFF).to_bytes(6, "little")
            self.acc >>= 48
            self.nbits -= 48

    def align(self) -> None:
        nbytes = (self.nbits + 7) // 8
        self.out += self.acc.to_bytes(nbytes, "little")
        self.acc = self.nbits = 0

    def stored(self, data: bytes | None, length: int, final: bool) -> None:
        self.bits(1 if final else 0, 3)
        self.align()
        self.bits(length | (length ^ 0xFFFF) << 16, 32)
        self.align()
        if data:
            self.out += data


def _codegen(lit_lens: list[int], off_lens: list[int]) -> tuple[list[int], list[int]]:
    """The run-length coded code lengths (symbols with their extra values inline) and the
    frequency of each of the 19 code-length symbols, as Go forms the runs."""
    sizes = lit_lens + off_lens + [255]
    out: list[int] = []
    freq = [0] * 19
    size = sizes[0]
    count = 1
    i = 1
    while size != 255:
        nxt = sizes[i]
        i += 1
        if nxt == size:
            count += 1
            continue
        if size != 0:
            out.append(size)
            freq[size] += 1
            count -= 1
            while count >= 3:
                k = min(6, count)
                out += (16, k - 3)
                freq[16] += 1
                count -= k
        else:
            while count >= 11:
                k = min(138, count)
                out += (18, k - 11)
                freq[18] += 1
                count -= k
            if count >= 3:
                out += (17, count - 3)
                freq[17] += 1
                count = 0
        out += [size] * count
        freq[size] += count
        size = nxt
        count = 1
    return out, freq


def _write_block(w: _BitWriter, tokens: list[int], window: bytes | None) -> None:
    """One non-final block of ``tokens``: stored, fixed or dynamic, whichever Go estimates smallest."""
    lit_freq = [0] * 286
    off_freq = [0] * 30
    for t in tokens:
        if t < _MATCH:
            lit_freq[t] += 1
        else:
            lit_freq[257 + _LEN_CODE[(t - _MATCH) >> 22]] += 1
            off_freq[_off_code(t & 0x3FFFFF)] += 1
    lit_freq[_EOB] += 1
    n_lit = 286
    while lit_freq[n_lit - 1] == 0:
        n_lit -= 1
    n_off = 30
    while n_off > 0 and off_freq[n_off - 1] == 0:
        n_off -= 1
    if n_off == 0:
        off_freq[0] = 1
        n_off = 1
    lit = _huffman(lit_freq, 15)
    off = _huffman(off_freq, 15)
    storable = window is not None and len(window) <= _MAX_STORED
    extra = 0
    if storable:
        extra = sum(lit_freq[c] * _LEN_EXTRA[c - 257] for c in range(265, n_lit))
        extra += sum(off_freq[c] * _OFF_EXTRA[c] for c in range(4, n_off))
    size = 3 + _FIXED_LIT.bit_length(lit_freq) + _FIXED_OFF.bit_length(off_freq) + extra
    codegen, cg_freq = _codegen(lit.lens[:n_lit], off.lens[:n_off])
    cg = _huffman(cg_freq, 7)
    n_cg = 19
    while n_cg > 4 and cg_freq[_CODEGEN_ORDER[n_cg - 1]] == 0:
        n_cg -= 1
    dynamic = 3 + 5 + 5 + 4 + 3 * n_cg + cg.bit_length(cg_freq) + cg_freq[16] * 2 + cg_freq[17] * 3
    dynamic += cg_freq[18] * 7 + lit.bit_length(lit_freq) + off.bit_length(off_freq) + extra
    lit_code, off_code = _FIXED_LIT, _FIXED_OFF
    if dynamic < size:
        size, lit_code, off_code = dynamic, lit, off
    if storable and window is not None and (len(window) + 5) * 8 < size:
        w.stored(window, len(window), False)
        return
    if lit_code is _FIXED_LIT:
        w.bits(2, 3)
    else:
        w.bits(4, 3)
        w.bits(n_lit - 257, 5)
        w.bits(n_off - 1, 5)
        w.bits(n_cg - 4, 4)
        for i in range(n_cg):
            w.bits(cg.lens[_CODEGEN_ORDER[i]], 3)
        it = iter(codegen)
        for sym in it:
            w.bits(cg.codes[sym], cg.lens[sym])
            if sym >= 16:
                w.bits(next(it), (2, 3, 7)[sym - 16])
    _write_tokens(w, tokens, lit_code, off_code)


def _write_tokens(w: _BitWriter, tokens: list[int], lit: _Code, off: _Code) -> None:
    lcodes, llens, ocodes, olens = lit.codes, lit.lens, off.codes, off.lens
    out = w.out
    acc, nbits = w.acc, w.nbits
    for t in tokens:
        if t < _MATCH:
            acc |= lcodes[t] << nbits
            nbits += llens[t]
        else:
            xlen = (t - _MATCH) >> 22
            lc = _LEN_CODE[xlen]
            acc |= lcodes[257 + lc] << nbits
            nbits += llens[257 + lc]
            eb = _LEN_EXTRA[lc]
            if eb:
                acc |= (xlen - _LEN_BASE[lc]) << nbits
                nbits += eb
            xoff = t & 0x3FFFFF
            oc = _off_code(xoff)
            acc |= ocodes[oc] << nbits
            nbits += olens[oc]
            eb = _OFF_EXTRA[oc]
            if eb:
                acc |= (xoff - _OFF_BASE[oc]) << nbits
                nbits += eb
        if nbits >= 48:
            out += (acc & 0xFFFFFFFFFFFF).to_bytes(6, "little")
            acc >>= 48
            nbits -= 48
    acc |= lcodes[_EOB] << nbits
    w.acc, w.nbits = acc, nbits + llens[_EOB]


def _chains(data: bytes) -> tuple[list[int], dict[int, int]]:
    """Go's hash chains: for every position the previous one whose next 4 bytes hash alike (-1:
    none; Go inserts every position but the last three, in order), and, where a chain is longer
    than a search may walk, the oldest position the walk reaches."""
    n = len(data)
    head = [-1] * n
    floor: dict[int, int] = {}
    chains: dict[int, list[int]] = {}
    get = chains.get
    word = int.from_bytes(data[:3], "big")
    for pos in range(n - 3):
        word = ((word << 8) | data[pos + 3]) & 0xFFFFFFFF
        h = ((word * 0x1E35A7BD) & 0xFFFFFFFF) >> 15
        chain = get(h)
        if chain is None:
            chains[h] = [pos]
            continue
        head[pos] = chain[-1]
        if len(chain) >= _CHAIN:
            floor[pos] = chain[-_CHAIN]
        chain.append(pos)
    return head, floor


def deflate(data: bytes, go124_end: bool = False) -> bytes:
    """Raw DEFLATE of ``data`` as Go's ``flate.NewWriter(w, 9)`` writes it in one Write and Close.

    The stream ends with an empty final block: stored (5 bytes) up to Go 1.24 (``go124_end``),
    fixed-Huffman (10 bits) from Go 1.26, whose rewritten compressor made the Butane v0.29.0
    release. Go 1.26 also picks matches by estimated gain over 1024 chain entries: where that
    finds other matches the bytes differ (20 of the 91 gzip contents of the real-world corpus).
    """
    n = len(data)
    # Small inputs: no chain can hold more entries than a search walks, so the nearest earlier
    # occurrence of the next 4 bytes (rfind) is where the useful part of Go's walk starts.
    head, floor = _chains(data) if n > _CHAIN + 3 else (None, {})
    w = _BitWriter()
    tokens: list[int] = []
    append = tokens.append
    base = 0  # absolute position of Go's window start: it slides while input remains to fill
    slide_at = base + 2 * _WINDOW - 261 if n > 2 * _WINDOW else n + 1
    block_start: int | None = 0
    index = 0
    length = 3
    offset = 0
    byte_available = False
    from_bytes = int.from_bytes

    def flush_block(end: int) -> None:
        nonlocal block_start
        window = data[block_start:end] if block_start is not None else None
        block_start = end
        _write_block(w, tokens, window)
        tokens.clear()

    while True:
        if index >= slide_at:
            base += _WINDOW
            slide_at = base + 2 * _WINDOW - 261 if n > base + 2 * _WINDOW else n + 1
            if block_start is not None and block_start < base:
                block_start = None
        lookahead = n - index
        if lookahead == 0:
            if byte_available:
                append(data[index - 1])
            if tokens:
                flush_block(index)
            break
        prev_length, prev_offset = length, offset
        length, offset = 3, 0
        lo = index - _WINDOW
        if lo < base:
            lo = base
        if lookahead <= prev_length or prev_length >= _MAX_MATCH or index >= n - 3:
            i = -1
        elif head is None:
            i = data.rfind(data[index : index + 4], lo, index + 3)
        else:
            i = head[index]
        if i >= lo:
            # Go walks the chain from i, nearest first, at most 4096 entries, keeping a longer
            # match only: the result is the nearest of the longest matches among the entries it
            # walks. Only entries with the same 4 bytes can match, and a search for the next
            # longer match from the last found finds that nearest one (C-speed rfind).
            if index in floor and floor[index] > lo:
                lo = floor[index]
            look = _MAX_MATCH if lookahead > _MAX_MATCH else lookahead
            need = 4
            if data[i : i + 4] != data[index : index + 4]:
                i = data.rfind(data[index : index + 4], lo, i + 3)
            while i >= lo:
                a = data[i : i + look]
                b = data[index : index + look]
                if a == b:
                    m = look
                else:
                    x = from_bytes(a, "little") ^ from_bytes(b, "little")
                    m = ((x & -x).bit_length() - 1) >> 3
                if m > 4 or index - i <= 4096:  # a match of 4 only within 4096 bytes
                    length = m
                    offset = index - i
                need = m + 1
                if need > look:
                    break
                i = data.rfind(data[index : index + need], lo, i - 1 + need)
        if prev_length >= 4 and length <= prev_length:
            append(_MATCH | (prev_length - 3) << 22 | (prev_offset - 1))
            index += prev_length - 1
            byte_available = False
            length = 3
            if len(tokens) == _MAX_TOKENS:
                flush_block(index)
        else:
            if byte_available:
                append(data[index - 1])
                if len(tokens) == _MAX_TOKENS:
                    flush_block(index)
            index += 1
            byte_available = True
    if go124_end:
        w.stored(None, 0, True)
    else:
        w.bits(3, 3 + 7)  # final, fixed Huffman; end of block is code 0 (7 bits)
        w.align()
    return bytes(w.out)


def gzip(data: bytes, go124_end: bool = False) -> bytes:
    """``data`` gzipped as Go's ``gzip.NewWriterLevel(w, gzip.BestCompression)`` writes it (see
    ``deflate`` for the Go versions)."""
    crc = zlib.crc32(data)
    trailer = crc.to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return GZIP_HEADER + deflate(data, go124_end) + trailer
