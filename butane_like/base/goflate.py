"""Go's ``compress/gzip`` at ``BestCompression`` (what Butane compresses data URLs with), byte for byte.

Butane's v0.29.0 release is built with Go 1.27, whose ``compress/flate`` was rewritten (Go 1.7-1.26
wrote other bytes); this is its level 9, for one Write of at most 64 KiB and Close, written from the
algorithm and checked byte for byte against Go 1.27 (tests/conformance/test_goflate.py):

- matching: every position but the last three joins a chain of earlier positions whose next 4
  bytes hash alike (17 bits of the little-endian word times 2654435761); a search walks at most
  1024 entries within 32 KiB and keeps a longer match only when its estimated gain is larger
  (the literals' bits in a Huffman code of the first 32 KiB's bytes, minus the extra bits and 3);
  lazy matching with one byte of look-ahead, a second look at the match's end before emitting it,
  and unsearched literals after more than 1024 in a row;
- blocks of at most 32768 tokens, each stored, fixed (under 250 tokens) or dynamic Huffman as Go
  1.27 estimates them, and an empty fixed-Huffman final block;
- Huffman code lengths by Go's length-limited construction (bit counts per level, leaves sorted
  by frequency then symbol, codes assigned in symbol order within a length).

Pure Python: ~30-300 KB/s on this machine, so ``dataurl`` bounds its use by size.
"""

from __future__ import annotations

import zlib
from collections import Counter
from itertools import accumulate
from operator import mul

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WINDOW = 1 << 15
_MAX_MATCH = 258
_CHAIN = 1024  # chain entries a search walks at level 9
_MAX_TOKENS = 1 << 15  # tokens per block
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


def _block(w: _BitWriter, tokens: list[int], window: bytes) -> None:
    """One block as Go 1.27's writeBlockDynamic writes it when it starts a new table (always, at
    the end of a stream): dynamic Huffman, unless fixed (under 250 tokens) or stored is not larger."""
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
    storable = len(window) <= _MAX_STORED
    stored = (len(window) + 5) * 8
    extra = 0
    if storable:
        extra = sum(map(mul, lit_freq[257:], _LEN_EXTRA)) + sum(map(mul, off_freq, _OFF_EXTRA))
    lit = _huffman(lit_freq, 15)
    off = _huffman(off_freq, 15)
    codegen, cg_freq = _codegen(lit.lens[:n_lit], off.lens[:n_off])
    cg = _huffman(cg_freq, 7)
    n_cg = 19
    while n_cg > 4 and cg_freq[_CODEGEN_ORDER[n_cg - 1]] == 0:
        n_cg -= 1
    size = 3 + 5 + 5 + 4 + 3 * n_cg + cg.bit_length(cg_freq) + cg_freq[16] * 2 + cg_freq[17] * 3
    size += cg_freq[18] * 7 + lit.bit_length(lit_freq) + off.bit_length(off_freq) + extra
    if len(tokens) + 1 < 250:
        fixed = 3 + _FIXED_LIT.bit_length(lit_freq) + _FIXED_OFF.bit_length(off_freq) + extra
        if fixed <= size:
            if storable and stored <= fixed:
                w.stored(window, len(window), False)
            else:
                w.bits(2, 3)
                _write_tokens(w, tokens, _FIXED_LIT, _FIXED_OFF)
            return
    if storable and stored <= size:
        w.stored(window, len(window), False)
        return
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
    _write_tokens(w, tokens, lit, off)


def _chains(data: bytes) -> tuple[list[int], list[int], list[list[int]]]:
    """Go's hash chains (all positions but the last three are inserted, in order): for every
    position the previous one whose next 4 bytes hash alike (-1: none), its rank in its chain,
    and the chain (a list of positions) it belongs to."""
    n = len(data)
    prev = [-1] * n
    rank = [0] * n
    chain_of: list[list[int]] = [[]] * n
    chains: dict[int, list[int]] = {}
    for pos in range(n - 3):
        h = ((int.from_bytes(data[pos : pos + 4], "little") * 2654435761) & 0xFFFFFFFF) >> 15
        chain = chains.get(h)
        if chain is None:
            chain = chains[h] = []
        else:
            prev[pos] = chain[-1]
        rank[pos] = len(chain)
        chain.append(pos)
        chain_of[pos] = chain
    return prev, rank, chain_of


def _gain_off_extra(dist: int) -> int:
    """The extra bits Go 1.27 charges a match at ``dist`` when it weighs it: it looks the code up
    by distance, not distance-1, and its table of far codes wraps at 32768 (to code 14)."""
    if dist < 256:
        return _OFF_EXTRA[_off_code(dist)]
    return _OFF_EXTRA[_off_code((dist >> 7) & 0xFF) + 14]


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE of ``data`` (at most 64 KiB) as Go 1.27's ``flate.NewWriter(w, 9)`` writes it
    in one Write and Close: everything is encoded at Close, in blocks of at most 32768 tokens."""
    n = len(data)
    if n > 2 * _WINDOW:
        raise ValueError("goflate: more than 64 KiB is written in several steps by Go; not emulated")
    w = _BitWriter()
    tokens: list[int] = []
    add = tokens.append
    block_start = 0

    def flush(end: int) -> None:
        nonlocal block_start
        _block(w, tokens, data[block_start:end])
        block_start = end
        tokens.clear()

    prev, rank, chain_of = _chains(data) if n > 3 else ([-1] * n, [0] * n, [])
    # What a literal costs in Go's estimate: its code length in a Huffman code of the first
    # 32 KiB's byte histogram, at least 1 bit; as prefix sums, so a match's literals cost a subtraction.
    hist = [0] * 256
    for b, c in Counter(data[:_MAX_TOKENS]).items():
        hist[b] = c
    costs = bytes(max(1, x) for x in _huffman(hist, 15).lens) if n else bytes(256)
    cum = [0, *accumulate(data.translate(costs))]
    from_bytes = int.from_bytes
    max_insert = n - 3
    index = 0
    length, offset = 3, 0
    byte_available = False
    literals = 0  # consecutive literals (Go's uint16 counter)

    def match_len(i: int, j: int, most: int) -> int:
        a, b = data[i : i + most], data[j : j + most]
        if a == b:
            return most
        x = from_bytes(a, "little") ^ from_bytes(b, "little")
        return ((x & -x).bit_length() - 1) >> 3

    while True:
        lookahead = n - index
        if lookahead == 0:
            if byte_available:
                add(data[index - 1])
            if tokens:
                flush(index)
            break
        prev_length, prev_offset = length, offset
        length, offset = 3, 0
        lo = index - _WINDOW if index > _WINDOW else 0
        i = prev[index] if index < max_insert else -1
        if i >= lo and lookahead > prev_length and prev_length < _MAX_MATCH:
            # Go walks the chain from i (at most 1024 entries), nearest first, and keeps a match
            # longer than the last kept whose estimated gain is larger. A longer match of a
            # candidate that lost can only win further on, so the nearest candidate matching
            # more than the last one tried is the only one worth a look (C-speed rfind).
            floor = lo
            r = rank[i]
            if r >= 1023 and chain_of[i][r - 1023] > floor:
                floor = chain_of[i][r - 1023]
            look = _MAX_MATCH if lookahead > _MAX_MATCH else lookahead
            gain = 4
            tried_edge = nice = False
            if data[i : i + 4] != data[index : index + 4]:
                i = data.rfind(data[index : index + 4], floor, i + 3)
            while i >= floor:
                tried_edge = tried_edge or index - i == _WINDOW
                m = match_len(i, index, look)
                g = (
                    cum[index + m]
                    - cum[index]
                    - _gain_off_extra(index - i)
                    - 3
                    - _LEN_EXTRA[_LEN_CODE[m - 3]]
                )
                if g > gain:
                    gain, length, offset = g, m, index - i
                    if m >= look:
                        nice = True  # long enough: Go stops walking
                        break
                if m + 1 > look:
                    break
                i = data.rfind(data[index : index + m + 1], floor, i + m)
            edge = index - _WINDOW
            if (
                not nice
                and not tried_edge
                and edge >= floor
                and data[edge : edge + 4] == data[index : index + 4]
            ):
                # The entry 32768 back is charged fewer extra bits than its neighbours: it may
                # win where nearer ones lost, so it gets Go's own test.
                m = match_len(edge, index, look)
                g = cum[index + m] - cum[index] - _gain_off_extra(_WINDOW) - 3 - _LEN_EXTRA[_LEN_CODE[m - 3]]
                if m > length and g > gain:
                    length, offset = m, _WINDOW
        if prev_length >= 4 and length <= prev_length:
            prev_length, prev_offset, index = _better_at_end(
                data, prev, tokens, flush, index, prev_length, prev_offset, lookahead, max_insert
            )
            add(_MATCH | (prev_length - 3) << 22 | (prev_offset - 1))
            index += prev_length - 1
            byte_available = False
            length = 3
            if len(tokens) == _MAX_TOKENS:
                flush(index)
            literals = 0
            continue
        if length >= 4:
            literals = 0
        if not byte_available:
            index += 1
            byte_available = True
            continue
        literals = (literals + 1) & 0xFFFF
        add(data[index - 1])
        if len(tokens) == _MAX_TOKENS:
            flush(index)
        index += 1
        skip = literals - _CHAIN
        if skip > 0:  # a long run without matches: take a few more bytes as literals unsearched
            for _ in range(1 + (skip >> 6)):
                if index >= n - 1:
                    break
                add(data[index - 1])
                if len(tokens) == _MAX_TOKENS:
                    flush(index)
                index += 1
            add(data[index - 1])
            byte_available = False
            if len(tokens) == _MAX_TOKENS:
                flush(index)
    w.bits(3, 3 + 7)  # an empty final block: fixed Huffman, end of block is code 0 (7 bits)
    w.align()
    return bytes(w.out)


def _better_at_end(
    data: bytes,
    prev: list[int],
    tokens: list[int],
    flush: Any,
    index: int,
    length: int,
    offset: int,
    lookahead: int,
    max_insert: int,
) -> tuple[int, int, int]:
    """Go 1.27's second look before it emits a match: the latest earlier position whose 4 bytes
    hash like those at the match's end, aligned to its start, may give a longer match (counted
    from 2 bytes in, then extended back); the bytes it then starts after become literals."""
    start = index - 1
    if length >= _MAX_MATCH - 2 or start + length >= max_insert:
        return length, offset, index
    end = min(lookahead, _MAX_MATCH + 2) + start
    lo = index - _WINDOW if index > _WINDOW else 0
    p = prev[start + length]
    while p > index:  # positions past index are not inserted yet
        p = prev[p]
    other = (p if p >= 0 else -1) - length
    if start - other == offset or other <= lo + 2:
        return length, offset, index
    a, b = data[start + 2 : end], data[other + 2 : other + end - start]
    if a == b:
        m = len(a)
    else:
        x = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
        m = ((x & -x).bit_length() - 1) >> 3
    if m <= length:
        return length, offset, index
    length, offset = m, start - other
    for i in (1, 0):
        if length >= _MAX_MATCH or data[start + i] != data[other + i]:
            for j in range(i + 1):
                tokens.append(data[start + j])
                if len(tokens) == _MAX_TOKENS:
                    flush(index)
                index += 1
            break
        length += 1
    return length, offset, index


def gzip(data: bytes) -> bytes:
    """``data`` (at most 64 KiB) gzipped as Go 1.27's ``gzip.NewWriterLevel(w, BestCompression)``
    writes it: no name, no time, XFL 2, OS 255."""
    trailer = zlib.crc32(data).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return GZIP_HEADER + deflate(data) + trailer
