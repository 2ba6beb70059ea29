"""Issue 12, items 3 and 5: everything checked before the first byte, and no write outside the root
through a hard link.

Install: every refusal leaves DEST byte-identical (hashed before and after; a disk-image file and a
loop device), the account names being checked against the image's own root read read-only. Apply:
the same checks against DIR, DIR unchanged. Hard links: a sentinel outside the root, hard-linked into
it, keeps its contents, mode and owner when a config changes the name inside the root.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from pineinstall.apply import run_apply
from pineinstall.install import main
from pineinstall.stages import Log

from .ignition_ref import seed_root, snapshot
from .image_helpers import ImageServer, MiB, compress, installed_root, loop, make_pine_image, sha256_file

pytestmark = pytest.mark.needs(
    "sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck", "xz", "blkid"
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("preflight-images")
    raw = make_pine_image(d / "pine.raw")
    return {"raw": raw, "xz": compress(raw, "xz")}


def ign(**parts: Any) -> dict[str, Any]:
    return {"ignition": {"version": "3.4.0"}, **parts}


def install(dest: str | Path, cfg: dict[str, Any], image: Path, tmp: Path, *extra: str) -> tuple[int, str]:
    path = tmp / "cfg.ign"
    path.write_text(json.dumps(cfg))
    err = io.StringIO()
    source = [] if "--image-url" in extra else ["--image-file", os.fspath(image)]
    argv = [os.fspath(dest), os.fspath(path), *source, "--yes", *extra]
    rc = main(argv, stdin=io.BytesIO(), stdout=io.StringIO(), stderr=err)
    return rc, err.getvalue()


def old_disk(path: Path, size_mib: int = 72) -> Path:
    """A disk-image file with old contents that must survive a refusal."""
    with open(path, "wb") as f:
        f.truncate(size_mib * MiB)
        f.write(os.urandom(MiB))
        f.seek((size_mib - 1) * MiB)
        f.write(os.urandom(MiB))
    return path


FILE = {"path": "/srv/x", "contents": {"source": "data:,x"}}
REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "owner-user": (
        ign(storage={"files": [{**FILE, "user": {"name": "www-data"}}]}),
        "$.storage.files.0.user.name",
    ),
    "owner-group": (
        ign(storage={"directories": [{"path": "/srv/d", "group": {"name": "kvm"}}]}),
        "$.storage.directories.0.group.name",
    ),
    "link-owner": (
        ign(storage={"links": [{"path": "/srv/l", "target": "/etc/hostname", "user": {"name": "sshd"}}]}),
        "$.storage.links.0.user.name",
    ),
    "supplementary-group": (
        ign(passwd={"users": [{"name": "pine", "groups": ["docker"]}]}),
        "$.passwd.users.0.groups.0",
    ),
    "uid-0-new-user": (ign(passwd={"users": [{"name": "toor", "uid": 0}]}), "$.passwd.users.0.uid"),
    "user-name-colon": (
        ign(passwd={"users": [{"name": "pwn:x:0:0::/root:/bin/sh"}]}),
        "$.passwd.users.0.name",
    ),
    "user-name-newline": (
        ign(passwd={"users": [{"name": "a\nroot::0:0::/:/bin/sh"}]}),
        "$.passwd.users.0.name",
    ),
    "gecos-colon": (ign(passwd={"users": [{"name": "bob", "gecos": "x:y"}]}), "$.passwd.users.0.gecos"),
    "gecos-newline": (ign(passwd={"users": [{"name": "bob", "gecos": "x\ny"}]}), "$.passwd.users.0.gecos"),
    "unit-slash": (
        ign(systemd={"units": [{"name": "../../x.service", "contents": "[Unit]\n"}]}),
        "$.systemd.units.0.name",
    ),
    "dropin-dots": (
        ign(
            systemd={
                "units": [{"name": "a.service", "dropins": [{"name": "../b.conf", "contents": "[Unit]\n"}]}]
            }
        ),
        "$.systemd.units.0.dropins.0.name",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_before_the_first_byte_file_dest(case: str, images: dict[str, Path], tmp_path: Path) -> None:
    cfg, place = REFUSALS[case]
    disk = old_disk(tmp_path / "disk.img")
    before = sha256_file(disk)
    image_before = sha256_file(images["raw"])
    rc, err = install(disk, cfg, images["raw"], tmp_path)
    assert rc == 1, err
    assert "preflight failed" in err and "untouched" in err and place in err, err
    assert sha256_file(disk) == before
    assert sha256_file(images["raw"]) == image_before  # the image was read read-only


def test_refused_on_a_loop_device_from_a_compressed_image(images: dict[str, Path], tmp_path: Path) -> None:
    """An xz image is decompressed to a temporary raw copy to be read; the loop device is untouched."""
    backing = old_disk(tmp_path / "backing.img")
    before = sha256_file(backing)
    cfg, place = REFUSALS["owner-user"]
    with loop(backing) as dev:
        rc, err = install(dev, cfg, images["xz"], tmp_path, "--image-sha256", sha256_file(images["xz"]))
        assert rc == 1, err
        assert place in err and "no such user 'www-data'" in err and "untouched" in err, err
    assert sha256_file(backing) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith("pineinstall-image-raw-")]


@pytest.mark.parametrize("checked", [True, False], ids=["sha256", "insecure"])
def test_refused_for_an_image_url(checked: bool, images: dict[str, Path], tmp_path: Path) -> None:
    """--image-url: the verified copy the image layer downloads first is read (with no checksum,
    the image is read from a second download); DEST untouched, no temporary file left."""
    disk = old_disk(tmp_path / "disk.img")
    before = sha256_file(disk)
    staging = tmp_path / "staging"
    staging.mkdir()
    cfg, place = REFUSALS["supplementary-group"]
    how = ["--image-sha256", sha256_file(images["xz"])] if checked else ["--insecure"]
    with ImageServer(images["xz"].parent) as server:
        url = server.url(images["xz"].name)
        rc, err = install(
            disk, cfg, images["xz"], tmp_path, "--image-url", url, "--tmpdir", str(staging), *how
        )
    assert rc == 1, err
    assert place in err and "no such group 'docker'" in err and "untouched" in err, err
    assert sha256_file(disk) == before
    assert os.listdir(staging) == []


def test_names_of_the_image_and_of_the_config_install(images: dict[str, Path], tmp_path: Path) -> None:
    """The image's own names (root, users) and those the config creates pass; the install goes on."""
    cfg = ign(
        passwd={
            "users": [{"name": "pine", "groups": ["users", "ops"]}, {"name": "root", "uid": 0}],
            "groups": [{"name": "ops"}],
        },
        storage={
            "files": [{**FILE, "user": {"name": "pine"}, "group": {"name": "users"}}],
            "directories": [{"path": "/srv/d", "user": {"name": "root"}, "group": {"name": "ops"}}],
        },
    )
    disk = tmp_path / "disk.img"
    rc, err = install(disk, cfg, images["xz"], tmp_path, "--size", "80M", "--tmpdir", os.fspath(tmp_path))
    assert rc == 0, err
    assert "reading the image's root (ext4) read-only" in err
    assert not [p for p in os.listdir(tmp_path) if p.startswith("pineinstall-image-raw-")]
    with installed_root(disk, tmp_path) as root:
        st = (root / "srv" / "x").stat()
        assert (st.st_uid, st.st_gid) == (1000, 100)
        assert "ops:x:" in (root / "etc" / "group").read_text()


# --- apply --root DIR ---------------------------------------------------------------------------------------


def apply(root: Path, cfg: dict[str, Any]) -> tuple[int, str]:
    src = root.parent / "cfg.ign"
    src.write_text(json.dumps(cfg))
    err = io.StringIO()
    return run_apply(str(root), str(src), log=Log(err)), err.getvalue()


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_apply_refuses_before_writing(case: str, tmp_path: Path) -> None:
    cfg, place = REFUSALS[case]
    root = seed_root(tmp_path / "root")
    before = snapshot(root)
    rc, err = apply(root, cfg)
    assert rc == 1 and place in err, err
    assert snapshot(root) == before


# --- hard links out of the root --------------------------------------------------------------------------


SENTINEL = b"outside the root\n"


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """A root whose /etc/motd is a hard link to a sentinel file beside the root."""
    root = seed_root(tmp_path / "root")
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(SENTINEL)
    os.chmod(sentinel, 0o644)
    os.link(sentinel, root / "etc" / "motd")
    return root, sentinel


def sentinel_untouched(sentinel: Path) -> None:
    st = sentinel.stat()
    assert sentinel.read_bytes() == SENTINEL
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, 0, 0)


@pytest.mark.parametrize(
    "node",
    [
        {"mode": 0o600},  # contents kept, mode set
        {"user": {"id": 4242}, "group": {"id": 4242}},  # contents kept, owner set
        {"append": [{"source": "data:,appended"}], "mode": 0o600},
        {
            "overwrite": True,
            "contents": {"source": "data:,outside%20the%20root%0A"},
            "mode": 0o640,
            "user": {"id": 7},
        },
    ],
    ids=["mode", "owner", "append", "same-contents"],
)
def test_no_write_outside_the_root_through_a_hard_link(
    node: dict[str, Any], linked: tuple[Path, Path]
) -> None:
    root, sentinel = linked
    rc, err = apply(root, ign(storage={"files": [{"path": "/etc/motd", **node}]}))
    assert rc == 0, err
    sentinel_untouched(sentinel)
    motd = root / "etc" / "motd"
    st = motd.stat()
    assert st.st_nlink == 1 and st.st_ino != sentinel.stat().st_ino
    if "mode" in node:
        assert stat.S_IMODE(st.st_mode) == node["mode"]
    if "user" in node:
        assert st.st_uid == node["user"]["id"]
    expected = SENTINEL + (b"appended" if "append" in node else b"")
    assert motd.read_bytes() == expected


def test_a_hard_link_left_as_is_when_nothing_changes(linked: tuple[Path, Path]) -> None:
    """Mode and owner already as configured: nothing is written, the link stays."""
    root, sentinel = linked
    rc, err = apply(root, ign(storage={"files": [{"path": "/etc/motd", "mode": 0o644}]}))
    assert rc == 0, err
    assert (root / "etc" / "motd").stat().st_ino == sentinel.stat().st_ino
    sentinel_untouched(sentinel)


def test_a_new_uid_does_not_reown_a_hard_link_out_of_the_home(tmp_path: Path) -> None:
    """usermod -u re-owns the home's files; a hard-linked one is re-owned as a private copy."""
    from .ignition_ref import GROUP, PASSWD

    root = seed_root(
        tmp_path / "root",
        passwd=PASSWD + "bob:x:1000:1000::/home/bob:/bin/sh\n",
        group=GROUP + "bob:x:1000:\n",
    )
    home = root / "home" / "bob"
    home.mkdir(parents=True)
    os.chown(home, 1000, 1000)
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(SENTINEL)
    os.chown(sentinel, 1000, 1000)
    os.link(sentinel, home / "notes")
    rc, err = apply(root, ign(passwd={"users": [{"name": "bob", "uid": 2000}]}))
    assert rc == 0, err
    st = sentinel.stat()
    assert (sentinel.read_bytes(), st.st_uid, st.st_gid) == (SENTINEL, 1000, 1000)
    notes = (home / "notes").stat()
    assert (notes.st_uid, notes.st_nlink) == (2000, 1)
    assert (home / "notes").read_bytes() == SENTINEL


@pytest.mark.parametrize("fstype", ["xfs", "btrfs"])
def test_xfs_and_btrfs_roots_are_read_too(fstype: str, tmp_path: Path) -> None:
    """Read-only, nothing replayed (xfs: norecovery,nouuid; btrfs: rescue=nologreplay)."""
    tool = {"xfs": "mkfs.xfs", "btrfs": "mkfs.btrfs"}[fstype]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    image = make_pine_image(tmp_path / "pine.raw", fstype=fstype, size_mib=330)
    image_before = sha256_file(image)
    disk = old_disk(tmp_path / "disk.img", 400)
    before = sha256_file(disk)
    cfg, place = REFUSALS["owner-group"]
    rc, err = install(disk, cfg, image, tmp_path)
    assert rc == 1 and place in err and f"reading the image's root ({fstype}) read-only" in err, err
    assert (sha256_file(disk), sha256_file(image)) == (before, image_before)
