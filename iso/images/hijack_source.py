"""The hijack source: a small Debian 12 guest that ``pineinstall hijack`` takes over in the VM tests.

Debian bookworm minbase with systemd, OpenSSH's server, ifupdown and iproute2, the pinned kernel with
the test images' pruned module tree and busybox initramfs (``build.KEEP_MODULE_DIRS``,
``guest/init.sh``), GRUB for BIOS on Pine's GPT layout (``disk.build_raw``). Trimmed to live in
128 MiB (VM-NOTES "Small guests"): the pruned modules keep udev from loading drivers the VM does
not use, and udev runs 2 workers at most.

The network is what a VPS provider sets up by hand: ifupdown, static ``10.0.2.15/24`` via
``10.0.2.2`` (QEMU's user networking), DNS ``10.0.2.3``, on a NIC udev names ``ens3`` by its MAC (a
``.link`` file, as cloud-init's ``set-name`` writes one). Pine has no udev and its kernel says
``eth0``: the hijacked Pine comes up on the network only through the carried rename by MAC
(``pre-up nameif``).

GRUB is set up as Debian's ``grub-mkconfig`` leaves it for the one-shot boot path of ``pineinstall
hijack`` (``--takeover boot-once``): ``grub2-common`` gives ``grub-reboot``/``grub-editenv``, the
grub.cfg loads ``grubenv`` and boots ``next_entry`` once (00_header's block) and sources
``custom.cfg`` (41_custom's block); ``grub-install`` made the ``grubenv``.

root logs in with the build's own key (``id_ed25519`` beside ``disk.img``, a test key made for the
build); the host keys are made once per build.

    from iso.images.hijack_source import ensure_hijack_source
    guest = ensure_hijack_source()   # guest.path: disk.img, guest.directory / "id_ed25519"
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

from iso.lib import cache, debian, initramfs
from iso.lib.debian import SUITE, kernel_abi, run

from .build import HERE, INITRAMFS_MODULES, KEEP_MODULE_DIRS, LIB, PACKAGES, BuiltImage, cache_dir, load

HOSTNAME = "debian-src"
EXTRA_PACKAGES = ("openssh-server", "ifupdown", "iproute2", "grub2-common")
ADDRESS, GATEWAY, DNS = "10.0.2.15/24", "10.0.2.2", "10.0.2.3"
NIC, MAC = "ens3", "52:54:00:12:34:56"  # QEMU's first NIC's MAC
INTERFACES = f"""\
auto lo
iface lo inet loopback

auto {NIC}
iface {NIC} inet static
\taddress {ADDRESS}
\tgateway {GATEWAY}
"""
KEY = "id_ed25519"
# What Debian 12's grub-mkconfig writes for the one-shot entry (/etc/grub.d/00_header) and the
# user's entries (/etc/grub.d/41_custom): the two blocks the boot-once takeover relies on.
NEXT_ENTRY_BLOCK = """\
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
"""
CUSTOM_BLOCK = """
### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"""


def _sources() -> list[Path]:
    return [HERE / "hijack_source.py", HERE / "build.py", HERE / "disk.py", HERE / "guest" / "init.sh",
            LIB / "debian.py", LIB / "initramfs.py", LIB / "disk.py"]  # fmt: skip


def image_key() -> str:
    h = hashlib.sha256(
        json.dumps({"suite": SUITE, "kernel": kernel_abi(), "packages": PACKAGES + EXTRA_PACKAGES}).encode()
    )
    for path in _sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _customize(root: Path, tmp: Path) -> None:
    etc = root / "etc"
    (etc / "hostname").write_text(HOSTNAME + "\n")
    (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n")
    (etc / "network" / "interfaces").write_text(INTERFACES)
    (etc / "resolv.conf").unlink(missing_ok=True)
    (etc / "resolv.conf").write_text(f"nameserver {DNS}\n")
    # the NIC named by its MAC, as a provider's image does (Pine's kernel will call it eth0)
    (etc / "systemd" / "network").mkdir(parents=True, exist_ok=True)
    (etc / "systemd" / "network" / "10-provider.link").write_text(
        f"[Match]\nMACAddress={MAC}\n\n[Link]\nName={NIC}\n"
    )
    # 128 MiB: udev with ~10 workers thrashes and the OOM killer takes sshd (VM-NOTES)
    (etc / "udev" / "udev.conf").write_text("children_max=2\n")
    for unit in ("systemd-firstboot.service", "getty-static.service", "e2scrub_reap.service",
                 "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"):  # fmt: skip
        link = etc / "systemd" / "system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hijack-source-test", "-f", tmp / KEY])
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text((tmp / f"{KEY}.pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    run(["chroot", root, "passwd", "-l", "root"])


def _debian_grub_cfg(img: Path, tmp: Path) -> None:
    """The built disk's grub.cfg with Debian's next_entry and custom.cfg blocks; checks the grubenv
    that grub-install made (GRUB's save_env rewrites it in place and cannot create it)."""
    from iso.lib.disk import loop_device, mounted

    with loop_device(img) as dev, mounted(f"{dev}p3", tmp / "grub-mnt") as mnt:
        cfg = mnt / "boot" / "grub" / "grub.cfg"
        text = cfg.read_text()
        if "set default=0\n" not in text:
            raise RuntimeError(f"{cfg}: no 'set default=0' line to replace")
        cfg.write_text(text.replace("set default=0\n", NEXT_ENTRY_BLOCK, 1) + CUSTOM_BLOCK)
        env = mnt / "boot" / "grub" / "grubenv"
        if not env.is_file() or env.stat().st_size != 1024:
            raise RuntimeError(f"{env}: grub-install made no 1024-byte grubenv")


def _build(tmp: Path) -> dict:
    from .disk import build_raw

    root = tmp / "root"
    debian.mmdebstrap(PACKAGES + EXTRA_PACKAGES, root)
    kernel = debian.install_kernel(root, keep=KEEP_MODULE_DIRS)
    version = kernel["kernel_version"]
    init = (HERE / "guest" / "init.sh").read_text()
    mods = initramfs.build(root, version, init, root / "boot" / f"initrd.img-{version}", INITRAMFS_MODULES,
                           required=False)  # fmt: skip
    _customize(root, tmp)
    packages = debian.installed_packages(root)
    debian.drop_apt_state(root)
    info = build_raw(root, tmp / "disk.img", version, str(uuid.uuid4()))
    _debian_grub_cfg(tmp / "disk.img", tmp)
    shutil.rmtree(root, ignore_errors=True)
    return {**kernel, **info, "initramfs_modules": mods, "packages": packages, "file": "disk.img",
            "kind": "hijack-source", "address": ADDRESS, "gateway": GATEWAY, "hostname": HOSTNAME}  # fmt: skip


def ensure_hijack_source() -> BuiltImage:
    """The cached hijack source disk for the current inputs, built first if needed (needs root)."""
    final = cache_dir() / f"hijack-source-{image_key()}"
    manifest = cache.cached_build(final, _build, keep=["disk.img", KEY, f"{KEY}.pub"])
    return load("hijack-source", final, manifest)


if __name__ == "__main__":
    print(ensure_hijack_source().path)
