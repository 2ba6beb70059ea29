"""The image layer on real files and loop devices: every format, sparse output, sha256 and GPG,
too-small and busy destinations left unchanged, a corrupt stream caught and the table wiped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pineinstall.image import (
    DestinationError,
    FormatError,
    Signature,
    SigStatus,
    VerificationError,
    preflight,
    write_image,
)

from .image_helpers import (
    MiB,
    compress,
    loop_device,
    make_image,
    mounted,
    partition_table,
    same_prefix,
    sgdisk_sees_gpt,
    sh,
    sha256_file,
)

NEEDED = ("sgdisk", "mkfs.ext4", "xz", "gzip", "zstd", "qemu-img", "gpg", "losetup", "blkid", "cmp")
pytestmark = pytest.mark.needs(*NEEDED)
FORMATS = ("raw", "xz", "gzip", "zstd", "qcow2")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    raw = make_image(d / "disk.raw")
    out = {fmt: compress(raw, fmt) for fmt in FORMATS}
    # Sanity of the fixture itself: a GPT with an ext4 partition, mostly empty.
    assert partition_table(os.fspath(raw)) == "gpt"
    return out


def sign(path: Path, home: Path, who: str) -> Path:
    sig = path.with_name(path.name + f".{who.split('@')[0]}.sig")
    env = {**os.environ, "GNUPGHOME": os.fspath(home)}
    sh("gpg", "--batch", "--yes", "--local-user", who, "--detach-sign", "-o", sig, path, env=env)
    return sig


def file_hash(path: str) -> str:
    return sha256_file(path)


def assert_refused_as_busy(image: Path, dev: str) -> None:
    """Writing the image to dev fails as busy, and not a byte of dev changes."""
    before = file_hash(dev)
    with pytest.raises(DestinationError, match="busy"):
        write_image(os.fspath(image), dev)
    assert file_hash(dev) == before


# --- every format, to a file and to a device --------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_to_sparse_file(images: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    raw = images["raw"]
    dest = tmp_path / "out.img"
    result = write_image(os.fspath(images[fmt]), os.fspath(dest))
    assert result.format == fmt
    assert result.image_size == raw.stat().st_size
    assert subprocess.run(["cmp", raw, dest]).returncode == 0
    # Sparse: far fewer blocks than the 64 MiB it reads as (the image holds ~3.5 MiB of data).
    used = dest.stat().st_blocks * 512
    assert used < raw.stat().st_size // 4, used
    assert result.written + result.zeroed == raw.stat().st_size


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_to_loop_device_over_old_data(images: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    """The device held non-zero junk: zero runs must read back as zeroes (BLKZEROOUT), not as junk."""
    raw = images["raw"]
    with loop_device(tmp_path / "backing", 96, fill=b"\xa5junk") as dev:
        result = write_image(os.fspath(images[fmt]), dev)
        assert same_prefix(raw, dev)
        assert result.zeroed > 32 * MiB
        assert partition_table(dev) == "gpt"
        # The old end of the device (where a stale backup GPT would sit) was cleared.
        with open(dev, "rb") as f:
            f.seek(96 * MiB - MiB)
            assert f.read(MiB) == bytes(MiB)


def test_file_destination_grown_to_size_and_rerun_exact(images: dict[str, Path], tmp_path: Path) -> None:
    raw = images["raw"]
    dest = tmp_path / "big.img"
    dest.write_bytes(b"\x5a" * (80 * MiB))  # an old, dense file: holes must be punched into it
    write_image(os.fspath(images["xz"]), os.fspath(dest), size=128 * MiB)
    assert dest.stat().st_size == 128 * MiB
    assert same_prefix(raw, os.fspath(dest))
    assert dest.stat().st_blocks * 512 < 80 * MiB // 4
    with open(dest, "rb") as f:  # the old content beyond the image is gone at the wiped end only
        f.seek(128 * MiB - MiB)
        assert f.read(MiB) == bytes(MiB)


# --- too small, busy: refused, unchanged ------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_small_device_refused_unchanged(images: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    with loop_device(tmp_path / "small", 32, fill=b"old!") as dev:
        before = file_hash(dev)
        with pytest.raises(DestinationError, match="too small"):
            write_image(os.fspath(images[fmt]), dev)
        assert file_hash(dev) == before


def test_too_small_file_size_refused_unchanged(images: dict[str, Path], tmp_path: Path) -> None:
    dest = tmp_path / "small.img"
    with pytest.raises(DestinationError, match="too small"):
        write_image(os.fspath(images["zstd"]), os.fspath(dest), size=16 * MiB)
    assert not dest.exists()


def test_busy_device_refused_unchanged(images: dict[str, Path], tmp_path: Path) -> None:
    with loop_device(tmp_path / "busy", 96) as dev:
        # No lazy init: ext4lazyinit would write the inode tables while the device is mounted.
        sh("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
        # Mounted read-only without journal replay: a read-write ext4 may still write its superblock or
        # journal between the two hashes (seen under load), which is not the writer's doing. A read-only
        # mount holds the device exactly as busy.
        with mounted(dev, tmp_path / "mnt", "-o", "ro,noload"):
            assert_refused_as_busy(images["raw"], dev)


# --- sha256 -----------------------------------------------------------------------------------------


def test_sha256_good(images: dict[str, Path], tmp_path: Path) -> None:
    xz = images["xz"]
    digest = sha256_file(xz)
    result = write_image(os.fspath(xz), os.fspath(tmp_path / "o.img"), sha256=digest)
    assert result.sha256 == digest and result.sha256_checked and result.verified_before_write
    result = write_image(os.fspath(xz), os.fspath(tmp_path / "o2.img"), sha256="sha256-" + digest)
    assert result.sha256_checked


def test_sha256_bad_refused_before_writing(images: dict[str, Path], tmp_path: Path) -> None:
    with loop_device(tmp_path / "d", 96, fill=b"keep") as dev:
        before = file_hash(dev)
        with pytest.raises(VerificationError, match="sha256 mismatch"):
            write_image(os.fspath(images["gzip"]), dev, sha256="0" * 64)
        assert file_hash(dev) == before


def test_sha256_bad_while_streaming_wipes_table(images: dict[str, Path], tmp_path: Path) -> None:
    """verify_first=never: the mismatch is found after the body was written; the held first MiB is
    never written and both table locations are wiped."""
    with loop_device(tmp_path / "d", 96) as dev:
        write_image(os.fspath(images["raw"]), dev)  # a previous, bootable install
        assert partition_table(dev) == "gpt"
        with pytest.raises(VerificationError, match="sha256 mismatch"):
            write_image(os.fspath(images["zstd"]), dev, sha256="1" * 64, verify_first="never")
        assert partition_table(dev) is None
        assert not sgdisk_sees_gpt(dev)


def test_preserve_on_error_keeps_written_body(images: dict[str, Path], tmp_path: Path) -> None:
    raw = images["raw"]
    with loop_device(tmp_path / "d", 96) as dev:
        with pytest.raises(VerificationError):
            write_image(os.fspath(raw), dev, sha256="1" * 64, verify_first="never", preserve_on_error=True)
        # The body past the first MiB is there; the first MiB (held back) never was.
        with open(dev, "rb") as f, open(raw, "rb") as g:
            f.seek(MiB)
            g.seek(MiB)
            assert f.read(8 * MiB) == g.read(8 * MiB)
            f.seek(0)
            assert f.read(MiB) == bytes(MiB)


# --- corrupt stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ("xz", "gzip", "zstd"))
def test_corrupt_byte_caught_and_table_wiped(images: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    bad = tmp_path / ("bad." + fmt)
    data = bytearray(images[fmt].read_bytes())
    data[len(data) // 2] ^= 0x55
    bad.write_bytes(data)
    with loop_device(tmp_path / "d", 96) as dev:
        write_image(os.fspath(images["raw"]), dev)
        assert partition_table(dev) == "gpt"
        with pytest.raises(FormatError, match="corrupt"):
            write_image(os.fspath(bad), dev)
        assert partition_table(dev) is None
        assert not sgdisk_sees_gpt(dev)


def test_truncated_xz_refused_in_preflight(images: dict[str, Path], tmp_path: Path) -> None:
    cut = tmp_path / "cut.xz"
    cut.write_bytes(images["xz"].read_bytes()[:-100])
    with pytest.raises(FormatError, match="xz"):
        preflight(os.fspath(cut), os.fspath(tmp_path / "o.img"))
    assert not (tmp_path / "o.img").exists()


# --- GPG --------------------------------------------------------------------------------------------


def test_gpg_good(images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path) -> None:
    xz = images["xz"]
    sig = sign(xz, gpg_key["home"], "signer@example.test")
    result = write_image(
        os.fspath(xz),
        os.fspath(tmp_path / "o.img"),
        signature=Signature(os.fspath(gpg_key["keyring"]), os.fspath(sig)),
    )
    assert result.signature is SigStatus.GOOD
    assert same_prefix(images["raw"], os.fspath(tmp_path / "o.img"))


def test_gpg_bad_signature_refused_even_insecure(
    images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path
) -> None:
    sig = sign(images["gzip"], gpg_key["home"], "signer@example.test")  # the signature of another file
    with loop_device(tmp_path / "d", 96, fill=b"keep") as dev:
        before = file_hash(dev)
        with pytest.raises(VerificationError, match="bad GPG signature"):
            write_image(
                os.fspath(images["xz"]),
                dev,
                signature=Signature(os.fspath(gpg_key["keyring"]), os.fspath(sig)),
                insecure=True,
            )
        assert file_hash(dev) == before


def test_gpg_unknown_key_refused(images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path) -> None:
    sig = sign(images["xz"], gpg_key["home"], "other@example.test")  # a valid signature, key not trusted
    with pytest.raises(VerificationError, match="no key in the keyring"):
        write_image(
            os.fspath(images["xz"]), os.fspath(tmp_path / "o.img"),
            signature=Signature(os.fspath(gpg_key["keyring"]), os.fspath(sig)),
        )  # fmt: skip
    assert not (tmp_path / "o.img").exists()


def test_gpg_bad_while_streaming_wipes(
    images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path
) -> None:
    sig = sign(images["gzip"], gpg_key["home"], "signer@example.test")
    with loop_device(tmp_path / "d", 96) as dev:
        write_image(os.fspath(images["raw"]), dev)
        with pytest.raises(VerificationError, match="bad GPG signature"):
            write_image(
                os.fspath(images["xz"]), dev, signature=Signature(os.fspath(gpg_key["keyring"]), os.fspath(sig)),
                verify_first="never",
            )  # fmt: skip
        assert partition_table(dev) is None


def test_gpg_missing_needs_insecure(
    images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path
) -> None:
    sig = Signature(os.fspath(gpg_key["keyring"]))  # a keyring, no signature
    with pytest.raises(VerificationError, match="no GPG signature"):
        write_image(os.fspath(images["xz"]), os.fspath(tmp_path / "o.img"), signature=sig)
    assert not (tmp_path / "o.img").exists()
    result = write_image(os.fspath(images["xz"]), os.fspath(tmp_path / "o.img"), signature=sig, insecure=True)
    assert result.signature is SigStatus.MISSING


def test_gpg_qcow2_verified_before_conversion(
    images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path
) -> None:
    q = images["qcow2"]
    good = sign(q, gpg_key["home"], "signer@example.test")
    bad = sign(images["xz"], gpg_key["home"], "signer@example.test")
    kr = os.fspath(gpg_key["keyring"])
    with pytest.raises(VerificationError):
        write_image(os.fspath(q), os.fspath(tmp_path / "bad.img"), signature=Signature(kr, os.fspath(bad)))
    assert not (tmp_path / "bad.img").exists()
    result = write_image(
        os.fspath(q), os.fspath(tmp_path / "o.img"), signature=Signature(kr, os.fspath(good))
    )
    assert result.signature is SigStatus.GOOD and result.verified_before_write


def test_xz_multi_block_and_multi_stream_sizes(images: dict[str, Path], tmp_path: Path) -> None:
    """Sizes from the xz index of what the xz tool writes with several blocks and streams."""
    from pineinstall.image import formats
    from pineinstall.image.source import FileSource

    raw = images["raw"]
    blocks = tmp_path / "blocks.xz"
    blocks.write_bytes(sh("xz", "-c", "-T2", "--block-size=1MiB", raw).stdout)
    both = tmp_path / "both.xz"
    both.write_bytes(blocks.read_bytes() + images["xz"].read_bytes())
    for path, expected in ((blocks, raw.stat().st_size), (both, 2 * raw.stat().st_size)):
        src = FileSource(os.fspath(path))
        src.probe()
        assert formats.xz_size(src.read_range, src.size) == expected
    dest = tmp_path / "o.img"
    result = write_image(os.fspath(both), os.fspath(dest))
    assert result.image_size == 2 * raw.stat().st_size
    assert dest.read_bytes() == raw.read_bytes() * 2


def test_multi_block_xz_exact_and_corruption_caught(images: dict[str, Path], tmp_path: Path) -> None:
    """Multi-block xz (xz -T): identical bytes; a flipped byte in a middle block is caught (by the
    block's check or its decoder) and the table wiped."""
    raw = images["raw"]
    blocks = tmp_path / "blocks.xz"
    blocks.write_bytes(sh("xz", "-c", "-T2", "--block-size=4MiB", raw).stdout)
    with loop_device(tmp_path / "d", 96, fill=b"old") as dev:
        result = write_image(os.fspath(blocks), dev)
        assert result.image_size == raw.stat().st_size
        assert same_prefix(raw, dev)
        data = bytearray(blocks.read_bytes())
        data[len(data) // 3] ^= 0x01
        bad = tmp_path / "bad.xz"
        bad.write_bytes(data)
        with pytest.raises(FormatError, match="corrupt xz"):
            write_image(os.fspath(bad), dev)
        assert partition_table(dev) is None


def test_busy_when_a_partition_is_mounted(images: dict[str, Path], tmp_path: Path) -> None:
    """Installing over a disk whose partition is mounted: refused (O_EXCL), the disk unchanged."""
    with loop_device(tmp_path / "p", 96) as dev:
        write_image(os.fspath(images["raw"]), dev)
        subprocess.run(["partx", "-a", dev], capture_output=True)  # no kernel table parsing here
        part = dev + "p1"
        if not os.path.exists(part):
            pytest.skip("partx made no partition node")
        try:
            with mounted(part, tmp_path / "mnt"):
                assert_refused_as_busy(images["xz"], dev)
        finally:
            subprocess.run(["partx", "-d", dev], capture_output=True)
