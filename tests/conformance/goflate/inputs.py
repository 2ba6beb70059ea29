"""Seeded inputs for the comparison of butane_like.base.goflate with Go's compress/gzip.

Seven kinds (random bytes, a small alphabet, word text, indented key/value configs, a repeated
unit with a few bytes changed, zeros, and a mix of them), sizes from 0 to 64 KiB and a few past
it (Go's window slides). ``inputs(seed, count)`` is deterministic: ``random.Random`` with the same
seed gives the same bytes on every CPython 3 (only randbytes, randint, random, choice are used).
"""

from __future__ import annotations

import random

_TEXT = (
    "the of and to in is for on that with as by be this are from at or an systemd unit Service "
    "ExecStart WantedBy multi-user.target [Unit] [Install] Description After network storage files "
    "path mode contents inline 0644 /etc/ /usr/local/bin ssh-ed25519 AAAA"
)
WORDS = _TEXT.split(" ")
KINDS = ("random", "alphabet", "text", "config", "repeat", "zeros", "mixed")


def one(rng: random.Random, kind: str, size: int) -> bytes:
    if kind == "random":
        return rng.randbytes(size)
    if kind == "alphabet":
        letters = rng.randbytes(rng.randint(1, 8))
        return bytes(rng.choice(letters) for _ in range(size))
    if kind == "text":
        words: list[str] = []
        total = 0
        while total < size:
            words.append(rng.choice(WORDS))
            total += len(words[-1]) + 1
        flat = " ".join(words)
        return "\n".join(flat[i : i + rng.randint(20, 100)] for i in range(0, len(flat), 60)).encode()[:size]
    if kind == "config":
        lines: list[str] = []
        total = 0
        while total < size:
            line = "  " * rng.randint(0, 4) + f"{rng.choice(WORDS)}: {rng.choice(WORDS)}{rng.randint(0, 999)}"
            lines.append(line)
            total += len(line) + 1
        return "\n".join(lines).encode()[:size]
    if kind == "repeat":
        unit = rng.randbytes(rng.randint(1, 300)) if rng.random() < 0.5 else rng.choice(WORDS).encode()
        body = bytearray((unit * (size // len(unit) + 1))[:size])
        for _ in range(rng.randint(0, 20)):
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
        return bytes(body)
    if kind == "zeros":
        return bytes(size)
    parts: list[bytes] = []
    total = 0
    while total < size:
        parts.append(one(rng, rng.choice(KINDS[:-1]), rng.randint(1, 4096)))
        total += len(parts[-1])
    return b"".join(parts)[:size]


def inputs(seed: int, count: int, large: float = 0.15, largest: int = 65536) -> list[bytes]:
    """``count`` inputs: 20% of 0-64 bytes, the rest up to 4 KiB but a share ``large`` of them up
    to ``largest`` bytes; the kinds in turn."""
    rng = random.Random(seed)
    out = []
    for k in range(count):
        r = rng.random()
        size = (
            rng.randint(0, 64)
            if r < 0.2
            else rng.randint(0, largest)
            if r > 1 - large
            else rng.randint(0, 4096)
        )
        out.append(one(rng, KINDS[k % len(KINDS)], size))
    return out
