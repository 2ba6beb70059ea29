"""One rule for "the same answer" of ignition-validate (rc, stdout, stderr) and ``pineinstall validate``.

- The same verdict: the reference exits 0 exactly when we report no error.
- Every finding the reference places on a JSON path (``error|warning at $.PATH, line L col C: MSG``)
  is ours with the same kind, path, line, column and message, and we place none it does not
  (as multisets: order is Go's walk order, ours may differ).
- A finding the reference places by line and column only: Go's type error ("json: cannot unmarshal
  …", placed after the value) is answered by an error of ours on that line; a syntax error by an error
  at that line and column (line 0 col 0, the end of the input: by any error). Ours names the field.
- "partition numbers collide" names one of the colliding partitions, and when a disk has several
  collisions, ignition-validate picks it at random (Go's map order): the disk is compared, not which
  of its partitions, nor its line and column.
- A config the reference cannot parse ("couldn't parse config: MSG" on stderr, no place) is
  answered by an error of ours that says MSG, or for a version, that names the version.
"""

from __future__ import annotations

import re
from collections import Counter

PLACED = re.compile(r"^(error|warning|info) at (\$[^,]*), line (\d+) col (\d+): (.*)$")
UNPLACED = re.compile(r"^(error|warning|info) at line (\d+) col (\d+): (.*)$")
PARSE = re.compile(r"^(?:couldn't|failed to) parse config: (.*)$")


COLLIDE = "partition numbers collide"


def _split(text: str) -> tuple[Counter, list[tuple[str, int, int, str]], list[str]]:
    placed: Counter = Counter()
    unplaced, parse = [], []
    for line in text.splitlines():
        line = line.strip()
        if m := PLACED.match(line):
            if m.group(5) == COLLIDE:  # the disk, not which partition (see above)
                placed[(m.group(1), m.group(2).rsplit(".", 1)[0], 0, 0, COLLIDE)] += 1
                continue
            placed[(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5))] += 1
        elif m := UNPLACED.match(line):
            unplaced.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
        elif m := PARSE.match(line):
            parse.append(m.group(1))
    return placed, unplaced, parse


def ours(text: str) -> tuple[int, str, str]:
    """``pineinstall validate`` on ``text``, run in this process (as its command line would)."""
    from pineinstall.config import check

    report = check(text.encode("utf-8")).report
    return (1 if report.has_errors else 0), str(report), ""


def same_answer(ref: tuple[int, str, str], got: tuple[int, str, str]) -> str:
    """Empty when the answers agree, else what differs."""
    problems = []
    if (ref[0] == 0) != (got[0] == 0):
        problems.append(f"verdict: ref rc {ref[0]}, ours rc {got[0]}")
    r_placed, r_unplaced, r_parse = _split(ref[1] + "\n" + ref[2])
    o_placed, o_unplaced, _ = _split(got[1] + "\n" + got[2])
    errors = [(k, line, col, msg) for (k, _p, line, col, msg) in o_placed.elements()] + o_unplaced
    errors = [e for e in errors if e[0] == "error"]
    if r_unplaced or r_parse:
        # the reference stopped at the document: its placed findings (none, normally) must be ours
        missing = r_placed - o_placed
    else:
        missing, extra = r_placed - o_placed, o_placed - r_placed
        if extra:
            problems.append(f"ours only: {sorted(extra)}")
    if missing:
        problems.append(f"ref only: {sorted(missing)}")
    for kind, line, col, msg in r_unplaced:
        typed = msg.startswith("json: cannot unmarshal")
        if not any(
            e[0] == kind
            and ((e[1], e[2]) == (line, col) or (line, col) == (0, 0) or (typed and e[1] == line))
            for e in errors
        ):
            problems.append(f"ref {kind} at line {line} col {col}: {msg!r} not answered (ours: {errors[:3]})")
    for msg in r_parse:
        if not any(msg.lower() in e[3].lower() or ("version" in msg and "version" in e[3]) for e in errors):
            problems.append(f"ref cannot parse: {msg!r} not answered (ours: {errors[:3]})")
    return "; ".join(problems)
