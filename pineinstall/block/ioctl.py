"""Block-device ioctls: size and logical sector size (and BLKZEROOUT's number, which the image writer uses).

Regular files are accepted where it makes sense (size; 512-byte sectors) so that plans can be
computed for image files too.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct

# From <linux/fs.h>.
BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268
BLKZEROOUT = 0x127F


def _is_block(path: str) -> bool:
    return stat.S_ISBLK(os.stat(path).st_mode)


def _query(path: str, request: int, fmt: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = fcntl.ioctl(fd, request, b"\0" * struct.calcsize(fmt))
    finally:
        os.close(fd)
    return struct.unpack(fmt, buf)[0]


def size_bytes(path: str) -> int:
    """Size of a block device (BLKGETSIZE64) or of a regular file."""
    if not _is_block(path):
        return os.stat(path).st_size
    return _query(path, BLKGETSIZE64, "Q")


def logical_sector_size(path: str) -> int:
    if not _is_block(path):
        return 512
    return _query(path, BLKSSZGET, "i")
