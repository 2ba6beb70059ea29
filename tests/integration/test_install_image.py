"""``pineinstall install`` in image mode onto disk-image files and loop devices: every image format,
verification, growth (ext4, xfs, btrfs), provisioning into the written root, the refusals that leave
DEST untouched, and the wipe after a failure."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pineinstall.install import main

from .image_helpers import (
    MiB,
    compress,
    installed_root,
    loop,
    loop_device,
    make_pine_image,
    mounted,
    sh,
    sha256_file,
    tools_missing,
)

NEEDED = (
    "sgdisk",
    "sfdisk",
    "partx",
    "losetup",
    "mkfs.ext4",
    "resize2fs",
    "e2fsck",
    "xz",
    "gzip",
    "zstd",
    "blkid",
)
pytestmark = pytest.mark.needs(*NEEDED)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIgood test@example"


def config(**extra: object) -> dict:
    cfg: dict = {
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "pine", "sshAuthorizedKeys": [KEY]}]},
        "storage": {
            "files": [
                {
                    "path": "/etc/hostname",
                    "overwrite": True,
                    "contents": {"source": "data:,node-1"},
                    "mode": 420,
                },
                {"path": "/var/lib/pine/hello", "contents": {"source": "data:,hi"}, "mode": 384},
            ]
        },
        "systemd": {
            "units": [
                {
                    "name": "hello.service",
                    "enabled": True,
                    "contents": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
                }
            ]
        },
        "kernelArguments": {"shouldExist": ["pine.karg=1"], "shouldNotExist": ["console=tty0"]},
    }
    cfg.update(extra)
    return cfg


def run(*argv: str | os.PathLike[str], stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main([os.fspath(a) for a in argv], stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def write_cfg(tmp: Path, cfg: dict, name: str = "cfg.ign") -> Path:
    p = tmp / name
    p.write_text(json.dumps(cfg))
    return p


def install_tree(tree: Path, tmp: Path) -> tuple[Path, dict, str]:
    """A Pine image of tree installed onto a 96 MiB disk-image file, the config stashed for the first
    boot: the disk, the JSON summary and the log."""
    image = make_pine_image(tmp / "pine.raw", tree=tree)
    disk = tmp / "disk.img"
    rc, out, err = run(disk, write_cfg(tmp, config()), "--image-file", image, "--size", "96M",
                       "--stash-config", "--json")  # fmt: skip
    assert rc == 0, err
    return disk, json.loads(out.splitlines()[-1]), err


def gpt_ok(dev: str) -> bool:
    return subprocess.run(["sgdisk", "-v", dev], capture_output=True, text=True).returncode == 0


def has_table(path: str | Path) -> bool:
    out = subprocess.run(["blkid", "-p", "-o", "value", "-s", "PTTYPE", path], capture_output=True, text=True)
    return bool(out.stdout.strip())


@pytest.fixture(scope="module")
def pine_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pine-images")
    raw = make_pine_image(d / "pine.raw")
    out = {fmt: compress(raw, fmt) for fmt in ("raw", "xz", "gzip", "zstd")}
    if not tools_missing("qemu-img"):
        out["qcow2"] = compress(raw, "qcow2")
    return out


def assert_provisioned(root: Path) -> None:
    assert (root / "etc" / "hostname").read_text() == "node-1"
    assert (root / "var" / "lib" / "pine" / "hello").read_text() == "hi"
    assert oct((root / "var" / "lib" / "pine" / "hello").stat().st_mode & 0o777) == "0o600"
    assert "pine:x:1000:" in (root / "etc" / "passwd").read_text()
    assert KEY in (root / "home" / "pine" / ".ssh" / "authorized_keys").read_text()
    link = root / "etc" / "systemd" / "system" / "multi-user.target.wants" / "hello.service"
    assert link.is_symlink()
    linux = [ln for ln in (root / "boot" / "grub" / "grub.cfg").read_text().splitlines() if "linux " in ln]
    assert linux and all("pine.karg=1" in ln and "console=tty0" not in ln for ln in linux), linux


# --- formats -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["raw", "xz", "gzip", "zstd", "qcow2"])
def test_every_format_to_a_file(fmt: str, pine_images: dict[str, Path], tmp_path: Path) -> None:
    if fmt not in pine_images:
        pytest.skip("qemu-img is not installed")
    image = pine_images[fmt]
    disk = tmp_path / "disk.img"
    rc, _out, err = run(
        disk, write_cfg(tmp_path, config()), "--image-file", image, "--size", "96M",
        "--image-sha256", sha256_file(image), "--stash-config",
    )  # fmt: skip
    assert rc == 0, err
    assert disk.stat().st_size == 96 * MiB
    assert disk.stat().st_blocks * 512 < 40 * MiB  # holes stay holes
    assert gpt_ok(os.fspath(disk))  # backup GPT at the new end
    table = json.loads(sh("sfdisk", "--json", disk).stdout)["partitiontable"]
    root_part = table["partitions"][1]
    assert root_part["name"] == "root"
    assert root_part["start"] + root_part["size"] >= 96 * MiB // 512 - 34  # grown to the end
    with installed_root(disk, tmp_path) as root:
        assert_provisioned(root)
        st = os.statvfs(root)
        assert st.f_blocks * st.f_frsize > 80 * MiB  # the filesystem grew with its partition
        stash = root / "boot" / "ignition"
        assert oct(stash.stat().st_mode & 0o777) == "0o700"
        assert oct((stash / "config.ign").stat().st_mode & 0o777) == "0o600"
        assert json.loads((stash / "config.ign").read_text()) == config()


@pytest.mark.parametrize("fstype", ["xfs", "btrfs"])
def test_growth_of_xfs_and_btrfs(fstype: str, tmp_path: Path) -> None:
    tool = {"xfs": "mkfs.xfs", "btrfs": "mkfs.btrfs"}[fstype]
    if tools_missing(tool):
        pytest.skip(f"{tool} is not installed")
    image = make_pine_image(tmp_path / "pine.raw", fstype=fstype, size_mib=330)
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-file", image, "--size", "600M")
    assert rc == 0, err
    with installed_root(disk, tmp_path) as root:
        assert_provisioned(root)
        st = os.statvfs(root)
        assert st.f_blocks * st.f_frsize > 500 * MiB, err


def test_no_grow_keeps_the_image_layout(pine_images: dict[str, Path], tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    rc, _, err = run(
        disk, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"], "--size", "96M", "--no-grow"
    )
    assert rc == 0, err
    table = json.loads(sh("sfdisk", "--json", disk).stdout)["partitiontable"]
    assert table["partitions"][1]["start"] + table["partitions"][1]["size"] <= 64 * MiB // 512


# --- loop devices, timing, JSON ------------------------------------------------------------------------


def test_loop_device_with_json_progress(pine_images: dict[str, Path], tmp_path: Path) -> None:
    with loop_device(tmp_path / "dev.img", 128) as dev:
        t0 = time.monotonic()
        rc, out, err = run(
            dev, write_cfg(tmp_path, config()), "--image-file", pine_images["xz"], "--json", "--yes"
        )
        took = time.monotonic() - t0
        assert rc == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        assert events[-1]["event"] == "installed"
        assert events[-1]["image"]["format"] == "xz"
        assert events[-1]["root"]["sectors"] > events[-1]["root"]["sectors_before"]
        assert {"start", "phase", "done"} <= {e["event"] for e in events}
        assert gpt_ok(dev)
        with installed_root(dev, tmp_path) as root:
            assert_provisioned(root)
    print(f"install onto a 128 MiB loop device: {took:.1f} s")


# --- verification --------------------------------------------------------------------------------------


def test_wrong_sha256_refused_dest_untouched(pine_images: dict[str, Path], tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"precious" * 1000)
    before = sha256_file(disk)
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-file", pine_images["xz"],
                     "--image-sha256", "0" * 64, "--yes")  # fmt: skip
    assert rc == 1
    assert "sha256 mismatch" in err and "untouched" in err
    assert sha256_file(disk) == before


def sign(path: Path, home: Path, who: str, out: Path) -> Path:
    env = {**os.environ, "GNUPGHOME": os.fspath(home)}
    sh("gpg", "--batch", "--yes", "--local-user", who, "--detach-sign", "-o", out, path, env=env)
    return out


@pytest.mark.parametrize("case", ["good", "bad", "other-key", "missing", "missing-insecure"])
def test_gpg(case: str, pine_images: dict[str, Path], gpg_key: dict[str, Path], tmp_path: Path) -> None:
    image = pine_images["zstd"]
    sig = tmp_path / "image.sig"
    if case == "good":
        sign(image, gpg_key["home"], "signer@example.test", sig)
    elif case == "bad":
        sign(pine_images["gzip"], gpg_key["home"], "signer@example.test", sig)  # another file's signature
    elif case == "other-key":
        sign(image, gpg_key["home"], "other@example.test", sig)
    args = ["--keyring", gpg_key["keyring"]]
    if not case.startswith("missing"):
        args += ["--image-sig", sig]
    if case == "missing-insecure":
        args.append("--insecure")
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-file", image, "--size", "96M", *args)
    if case in ("good", "missing-insecure"):
        assert rc == 0, err
        with installed_root(disk, tmp_path) as root:
            assert_provisioned(root)
    else:
        assert rc == 1, err
        assert "untouched" in err
        assert not disk.exists()


# --- refusals: DEST untouched --------------------------------------------------------------------------


def test_too_small_loop_device_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    backing = tmp_path / "small.img"
    backing.write_bytes(os.urandom(32 * MiB))
    before = sha256_file(backing)
    with loop(backing) as dev:
        rc, _, err = run(dev, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"], "--yes")
        assert rc == 1
        assert "too small" in err and "untouched" in err
    assert sha256_file(backing) == before


def test_mounted_loop_device_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    with loop_device(tmp_path / "busy.img", 128) as dev:
        sh("mkfs.ext4", "-q", dev)
        with mounted(dev, tmp_path / "mnt", "-o", "ro,noload"):  # read-only: the kernel writes nothing
            before = sha256_file(dev)
            rc, _, err = run(dev, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"], "--yes")
            assert rc == 1
            assert "mounted" in err and "untouched" in err
            assert sha256_file(dev) == before


def test_busy_file_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    """A disk-image file whose partition is mounted through a loop device is refused too."""
    disk = tmp_path / "disk.img"
    shutil.copy(pine_images["raw"], disk)
    before = sha256_file(disk)
    with loop(disk) as dev:
        sh("partx", "-a", dev)
        try:
            with mounted(f"{dev}p2", tmp_path / "mnt", "-o", "ro,noload"):
                rc, _, err = run(
                    disk, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"], "--yes"
                )
                assert rc == 1
                assert "in use" in err
        finally:
            subprocess.run(["partx", "-d", dev], capture_output=True)
    assert sha256_file(disk) == before


def test_invalid_config_refused_before_anything(pine_images: dict[str, Path], tmp_path: Path) -> None:
    bad = {"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "relative/path"}]}}
    rc, _, err = run(tmp_path / "disk.img", write_cfg(tmp_path, bad), "--image-file", pine_images["raw"])
    assert rc == 1
    assert "$.storage.files.0.path" in err and "untouched" in err
    assert not (tmp_path / "disk.img").exists()


def test_unreachable_file_resource_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    cfg = config()
    cfg["storage"]["files"].append({"path": "/etc/x", "contents": {"source": "http://127.0.0.1:9/nothing"}})
    cfg["ignition"]["timeouts"] = {"httpTotal": 2}
    rc, _, err = run(tmp_path / "disk.img", write_cfg(tmp_path, cfg), "--image-file", pine_images["raw"])
    assert rc == 1, err
    assert "/etc/x" in err and "untouched" in err
    assert not (tmp_path / "disk.img").exists()


def test_not_a_terminal_without_yes_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"data" * 4096)
    before = sha256_file(disk)
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"])
    assert rc == 1
    assert "--yes" in err
    assert sha256_file(disk) == before


def test_dry_run_touches_nothing(pine_images: dict[str, Path], tmp_path: Path) -> None:
    backing = tmp_path / "dev.img"
    backing.write_bytes(os.urandom(MiB) * 96)
    before = sha256_file(backing)
    with loop(backing) as dev:
        rc, out, err = run(dev, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"],
                           "--dry-run", "--append-karg", "quiet", "--console", "ttyS0,115200n8")  # fmt: skip
        assert rc == 0, err
        rc2, out_json, _ = run(dev, write_cfg(tmp_path, config()), "--image-file", pine_images["gzip"],
                               "--dry-run", "--json")  # fmt: skip
        assert rc2 == 0
    assert sha256_file(backing) == before
    assert "dry run: nothing was written" in out
    assert "1: BIOS-BOOT" in out and "2: root" in out  # the image's table, read from the image file
    assert (
        "user: pine" in out and "file: /var/lib/pine/hello" in out and "unit: hello.service (enabled)" in out
    )
    assert (
        "+pine.karg=1" in out
        and "+quiet" in out
        and "-console=tty0" in out
        and "console=ttyS0,115200n8" in out
    )
    plan = json.loads(out_json.splitlines()[-1])
    assert plan["event"] == "plan" and plan["image"]["format"] == "gzip"
    assert plan["files_stage"]["users"] == ["pine"]


# --- failures after writing began ----------------------------------------------------------------------


def test_corrupt_byte_caught_and_table_wiped(pine_images: dict[str, Path], tmp_path: Path) -> None:
    """A corrupt xz stream with nothing to verify it in advance: caught while writing, tables wiped."""
    data = bytearray(pine_images["xz"].read_bytes())
    data[len(data) // 2] ^= 0x55
    bad = tmp_path / "bad.raw.xz"
    bad.write_bytes(data)
    backing = tmp_path / "dev.img"
    with open(backing, "wb") as f:
        f.truncate(96 * MiB)
    with loop(backing) as dev:
        rc, _, err = run(dev, write_cfg(tmp_path, config()), "--image-file", bad, "--yes")
        assert rc == 1
        assert "corrupt" in err or "xz" in err
        assert not has_table(dev)


def test_failure_after_writing_wipes_the_table(pine_images: dict[str, Path], tmp_path: Path) -> None:
    """The files stage fails on the written root (a file exists, overwrite false): tables wiped;
    with --preserve-on-error they are kept."""
    cfg = config()
    cfg["storage"]["files"][0]["overwrite"] = False  # /etc/hostname exists in the image
    for preserve in (False, True):
        disk = tmp_path / f"disk-{preserve}.img"
        args = ["--preserve-on-error"] if preserve else []
        rc, _, err = run(
            disk, write_cfg(tmp_path, cfg), "--image-file", pine_images["raw"], "--size", "96M", *args
        )
        assert rc == 1
        assert "/etc/hostname" in err
        assert has_table(disk) is preserve, err


def test_kill_9_mid_write_then_rerun(pine_images: dict[str, Path], tmp_path: Path) -> None:
    """A killed install leaves no bootable half-image (old tables are zeroed first); a rerun works."""
    big = make_pine_image(tmp_path / "big.raw", size_mib=64)
    with open(big, "r+b") as f:  # incompressible data in the image: the write takes a moment
        f.seek(40 * MiB)
        f.write(os.urandom(20 * MiB))
    backing = tmp_path / "dev.img"
    with open(backing, "wb") as f:
        f.truncate(96 * MiB)
    cfg = write_cfg(tmp_path, config())
    with loop(backing) as dev:
        sh("sgdisk", "-n1:0:0", dev)  # an old table that must not survive
        argv = [os.fspath(Path(os.sys.executable).parent / "pineinstall"), "install", dev, os.fspath(cfg),
                "--image-file", os.fspath(big), "--yes", "--json"]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line).get("event") == "phase" and "writing" in json.loads(line).get("phase", ""):
                break
        time.sleep(0.05)
        proc.kill()
        proc.wait()
        assert not gpt_ok(dev) or not has_table(dev)
        rc, _, err = run(dev, os.fspath(cfg), "--image-file", big, "--yes")
        assert rc == 0, err
        with installed_root(dev, tmp_path) as root:
            assert_provisioned(root)


# --- the config: YAML, stdin, other disks --------------------------------------------------------------


def test_yaml_config_from_stdin(pine_images: dict[str, Path], tmp_path: Path) -> None:
    bu = b"""variant: fcos
version: 1.4.0
passwd:
  users:
    - name: pine
      ssh_authorized_keys: ["%s"]
storage:
  files:
    - path: /etc/hostname
      overwrite: true
      contents: {inline: node-1}
""" % KEY.encode()
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, "-", "--image-file", pine_images["raw"], "--size", "80M", stdin=bu)
    assert rc == 0, err
    with installed_root(disk, tmp_path) as root:
        assert (root / "etc" / "hostname").read_text() == "node-1"
        assert KEY in (root / "home" / "pine" / ".ssh" / "authorized_keys").read_text()


def test_yaml_error_names_the_place(pine_images: dict[str, Path], tmp_path: Path) -> None:
    bu = tmp_path / "bad.bu"
    bu.write_text("variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: relative\n")
    rc, _, err = run(tmp_path / "disk.img", bu, "--image-file", pine_images["raw"])
    assert rc == 1
    assert "storage.files.0.path" in err and f"{bu}:5:13" in err, err
    assert not (tmp_path / "disk.img").exists()


def test_config_storage_on_another_disk(pine_images: dict[str, Path], tmp_path: Path) -> None:
    with loop_device(tmp_path / "other.img", 64) as dev:
        cfg = config()
        cfg["storage"]["filesystems"] = [
            {"device": dev, "format": "ext4", "path": "/var/data", "label": "DATA", "wipeFilesystem": True}
        ]
        cfg["storage"]["files"].append({"path": "/var/data/on-other-disk", "contents": {"source": "data:,x"}})
        disk = tmp_path / "disk.img"
        rc, _, err = run(disk, write_cfg(tmp_path, cfg), "--image-file", pine_images["raw"], "--size", "80M")
        assert rc == 0, err
        with mounted(dev, tmp_path / "other-mnt") as m:
            assert (m / "on-other-disk").read_text() == "x"
        with installed_root(disk, tmp_path) as root:
            assert not (root / "var" / "data" / "on-other-disk").exists()


def test_config_naming_dest_refused(pine_images: dict[str, Path], tmp_path: Path) -> None:
    backing = tmp_path / "dev.img"
    backing.write_bytes(os.urandom(MiB) * 96)
    before = sha256_file(backing)
    with loop(backing) as dev:
        cfg = config()
        cfg["storage"]["disks"] = [{"device": dev, "partitions": [{"label": "x", "sizeMiB": 8}]}]
        rc, _, err = run(dev, write_cfg(tmp_path, cfg), "--image-file", pine_images["raw"], "--yes")
        assert rc == 1
        assert "$.storage.disks.0.device" in err and "DEST" in err
    assert sha256_file(backing) == before


def test_copy_network(pine_images: dict[str, Path], tmp_path: Path) -> None:
    host = tmp_path / "host"
    nm = host / "etc" / "NetworkManager" / "system-connections"
    nm.mkdir(parents=True)
    (nm / "eth0.nmconnection").write_text("[connection]\nid=eth0\n[wifi-security]\npsk=secret\n")
    os.chmod(nm / "eth0.nmconnection", 0o600)
    (host / "etc" / "systemd" / "network").mkdir(parents=True)
    (host / "etc" / "systemd" / "network" / "10-eth.network").write_text("[Match]\nName=eth0\n")
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-file", pine_images["raw"], "--size", "80M",
                     "--copy-network", "--network-source", host)  # fmt: skip
    assert rc == 0, err
    with installed_root(disk, tmp_path) as root:
        kf = root / "etc" / "NetworkManager" / "system-connections" / "eth0.nmconnection"
        assert "psk=secret" in kf.read_text()
        assert oct(kf.stat().st_mode & 0o777) == "0o600"
        assert (root / "etc" / "systemd" / "network" / "10-eth.network").read_text() == "[Match]\nName=eth0\n"
