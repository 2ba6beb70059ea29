"""Helpers of the image-layer integration tests: test images made with the real tools, loop
devices, and an HTTP server on 127.0.0.1 that serves byte ranges and can cut, slow down or corrupt
its answers."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MiB = 1 << 20


def sh(*argv: str | os.PathLike[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([os.fspath(a) for a in argv], check=True, capture_output=True, **kw)  # type: ignore[call-overload]


def tools_missing(*names: str) -> list[str]:
    return [n for n in names if shutil.which(n) is None]


def make_image(path: Path, size_mib: int = 64, data_bytes: int = 3 * MiB, seed: int = 1) -> Path:
    """A GPT disk image: one ext4 partition (from 1 MiB, 40 MiB) holding random data and a text file."""
    root = path.parent / (path.name + ".root")
    root.mkdir()
    rnd = hashlib.shake_256(str(seed).encode()).digest(data_bytes)
    (root / "random.bin").write_bytes(rnd)
    (root / "hello.txt").write_text("hello from the test image\n")
    sh("truncate", "-s", f"{size_mib}M", path)
    sh("sgdisk", "-n1:2048:+40M", "-t1:8300", "-c1:root", path)
    sh("mkfs.ext4", "-q", "-F", "-d", root, "-E", "offset=1048576", path, "40M")
    shutil.rmtree(root)
    return path


def compress(raw: Path, fmt: str) -> Path:
    if fmt == "raw":
        return raw
    if fmt == "xz":
        sh("xz", "-k", "-f", "-T1", raw)
        return raw.with_name(raw.name + ".xz")
    if fmt == "gzip":
        sh("gzip", "-k", "-f", raw)
        return raw.with_name(raw.name + ".gz")
    if fmt == "zstd":
        sh("zstd", "-q", "-f", "-k", raw)
        return raw.with_name(raw.name + ".zst")
    if fmt == "qcow2":
        out = raw.with_suffix(".qcow2")
        sh("qemu-img", "convert", "-O", "qcow2", raw, out)
        return out
    raise ValueError(fmt)


def sha256_file(path: str | os.PathLike[str], length: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while True:
            chunk = f.read(MiB if left is None else min(MiB, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
                if not left:
                    break
    return h.hexdigest()


def same_prefix(image: Path, dest: str) -> bool:
    """``cmp -n SIZE``: dest starts with exactly the image's bytes."""
    size = image.stat().st_size
    return (
        subprocess.run(["cmp", "-n", str(size), os.fspath(image), dest], capture_output=True).returncode == 0
    )


@contextlib.contextmanager
def loop_device(backing: Path, size_mib: int, fill: bytes | None = None) -> Iterator[str]:
    """A loop device over a new backing file, optionally filled with a repeated byte pattern."""
    with open(backing, "wb") as f:
        if fill:
            block = (fill * (MiB // len(fill) + 1))[:MiB]
            for _ in range(size_mib):
                f.write(block)
        else:
            f.truncate(size_mib * MiB)
    with loop(backing) as dev:
        yield dev


def partition_table(dev: str) -> str | None:
    """The partition-table type ``blkid -p`` finds (gpt, dos, PMBR...) or None."""
    proc = subprocess.run(["blkid", "-p", "-o", "value", "-s", "PTTYPE", dev], capture_output=True, text=True)
    return proc.stdout.strip() or None


def sgdisk_sees_gpt(dev: str) -> bool:
    out = subprocess.run(["sgdisk", "-p", dev], capture_output=True, text=True)
    text = out.stdout + out.stderr
    return "GPT: present" in text or ("Number  Start" in text and "root" in text)


# --- HTTP ---------------------------------------------------------------------------------------------


class Faults:
    """What the server does wrong. ``cuts``: absolute offsets at which one answer each is cut
    (connection closed); ``delay``: seconds slept per 64 KiB; ``ranges``: honour Range;
    ``corrupt_at``: flip one byte at that offset of every answer covering it; ``statuses``: the
    status of the next answers, one each (``status``: of every answer); ``stall_at``: offset at which
    one answer pauses ``stall`` seconds; ``chunk``: bytes written at a time (a trickle when small,
    with ``delay``). The query of a URL is ignored (signed URLs)."""

    def __init__(self) -> None:
        self.cuts: list[int] = []
        self.delay = 0.0
        self.ranges = True
        self.corrupt_at: int | None = None
        self.requests: list[str | None] = []
        self.status: int | None = None
        self.statuses: list[int] = []
        self.stall_at: int | None = None
        self.stall = 0.0
        self.chunk = 65536


class ImageServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults = Faults()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                f = server.faults
                f.requests.append(self.headers.get("Range"))
                path = server.root / self.path.split("?", 1)[0].lstrip("/")
                status = f.statuses.pop(0) if f.statuses else f.status
                if status is not None:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                start, end = 0, len(data)
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                partial = bool(rng and f.ranges and (if_range is None or if_range == etag))
                if partial:
                    spec = rng.removeprefix("bytes=")  # type: ignore[union-attr]
                    a, _, b = spec.partition("-")
                    start = int(a)
                    end = min(int(b) + 1, len(data)) if b else len(data)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if f.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                cut = next((c for c in sorted(f.cuts) if start < c < end), None)
                if cut is not None:
                    f.cuts.remove(cut)
                stop = cut if cut is not None else end
                pos = start
                try:
                    while pos < stop:
                        if f.stall_at is not None and pos <= f.stall_at < pos + f.chunk:
                            f.stall_at = None  # once: the bytes so far are sent, then nothing
                            self.wfile.flush()
                            time.sleep(f.stall)
                        chunk = bytearray(data[pos : min(stop, pos + f.chunk)])
                        if f.corrupt_at is not None and pos <= f.corrupt_at < pos + len(chunk):
                            chunk[f.corrupt_at - pos] ^= 0xFF
                        self.wfile.write(chunk)
                        pos += len(chunk)
                        if f.delay:
                            time.sleep(f.delay)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a small Pine-shaped image (GPT: BIOS-BOOT + root with a grub.cfg), made with the real tools -----


GRUB_CFG = """set timeout=1
menuentry 'Pine' {
	linux /boot/vmlinuz-6.1 root=UUID=0000 rw console=tty0
	initrd /boot/initrd.img-6.1
}
"""


# --- fixtures: a small Pine-shaped image made with the real tools ------------------------------------


def seed_tree(root: Path, grub_cfg: str = GRUB_CFG) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nusers:x:100:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\nusers:*::\n")
    (root / "etc" / "hostname").write_text("image-default\n")
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(grub_cfg)
    (root / "usr" / "lib" / "systemd" / "system").mkdir(parents=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "systemctl").write_text("")
    (root / "var").mkdir()
    return root


def make_rootfs_tarball(d: Path) -> Path:
    """A zstd root filesystem tarball for ``--rootfs``: the seed tree with a (fake) kernel and initrd."""
    tree = seed_tree(d / "tree")
    (tree / "boot" / "vmlinuz-6.1.0-test").write_bytes(b"not really a kernel")
    (tree / "boot" / "initrd.img-6.1.0-test").write_bytes(b"not really an initrd")
    os.unlink(tree / "boot" / "grub" / "grub.cfg")
    out = d / "rootfs.tar.zst"
    sh("tar", "--numeric-owner", "-C", tree, "-I", "zstd", "-cf", out, ".")
    return out


def twin_roots(tmp: Path, prepare: Callable[[Path], object]) -> tuple[Path, Path]:
    """The two roots of a differential test, the reference's and ours, prepared alike."""
    ref, ours = tmp / "ref", tmp / "ours"
    prepare(ref)
    prepare(ours)
    return ref, ours


def write_tree(root: Path, files: dict[str, object]) -> None:
    """Files below root: relative path -> text, or ("link", target) for a symbolic link."""
    for rel, contents in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(contents, tuple):
            os.symlink(contents[1], p)
        else:
            p.write_text(str(contents))


@contextlib.contextmanager
def loop(path: Path | str, *extra: str) -> Iterator[str]:
    dev = sh("losetup", "-f", "--show", *extra, path).stdout.decode().strip()
    try:
        yield dev
    finally:
        subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextlib.contextmanager
def mounted(dev: str, where: Path, *options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    sh("mount", *options, dev, where)
    try:
        yield where
    finally:
        subprocess.run(["umount", where], capture_output=True)


@contextlib.contextmanager
def proc_mounted(root: Path) -> Iterator[None]:
    """useradd --root chroots and copies the skeleton with fchmodat(AT_SYMLINK_NOFOLLOW), which
    glibc emulates through /proc: without it the reference's copy stops at the first chmod."""
    (root / "proc").mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=True)
        (root / "proc").rmdir()


def make_pine_image(
    path: Path, *, fstype: str = "ext4", size_mib: int = 64, tree: Path | None = None
) -> Path:
    """GPT: 1 BIOS-BOOT (1 MiB), 2 root (the rest) holding a small root tree with a grub.cfg."""
    tree = tree or seed_tree(path.parent / (path.name + ".tree"))
    sh("truncate", "-s", f"{size_mib}M", path)
    sh("sgdisk", "-n1:2048:+1M", "-t1:ef02", "-c1:BIOS-BOOT", "-n2:0:0", "-t2:8300", "-c2:root", path)
    start = 4096 * 512
    length = (size_mib * MiB - start - 34 * 512) // 4096 * 4096
    with loop(path, "-o", str(start), "--sizelimit", str(length)) as dev:
        mkfs = {
            "ext4": ["mkfs.ext4", "-q", "-F"],
            "xfs": ["mkfs.xfs", "-q", "-f"],
            "btrfs": ["mkfs.btrfs", "-q", "-f"],
        }
        sh(*mkfs[fstype], "-L", "root", dev)
        with mounted(dev, path.parent / (path.name + ".mnt")) as mnt:
            sh("cp", "-a", f"{tree}/.", mnt)
    return path


@contextlib.contextmanager
def installed_root(disk: str | Path, tmp: Path, number: int = 2) -> Iterator[Path]:
    """The root filesystem of an installed disk (file or device), mounted read-only."""
    is_block = Path(disk).is_block_device()
    ctx = contextlib.nullcontext(str(disk)) if is_block else loop(disk)
    with ctx as dev:
        sh("partx", "-u" if is_block else "-a", dev)
        try:
            part = f"{dev}p{number}"
            where = tmp / f"inspect-{time.monotonic_ns()}"
            where.mkdir()
            sh("mount", "-o", "ro", part, where)
            try:
                yield where
            finally:
                subprocess.run(["umount", where], capture_output=True)
        finally:
            subprocess.run(["partx", "-d", dev], capture_output=True)
