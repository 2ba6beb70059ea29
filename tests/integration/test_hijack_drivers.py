"""The drivers of Pine's kernel as the takeover reads them: from the Pine image itself, its partitions
mounted read-only through loop devices as after the provisioning (``provision.on_partitions``), its
deployment's ``/usr/lib/modules/RELEASE/modules.builtin``. Needs the current Pine image in the cache
(scripts/test builds it before this tier; skipped otherwise: this test builds nothing).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from pineinstall.hijack import drivers, facts, provision, refusals

VIRTIO_BLK = [["virtio", "virtio_blk", "virtio_blk"], ["pci", "virtio-pci", "virtio_pci"]]
VIRTIO_NET = [["virtio", "virtio_net", "virtio_net"], ["pci", "virtio-pci", "virtio_pci"]]
NVME = [["pci", "nvme", "nvme"]]
E1000 = [["pci", "e1000", "e1000"]]


def host(disk: list[list[str]], nic: list[list[str]]) -> dict[str, Any]:
    """A probe document: vda holds /, eth0 has an address; their sysfs drivers as given."""
    return {
        "probe": 1, "user": "root", "home": "/root", "hostname": "vps", "markers": {},
        "lsblk": {"blockdevices": [{"name": "vda", "path": "/dev/vda", "type": "disk", "size": 1 << 30,
                                    "mountpoint": "/"}]},
        "ip_addr": [{"ifindex": 2, "ifname": "eth0", "link_type": "ether", "address": "52:54:00:12:34:56",
                     "addr_info": [{"family": "inet", "local": "192.0.2.5", "prefixlen": 24, "scope": "global"}]}],
        "drivers": {"block": {"vda": disk}, "net": {"eth0": nic}},
    }  # fmt: skip


def cached_pine_image() -> Path:
    from iso.images.build import cache_dir
    from iso.images.pine import image_key

    disk = cache_dir() / f"pine-{image_key()}" / "disk.img"
    if not disk.is_file():
        pytest.skip(f"the current Pine image is not cached ({disk}): python -m iso.images.pine builds it")
    return disk


def test_the_images_kernel_has_the_virtio_ahci_and_e1000_drivers_and_not_nvme(tmp_path: Path) -> None:
    have = provision.on_partitions(str(cached_pine_image()), str(tmp_path), drivers.image_drivers)
    assert have is not None and have.release.endswith("-pine")
    for name in ("virtio_blk", "virtio_pci", "virtio_scsi", "sd_mod", "ahci", "ata_piix", "virtio_net", "e1000"):
        assert name in have.modules, name
    for name in ("nvme", "xen_blkfront", "hv_storvsc", "vmw_pvscsi", "e1000e", "vmxnet3", "ena", "hv_netvsc"):
        assert name not in have.modules, name
    # what the hijack's VM tests boot (virtio-blk and virtio-net on PCI) passes; NVMe does not
    assert refusals.drivers(facts.parse(host(VIRTIO_BLK, VIRTIO_NET)), have) == []
    # read before the plan (a local raw image, as root): the same
    assert provision.image_kernel(str(cached_pine_image()), str(tmp_path)) == have
    (nvme,) = refusals.drivers(facts.parse(host(NVME, E1000)), have)
    assert nvme.startswith(f"disk /dev/vda: the host's kernel drives it with nvme on pci; Pine's kernel "
                           f"{have.release} lacks nvme (it has for disks: ahci, ata_piix, ")  # fmt: skip


def test_an_image_not_read_before_the_plan_gives_none(tmp_path: Path) -> None:
    noise = tmp_path / "noise.img"
    noise.write_bytes(os.urandom(1 << 20))  # no partition table
    packed = tmp_path / "pine.img.gz"
    packed.write_bytes(gzip.compress(bytes(1 << 16)))
    for spec in (str(noise), str(packed), "https://example.invalid/pine.img", str(tmp_path / "absent.img")):
        assert provision.image_kernel(spec, str(tmp_path)) is None, spec
