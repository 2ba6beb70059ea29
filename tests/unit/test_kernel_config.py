"""Pine's kernel config fragment (iso/lib/pine-kernel.config) and the check that the built config
honours it (iso/lib/kernel.py): an option kconfig drops (a dependency missing, a typo) fails the build
with its name instead of a kernel that boots without a driver."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.lib import kernel  # noqa: E402

FINAL = """\
CONFIG_64BIT=y
CONFIG_VIRTIO_BLK=y
CONFIG_LOCALVERSION="-pine"
# CONFIG_MODULES is not set
CONFIG_EXT4_FS=m
"""


def test_check_config_names_what_the_final_config_dropped_or_changed() -> None:
    fragment = 'CONFIG_VIRTIO_BLK=y\nCONFIG_LOCALVERSION="-pine"\nCONFIG_MODULES=n\nCONFIG_EXT4_FS=y\nCONFIG_NOPE=y\n'
    assert kernel.check_config(FINAL, fragment) == ["CONFIG_EXT4_FS=y (got m)", "CONFIG_NOPE=y (got unset)"]


def test_an_option_meant_off_must_be_absent() -> None:
    assert kernel.check_config(FINAL + "CONFIG_MODULES=y\n", "CONFIG_MODULES=n\n") == [
        "CONFIG_MODULES=n (got y)"
    ]
    assert kernel.check_config(FINAL, "CONFIG_MODULES=n\n") == []


def test_the_fragment_builds_in_what_pine_boots_with_and_no_modules() -> None:
    wanted = {}
    for line in kernel.FRAGMENT.read_text().splitlines():
        if line.startswith("CONFIG_"):
            name, _, value = line.partition("=")
            assert name not in wanted, f"{name} set twice in {kernel.FRAGMENT.name}"
            wanted[name] = value
    assert wanted["CONFIG_MODULES"] == "n"
    for name in ("VIRTIO_PCI", "VIRTIO_BLK", "VIRTIO_NET", "EXT4_FS", "FW_CFG_SYSFS", "SWAP", "DEVTMPFS",
                 "BLK_DEV_INITRD", "RD_GZIP", "UNIX98_PTYS", "PACKET", "IPV6", "EFI_STUB", "ACPI"):  # fmt: skip
        assert wanted[f"CONFIG_{name}"] == "y", name


def test_build_key_follows_the_source_version() -> None:
    assert kernel.build_key("6.1.192-3") != kernel.build_key("6.1.192-4")
    assert kernel.build_key("6.1.192-3") == kernel.build_key("6.1.192-3")
