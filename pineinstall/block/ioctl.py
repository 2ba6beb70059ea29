"""Block-device ioctls: size, sector sizes, re-reading the partition table, discard and zero-out.

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
BLKPBSZGET = 0x127B
BLKRRPART = 0x125F
BLKDISCARD = 0x1277
BLKZEROOUT = 0x127F
BLKFLSBUF = 0x1261


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


def physical_sector_size(path: str) -> int:
    if not _is_block(path):
        return 512
    return _query(path, BLKPBSZGET, "I")


def reread_partitions(path: str) -> None:
    """BLKRRPART. Kernels without partition parsers accept it and create nothing: callers use
    :func:`pineinstall.block.partx.sync` instead; this is for the ones that do parse tables."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, BLKRRPART)
    finally:
        os.close(fd)


def _range_op(path: str, request: int, start: int, length: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, request, struct.pack("QQ", start, length))
    finally:
        os.close(fd)


def discard(path: str, start: int, length: int) -> None:
    """BLKDISCARD over [start, start+length) in bytes; raises OSError where unsupported."""
    _range_op(path, BLKDISCARD, start, length)


def zero_out(path: str, start: int, length: int) -> None:
    """BLKZEROOUT over [start, start+length) in bytes (the kernel writes zeroes or unmaps)."""
    _range_op(path, BLKZEROOUT, start, length)


def flush_buffers(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, BLKFLSBUF)
    finally:
        os.close(fd)
