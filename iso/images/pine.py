"""The real Pine image: Alpine (``iso.lib.alpine``) on OSTree with OpenRC and SSH, as a raw disk.

The Alpine root gets: /usr merged (``/bin``, ``/sbin``, ``/lib`` become links into ``/usr``, so the
whole read-only OSTree ``/usr`` holds every program and library), Pine's SSH server
(``iso.lib.dropbear``), a getty on ttyS0 beside tty1, DHCP on eth0, the self-contained executable
(``iso.lib.exe``) as ``/usr/bin/pineinstall`` and the first-boot service that runs it
(``pineinstall.firstboot``, in the boot runlevel: before the network and the SSH server),
Pine's kernel (``iso.lib.kernel``: Debian's linux 6.1 source with a small config, every driver built in;
Alpine's ``linux-virt`` and its modules are dropped, it does not fit 64 MiB of RAM) and the busybox
prepare-root initramfs of the test images (``guest/init.sh``), which then loads no modules. It is committed to OSTree (ref ``pine/x86_64/alpine``) and
deployed (stateroot ``pine``, ``ostree=`` on the kernel line) by ``disk.build_ostree``: GRUB for
BIOS and UEFI, serial and VGA console. Alpine's ``/var`` seeds the stateroot's (OpenRC has no
tmpfiles to create it). The root partition is last, so ``pineinstall install`` grows it.

Layout: BIOS boot, the ESP (it plays Pine's ~40 MiB boot partition: kernels live in the sysroot's
/boot), root. No swap partition: a 64 MiB box boots without one and a config can add it.

    from iso.images.pine import ensure_pine_image
    image = ensure_pine_image()    # image.path: disk.img (read-only: copy it)
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from pathlib import Path

from iso.lib import alpine, cache, debian, dropbear, exe, initramfs, kernel
from iso.lib.debian import log

from .build import HERE, LIB, REPO, BuiltImage, cache_dir, load

REF = "pine/x86_64/alpine"
SIZE_MIB = 320  # ESP 63 MiB + a root with ~150 MiB free; pineinstall install grows the root
HOSTNAME = "pine"
# What /init and the running system need, built into Pine's kernel (it has no modules): checked in
# the kernel's modules.builtin when the image is built.
DISK_DRIVERS = ("virtio_blk", "virtio_scsi", "ahci", "sd_mod", "ext4")
BUILTIN_NEEDED = (*DISK_DRIVERS, "virtio_net", "af_packet", "ipv6", "qemu_fw_cfg")
NO_BPF_KEY = "kernel.unprivileged_bpf_disabled"
SYSINIT_ADDED = ("sysfs",)  # OpenRC services the wheel's container root leaves out of sysinit
INITTAB_GETTYS = "tty1::respawn:/sbin/getty 38400 tty1\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
INTERFACES = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"


def _sources() -> list[Path]:
    own = [HERE / "pine.py", HERE / "disk.py", HERE / "guest" / "init.sh"]
    lib = [LIB / n for n in ("alpine.py", "dropbear.py", "disk.py", "initramfs.py", "kernel.py")]
    product = [REPO / "pineinstall" / "firstboot" / "units" / "pine-firstboot.openrc"]
    return [*own, *lib, *product, *sorted((REPO / "pineinstall" / "boot").glob("*.py"))]


def image_key() -> str:
    h = hashlib.sha256(
        json.dumps(
            {
                "ref": REF,
                "size": SIZE_MIB,
                "wheel": alpine.WHEEL_SHA256,
                "exe": exe.build_key(),
                "kernel": kernel.build_key(kernel.source_version()),
            }
        ).encode()
    )
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def merge_usr(root: Path) -> None:
    """/bin, /sbin and /lib moved into /usr and replaced by links; where both have a name, the real
    file wins over a busybox link (the applet the real program replaces)."""
    for top in ("bin", "sbin", "lib"):
        src, dst = root / top, root / "usr" / top
        dst.mkdir(exist_ok=True)
        _merge(src, dst)
        shutil.rmtree(src)
        src.symlink_to(f"usr/{top}")


def _merge(src: Path, dst: Path) -> None:
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            _merge(entry, target)
            continue
        if target.exists() or target.is_symlink():
            if entry.is_symlink() or not target.is_symlink():
                continue  # /usr's is kept: the other is a link, or both are real files
            target.unlink()
        shutil.move(entry, target)


def _initramfs(root: Path, version: str, out: Path, work: Path) -> None:
    """The prepare-root initramfs: the host's static busybox (Alpine's is linked against musl) and
    /init; no modules, Pine's kernel has its drivers built in (checked here)."""
    modroot = root / "usr" / "lib" / "modules" / version
    builtin = {
        Path(line).name.removesuffix(".ko").replace("-", "_")
        for line in (modroot / "modules.builtin").read_text().split()
    }
    missing = [name for name in BUILTIN_NEEDED if name not in builtin]
    if missing:
        raise RuntimeError(f"image build: {', '.join(missing)} not built into the kernel ({modroot})")
    stage = work / "initramfs-stage"
    (stage / "lib" / "modules" / version).mkdir(parents=True)
    (stage / "lib" / "modules" / version / "modules.dep").write_text("")
    (stage / "bin").mkdir()
    shutil.copy("/bin/busybox", stage / "bin" / "busybox")
    init = (HERE / "guest" / "init.sh").read_text()
    initramfs.build(stage, version, init, out, ())
    shutil.rmtree(stage)


def _customize(root: Path, tmp: Path) -> dict:
    """Alpine as Pine: SSH, consoles, network, first boot, kernel + initramfs under /boot."""
    from pineinstall.firstboot import service

    merge_usr(root)
    info = dropbear.install_dropbear(root)
    inittab = root / "etc" / "inittab"
    lines = [ln for ln in inittab.read_text().splitlines(keepends=True) if "getty" not in ln]
    at = next(i for i, ln in enumerate(lines) if ln.startswith("# Stuff to do for the 3-finger"))
    inittab.write_text("".join(lines[:at]) + INITTAB_GETTYS + "\n" + "".join(lines[at:]))
    (root / "etc" / "network" / "interfaces").write_text(INTERFACES)
    (root / "etc" / "hostname").write_text(HOSTNAME + "\n")
    (root / "etc" / "hosts").write_text(f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost\n")
    # OpenRC's modules service has nothing to load: the drivers are built into the kernel
    (root / "etc" / "modules").write_text("# Pine's kernel has its drivers built in (no modules)\n")
    # The wheel's rc.conf says rc_sys="lxc" (its author boots it as a container), which makes OpenRC
    # skip hostname, modules and hwclock; empty: OpenRC detects the (virtual) machine.
    rc_conf = root / "etc" / "rc.conf"
    rc_conf.write_text(re.sub(r"(?m)^rc_sys=.*$", 'rc_sys=""', rc_conf.read_text()))
    # Pine's kernel has no BPF syscall, so Alpine's sysctl key for it does not exist (an error at boot)
    sysctl = root / "usr" / "lib" / "sysctl.d" / "00-alpine.conf"
    sysctl.write_text(
        "".join(ln for ln in sysctl.read_text().splitlines(keepends=True) if NO_BPF_KEY not in ln)
    )
    # Its sysinit runlevel (devfs, dmesg) mounts no /sys either: without it the first boot finds no
    # fw_cfg entries (/sys/firmware) and no interface for a DHCP lease (/sys/class/net).
    for name in SYSINIT_ADDED:
        (root / "etc" / "runlevels" / "sysinit" / name).symlink_to(f"/etc/init.d/{name}")
    script = root / "etc" / "init.d" / service.OPENRC
    script.write_text(service.render("openrc"))
    script.chmod(0o755)
    (root / "etc" / "runlevels" / service.OPENRC_RUNLEVEL / service.OPENRC).symlink_to(
        f"/etc/init.d/{service.OPENRC}"
    )
    # The first-boot agent: the self-contained executable (it unpacks to TMPDIR, /var/tmp here).
    agent, agent_manifest = exe.exe_build()
    shutil.copyfile(agent, root / service.DEFAULT_EXEC.lstrip("/"))
    (root / service.DEFAULT_EXEC.lstrip("/")).chmod(0o755)
    # Pine's kernel replaces linux-virt (its image, config, System.map and module tree go), with the
    # initramfs where disk.build_ostree's tree conversion looks for them.
    boot = root / "boot"
    for leftover in boot.iterdir():
        shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()
    version = kernel.install_kernel(root)
    _initramfs(root, version, boot / f"initrd.img-{version}", tmp)
    return {
        **info,
        "kernel_version": version,
        "exe_key": agent_manifest["key"],
        "exe_size": agent_manifest["size"],
    }


def _build(tmp: Path) -> dict:
    from . import disk

    tarball = alpine.alpine_root()
    manifest = alpine.alpine_build()[1]
    root = tmp / "root"
    log(f"unpacking {tarball}")
    debian.untar(tarball, root)
    info = _customize(root, tmp)
    version = info["kernel_version"]
    # /var, /home and /root live in the stateroot: keep their contents to seed it
    seed = tmp / "var-seed"
    shutil.move(root / "var", seed)
    shutil.move(root / "home", seed / "home")
    shutil.move(root / "root", seed / "roothome")
    for emptied in ("var", "home", "root"):  # build_ostree replaces them (links into /var)
        (root / emptied).mkdir()
    img = tmp / "disk.img"
    info.update(
        disk.build_ostree(
            root, tmp, img, version, str(uuid.uuid4()),
            ref=REF, subject=f"Pine (Alpine {manifest['alpine_release']})", var_seed=seed, size_mib=SIZE_MIB,
        )
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(seed, ignore_errors=True)
    info.update(
        kind="pine",
        file="disk.img",
        alpine_release=manifest["alpine_release"],
        alpine_wheel=manifest["wheel"],
        alpine_kernel=manifest["kernel_version"],
        kernel_version=version,
        kernel_source=kernel.pine_kernel()[1]["version"],
    )
    return info


def ensure_pine_image() -> BuiltImage:
    """The cached Pine image for the current inputs, built first if needed (needs root)."""
    final = cache_dir() / f"pine-{image_key()}"
    manifest = cache.cached_build(final, _build, keep=["disk.img"])
    return load("pine", final, manifest)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="scripts/pine-image", description="Build (or find cached) the Pine image."
    )
    parser.add_argument("-o", "--output", type=Path, help="copy the image here (a file or directory)")
    args = parser.parse_args(argv)
    try:
        image = ensure_pine_image()
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.output is not None:
        from .build import copy_out

        print(copy_out(image, args.output))
    else:
        print(image.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
