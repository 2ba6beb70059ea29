"""``pineinstall iso embed|show|remove`` on real ISO images made with xorriso (and grub-mkrescue):
only the area's bytes change, xorriso reads back the new content, refusals leave the ISO
byte-identical."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pineinstall import isocmd
from pineinstall.providers.embedded import AREA_SIZE, MAGIC, Embedded, blank_area, decode, encode

pytestmark = pytest.mark.needs("xorriso")

CONFIG = b'{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA k"]}]}}\n'


def pineinstall(
    *args: str | os.PathLike[str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pineinstall.cli", *map(os.fspath, args)],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def make_tree(root: Path, *, area: bytes | None = None, extra: dict[str, bytes] | None = None) -> Path:
    (root / "pine").mkdir(parents=True)
    (root / "pine" / "embed.bin").write_bytes(blank_area() if area is None else area)
    os.chmod(root / "pine" / "embed.bin", 0o400)
    (root / "live").mkdir()
    # Content around the area on both sides: random bytes must come through unchanged.
    (root / "live" / "filesystem.squashfs").write_bytes(hashlib.shake_256(b"sq").digest(3 << 20))
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text("set timeout=1\n")
    (root / "zz-after.txt").write_bytes(hashlib.shake_256(b"after").digest(300_000))
    for name, data in (extra or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def mkiso(tree: Path, out: Path, *flags: str) -> Path:
    subprocess.run(
        ["xorriso", "-as", "mkisofs", *flags, "-V", "PINE_TEST", "-o", out, tree],
        check=True,
        capture_output=True,
    )
    return out


def extract_area(iso: Path, tmp: Path) -> bytes:
    out = tmp / f"extracted-{time.monotonic_ns()}.bin"
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/pine/embed.bin", out],
        check=True,
        capture_output=True,
    )
    os.chmod(out, 0o600)
    return out.read_bytes()


def area_offset(iso: Path) -> int:
    with open(iso, "rb") as f:
        off, size = isocmd.locate(f)
    assert size == AREA_SIZE
    return off


def assert_only_area_changed(before: bytes, after: bytes, offset: int) -> None:
    assert len(before) == len(after)
    assert before[:offset] == after[:offset]
    assert before[offset + AREA_SIZE :] == after[offset + AREA_SIZE :]


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    return mkiso(make_tree(tmp_path / "tree"), tmp_path / "pine.iso", "-R")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    p = tmp_path / "node.ign"
    p.write_bytes(CONFIG)
    return p


def test_embed_show_remove_in_place(iso: Path, config_file: Path, tmp_path: Path) -> None:
    original = iso.read_bytes()
    offset = area_offset(iso)
    assert offset % 2048 == 0 and original[offset : offset + 16] == MAGIC

    shown = pineinstall("iso", "show", iso)
    assert shown.returncode == 1 and shown.stdout == b""
    assert b"no config embedded" in shown.stderr

    r = pineinstall("iso", "embed", iso, "--config", config_file, "--dest", "/dev/vda", "--poweroff")
    assert r.returncode == 0, r.stderr
    changed = iso.read_bytes()
    assert_only_area_changed(original, changed, offset)
    assert changed != original
    # xorriso (the ISO9660 reader) sees the new file content, which decodes to what was embedded.
    area = extract_area(iso, tmp_path)
    assert area == changed[offset : offset + AREA_SIZE]
    assert decode(area) == Embedded(CONFIG, "/dev/vda", "poweroff")

    shown = pineinstall("iso", "show", iso)
    assert shown.returncode == 0
    assert shown.stdout == CONFIG
    assert b"dest: /dev/vda" in shown.stderr and b"after: poweroff" in shown.stderr

    header = pineinstall("iso", "show", "--header", iso)
    assert header.returncode == 0
    fields = dict(line.split(": ", 1) for line in header.stdout.decode().splitlines())
    assert fields["offset"] == str(offset)
    assert fields["state"] == "config" and fields["after"] == "poweroff"
    assert fields["config_length"] == str(len(CONFIG)) and fields["dest_length"] == "8"
    assert fields["sha256"] == hashlib.sha256(b"/dev/vda" + CONFIG).hexdigest()
    assert fields["checksum"] == "ok"

    r = pineinstall("iso", "remove", iso)
    assert r.returncode == 0, r.stderr
    assert iso.read_bytes() == original
    assert extract_area(iso, tmp_path) == blank_area()


def test_embed_with_an_image(iso: Path, config_file: Path, tmp_path: Path) -> None:
    url = "http://10.0.2.2:8080/pine.raw.zst?token=s3cret"
    r = pineinstall(
        "iso", "embed", iso, "--config", config_file, "--dest", "/dev/vda", "--image", url, "--reboot"
    )
    assert r.returncode == 0, r.stderr
    assert b"image http://10.0.2.2:8080/pine.raw.zst?\xe2\x80\xa6" in r.stderr and b"s3cret" not in r.stderr
    assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, "/dev/vda", "reboot", url)
    shown = pineinstall("iso", "show", iso)
    assert shown.stdout == CONFIG and f"image: {url}".encode() in shown.stderr
    header = pineinstall("iso", "show", "--header", iso)
    assert f"image_length: {len(url)}".encode() in header.stdout
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--image", "ftp://h/x.raw", "--force")
    assert r.returncode == 1 and b"--image must be an http(s) URL or a path" in r.stderr
    assert iso.read_bytes() == before


def test_embed_an_image_url_without_its_sha256_says_how_to_give_one(
    iso: Path, config_file: Path, tmp_path: Path
) -> None:
    url = "http://user:pw-s3cret@10.0.2.2:8080/pine.raw.zst?token=s3cret"
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--image", url)
    assert r.returncode == 0, r.stderr  # pine.inst.image_sha256= at boot may still give it
    err = r.stderr.decode()
    assert "warning: the image http://10.0.2.2:8080/pine.raw.zst?… is a URL" in err
    assert "--image-sha256 HEX" in err and "pine.inst.image_sha256=HEX" in err
    assert "'sha256sum pine.raw.zst'" in err and "s3cret" not in err and "user" not in err
    assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, None, None, url)


def test_embed_an_image_sha256(iso: Path, config_file: Path, tmp_path: Path) -> None:
    url = "https://example.com/pine.raw.xz"
    digest = "AB" * 32
    r = pineinstall(
        "iso", "embed", iso, "--config", config_file, "--image", url, "--image-sha256", f"sha256-{digest}"
    )
    assert r.returncode == 0, r.stderr
    assert b"with its sha256" in r.stderr and b"warning" not in r.stderr
    assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, None, None, url, "ab" * 32)
    shown = pineinstall("iso", "show", iso)
    assert f"image sha256: {'ab' * 32}".encode() in shown.stderr
    header = pineinstall("iso", "show", "--header", iso).stdout
    assert b"version: 2\n" in header and b"image_sha256_length: 32\n" in header
    before = iso.read_bytes()
    for bad in (["--image", url, "--image-sha256", "abc"], ["--image-sha256", digest]):
        r = pineinstall("iso", "embed", iso, "--config", config_file, "--force", *bad)
        assert r.returncode == 1
        assert b"64 hex digits" in r.stderr or b"give --image too" in r.stderr
    assert iso.read_bytes() == before


def test_embed_from_stdin_with_reboot(iso: Path, tmp_path: Path) -> None:
    r = pineinstall("iso", "embed", iso, "--config", "-", "--reboot", stdin=CONFIG)
    assert r.returncode == 0, r.stderr
    assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, None, "reboot")
    assert b"no target device" in r.stderr


def test_embed_to_a_copy_leaves_the_source_untouched(iso: Path, config_file: Path, tmp_path: Path) -> None:
    os.chmod(iso, 0o640)
    original = iso.read_bytes()
    out = tmp_path / "out" / "node.iso"
    out.parent.mkdir()
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--dest", "/dev/sdb", "-o", out)
    assert r.returncode == 0, r.stderr
    assert iso.read_bytes() == original
    assert_only_area_changed(original, out.read_bytes(), area_offset(iso))
    assert decode(extract_area(out, tmp_path)) == Embedded(CONFIG, "/dev/sdb", None)
    assert (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in out.parent.iterdir()] == ["node.iso"]  # no temporary file left
    # remove -o: a blank copy of the modified one, byte-identical to the original ISO.
    again = tmp_path / "again.iso"
    r = pineinstall("iso", "remove", out, "-o", again)
    assert r.returncode == 0, r.stderr
    assert again.read_bytes() == original
    assert decode(extract_area(out, tmp_path)) is not None  # -o: its source kept its config


def test_existing_config_needs_force(iso: Path, config_file: Path, tmp_path: Path) -> None:
    assert pineinstall("iso", "embed", iso, "--config", config_file).returncode == 0
    before = iso.read_bytes()
    other = tmp_path / "other.ign"
    other.write_bytes(b'{"ignition":{"version":"3.0.0"}}')
    r = pineinstall("iso", "embed", iso, "--config", other, "--dest", "/dev/vdb")
    assert r.returncode == 1
    assert b"already holds a config; pass --force" in r.stderr
    assert iso.read_bytes() == before
    r = pineinstall("iso", "embed", iso, "--config", other, "--dest", "/dev/vdb", "--force")
    assert r.returncode == 0, r.stderr
    assert decode(extract_area(iso, tmp_path)) == Embedded(other.read_bytes(), "/dev/vdb", None)


def test_invalid_config_prints_the_report_and_writes_nothing(iso: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ign"
    bad.write_text('{"ignition":{"version":"3.4.0"},\n "storage":{"files":[{"path":"relative"}]}}\n')
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", bad)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "error at $.storage.files.0.path, line 2 col" in err
    assert "not a valid config" in err
    assert iso.read_bytes() == before


def test_warnings_are_printed_and_the_config_is_embedded(iso: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "warn.ign"
    cfg.write_bytes(b'{"ignition":{"version":"3.4.0"},\n "unknownKey":1}')
    r = pineinstall("iso", "embed", iso, "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert b"warning at $.unknownKey, line 2 col 2: unused key unknownKey" in r.stderr
    assert decode(extract_area(iso, tmp_path)) == Embedded(cfg.read_bytes(), None, None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"variant: fcos\nversion: 1.5.0\n", "only Ignition JSON"),
        (b"", "is empty"),
        (b'{"ignition":{"version":"3.4.0"},"x":"' + b"a" * AREA_SIZE + b'"}', "does not fit"),
    ],
)
def test_unusable_configs_write_nothing(iso: Path, tmp_path: Path, content: bytes, message: str) -> None:
    cfg = tmp_path / "c"
    cfg.write_bytes(content)
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", cfg)
    assert r.returncode == 1
    assert message.encode() in r.stderr
    assert iso.read_bytes() == before


def test_relative_dest_refused(iso: Path, config_file: Path) -> None:
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--dest", "vda")
    assert r.returncode == 1 and b"absolute device path" in r.stderr
    assert iso.read_bytes() == before


def test_not_a_pine_iso(tmp_path: Path, config_file: Path) -> None:
    tree = tmp_path / "plain"
    (tree / "pinex").mkdir(parents=True)
    (tree / "pinex" / "embed.bin").write_bytes(blank_area())  # wrong directory
    iso = mkiso(tree, tmp_path / "plain.iso", "-R")
    before = iso.read_bytes()
    for args in (("embed", iso, "--config", config_file), ("show", iso), ("remove", iso)):
        r = pineinstall("iso", *args)
        assert r.returncode == 1
        assert b"no /pine in the ISO: not a Pine installer ISO" in r.stderr
    assert iso.read_bytes() == before


def test_not_an_iso_at_all(tmp_path: Path, config_file: Path) -> None:
    junk = tmp_path / "junk.iso"
    junk.write_bytes(blank_area() + bytes(64 * 2048))  # holds the magic, but no ISO9660 tree
    before = junk.read_bytes()
    r = pineinstall("iso", "embed", junk, "--config", config_file)
    assert r.returncode == 1 and b"not an ISO9660 image" in r.stderr
    assert junk.read_bytes() == before
    r = pineinstall("iso", "show", tmp_path / "missing.iso")
    assert r.returncode == 1 and b"cannot read" in r.stderr


def test_wrong_size_or_no_magic_in_the_area_file(tmp_path: Path, config_file: Path) -> None:
    iso = mkiso(make_tree(tmp_path / "t1", area=blank_area()[:-2048]), tmp_path / "short.iso", "-R")
    r = pineinstall("iso", "embed", iso, "--config", config_file)
    assert r.returncode == 1 and b"is 1046528 bytes, not 1048576" in r.stderr
    iso2 = mkiso(make_tree(tmp_path / "t2", area=bytes(AREA_SIZE)), tmp_path / "zero.iso", "-R")
    before = iso2.read_bytes()
    r = pineinstall("iso", "embed", iso2, "--config", config_file)
    assert r.returncode == 1 and b"does not start with the embed area's magic" in r.stderr
    assert iso2.read_bytes() == before


def test_a_second_magic_is_ambiguous(tmp_path: Path, config_file: Path) -> None:
    # Another copy of an area stored in the ISO (say, inside a nested ISO): refused.
    tree = make_tree(tmp_path / "tree", extra={"nested/copy.bin": blank_area()})
    iso = mkiso(tree, tmp_path / "two.iso", "-R")
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file)
    assert r.returncode == 1
    assert b"also appears at byte offset" in r.stderr and b"ambiguous" in r.stderr
    assert iso.read_bytes() == before


def test_damaged_area_show_fails_embed_needs_force(iso: Path, config_file: Path, tmp_path: Path) -> None:
    offset = area_offset(iso)
    damaged = bytearray(encode(CONFIG, "/dev/vda", None))
    damaged[100] ^= 0x20
    with open(iso, "r+b") as f:
        f.seek(offset)
        f.write(damaged)
    r = pineinstall("iso", "show", iso)
    assert r.returncode == 1 and b"checksum mismatch" in r.stderr
    r = pineinstall("iso", "show", "--header", iso)
    assert r.returncode == 1 and b"checksum: MISMATCH" in r.stdout
    before = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file)
    assert r.returncode == 1 and b"unreadable area" in r.stderr
    assert iso.read_bytes() == before
    assert pineinstall("iso", "remove", iso).returncode == 0
    assert extract_area(iso, tmp_path) == blank_area()


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(("-R", "-J"), id="rockridge-joliet"),
        pytest.param((), id="plain-iso9660"),  # no Rock Ridge: the name is PINE/EMBED.BIN;1
        pytest.param(("-R", "-iso-level", "3"), id="level3"),
    ],
)
def test_iso_flavours(tmp_path: Path, config_file: Path, flags: tuple[str, ...]) -> None:
    iso = mkiso(make_tree(tmp_path / "tree"), tmp_path / "f.iso", *flags)
    original = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--dest", "/dev/vdc")
    assert r.returncode == 0, r.stderr
    assert_only_area_changed(original, iso.read_bytes(), area_offset(iso))
    if "-R" in flags:
        assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, "/dev/vdc", None)


@pytest.mark.needs("grub-mkrescue")
def test_hybrid_iso_from_grub_mkrescue(tmp_path: Path, config_file: Path) -> None:
    # The installer ISO is made this way: El Torito, an EFI image, MBR/GPT for USB sticks.
    tree = make_tree(tmp_path / "tree")
    iso = tmp_path / "hybrid.iso"
    subprocess.run(["grub-mkrescue", "-o", iso, tree], check=True, capture_output=True, timeout=300)
    original = iso.read_bytes()
    r = pineinstall("iso", "embed", iso, "--config", config_file, "--dest", "/dev/sda", "--reboot")
    assert r.returncode == 0, r.stderr
    assert_only_area_changed(original, iso.read_bytes(), area_offset(iso))
    assert decode(extract_area(iso, tmp_path)) == Embedded(CONFIG, "/dev/sda", "reboot")
    assert pineinstall("iso", "remove", iso).returncode == 0
    assert iso.read_bytes() == original


def test_locating_the_area_in_a_large_iso_is_fast(tmp_path: Path) -> None:
    # ~330 MB, the size of the installer ISO; the file is warm in the page cache, as right after a
    # download. Measured here: ~0.2 s warm, ~0.65 s cold (see the report in the commit history).
    tree = make_tree(tmp_path / "tree")
    with open(tree / "live" / "big.squashfs", "wb") as f:
        block = hashlib.shake_256(b"big").digest(1 << 20)
        for _ in range(320):
            f.write(block)
    iso = mkiso(tree, tmp_path / "big.iso", "-R")
    (tmp_path / "tree" / "live" / "big.squashfs").unlink()
    assert iso.stat().st_size > 320 << 20
    iso.read_bytes()  # warm
    t = time.perf_counter()
    area = isocmd.open_area(str(iso))
    took = time.perf_counter() - t
    assert area.data == blank_area()
    assert took < 1.0, f"locating the area took {took:.2f} s"
