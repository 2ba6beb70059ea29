"""pineinstall.hijack.drivers: the host's disk and NIC drivers, as the probe reads them from sysfs,
against the drivers of the image's kernel.

The sysfs trees below are built as Linux 6.1 lays them out for each device (the device directories,
their ``subsystem`` and ``driver`` links, the driver's ``module`` link when the driver is a module or
registers a module name): virtio-blk and virtio-net on PCI (also behind a PCIe root port), virtio-scsi,
AHCI, NVMe, Xen blkfront/netfront, Hyper-V storvsc/netvsc, vmxnet3, e1000e, a host kernel with
virtio built in (no module link: this machine's own kernel), and nbd (no device). The probe's own
``drivers`` shell function walks them. ``data/drivers/pine-6.1.192-modules.builtin`` is the
modules.builtin of Pine's kernel (iso/lib/kernel.py, linux-source 6.1.192-3, the cached build).
``data/drivers/debian-6.1-sysfs.json`` is what the probe printed on Debian 12's own kernel booted in
QEMU with those devices (``record-sysfs.sh`` there): the trees above match it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pineinstall.hijack import drivers, facts, plan, probe, refusals
from pineinstall.hijack.drivers import Driver, KernelDrivers

BUILTIN = Path(__file__).parent / "data" / "drivers" / "pine-6.1.192-modules.builtin"
RECORDED = Path(__file__).parent / "data" / "drivers" / "debian-6.1-sysfs.json"
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
MEMINFO = "MemTotal:         100000 kB\nMemAvailable:      40000 kB\n"
PCI = "pci0000:00"

# name -> (the block device's or NIC's sysfs device, [(device dir, bus, driver, module)] of the tree)
TREES: dict[str, tuple[str, list[tuple[str, str, str | None, str | None]]]] = {
    "virtio-blk": (f"{PCI}/0000:00:04.0/virtio1", [
        (f"{PCI}/0000:00:04.0", "pci", "virtio-pci", "virtio_pci"),
        (f"{PCI}/0000:00:04.0/virtio1", "virtio", "virtio_blk", "virtio_blk"),
    ]),
    "virtio-blk built in": (f"{PCI}/0000:00:02.0/virtio1", [
        (f"{PCI}/0000:00:02.0", "pci", "virtio-pci", None),
        (f"{PCI}/0000:00:02.0/virtio1", "virtio", "virtio_blk", None),
    ]),
    "virtio-scsi": (f"{PCI}/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0", [
        (f"{PCI}/0000:00:05.0", "pci", "virtio-pci", "virtio_pci"),
        (f"{PCI}/0000:00:05.0/virtio2", "virtio", "virtio_scsi", "virtio_scsi"),
        (f"{PCI}/0000:00:05.0/virtio2/host0", "scsi", None, None),
        (f"{PCI}/0000:00:05.0/virtio2/host0/target0:0:0", "scsi", None, None),
        (f"{PCI}/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0", "scsi", "sd", "sd_mod"),
    ]),
    "ahci": (f"{PCI}/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", [
        (f"{PCI}/0000:00:1f.2", "pci", "ahci", "ahci"),
        (f"{PCI}/0000:00:1f.2/ata1", "", None, None),
        (f"{PCI}/0000:00:1f.2/ata1/host0", "scsi", None, None),
        (f"{PCI}/0000:00:1f.2/ata1/host0/target0:0:0", "scsi", None, None),
        (f"{PCI}/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", "scsi", "sd", "sd_mod"),
    ]),
    "nvme": (f"{PCI}/0000:00:04.0/nvme/nvme0", [
        (f"{PCI}/0000:00:04.0", "pci", "nvme", "nvme"),
        (f"{PCI}/0000:00:04.0/nvme/nvme0", "", None, None),  # a class device: no bus, no driver
    ]),
    "xen blkfront": ("vbd-51712", [("vbd-51712", "xen", "vbd", "xen_blkfront")]),
    "hyper-v storvsc": ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b/host0/target0:0:0/0:0:0:0", [
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00", "acpi", "vmbus", "hv_vmbus"),
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b", "vmbus", "hv_storvsc", "hv_storvsc"),
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b/host0", "scsi", None, None),
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b/host0/target0:0:0", "scsi", None, None),
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/f8b3781b/host0/target0:0:0/0:0:0:0", "scsi", "sd",
         "sd_mod"),
    ]),
    # NICs
    "virtio-net behind a root port": (f"{PCI}/0000:00:02.0/0000:01:00.0/virtio3", [
        (f"{PCI}/0000:00:02.0", "pci", "pcieport", None),
        (f"{PCI}/0000:00:02.0/0000:01:00.0", "pci", "virtio-pci", "virtio_pci"),
        (f"{PCI}/0000:00:02.0/0000:01:00.0/virtio3", "virtio", "virtio_net", "virtio_net"),
    ]),
    "e1000": (f"{PCI}/0000:00:03.0", [(f"{PCI}/0000:00:03.0", "pci", "e1000", "e1000")]),
    "e1000e": (f"{PCI}/0000:00:02.0/0000:01:00.0", [
        (f"{PCI}/0000:00:02.0", "pci", "pcieport", None),
        (f"{PCI}/0000:00:02.0/0000:01:00.0", "pci", "e1000e", "e1000e"),
    ]),
    "vmxnet3": (f"{PCI}/0000:00:15.0/0000:03:00.0", [
        (f"{PCI}/0000:00:15.0", "pci", "pcieport", None),
        (f"{PCI}/0000:00:15.0/0000:03:00.0", "pci", "vmxnet3", "vmxnet3"),
    ]),
    "xen netfront": ("vif-0", [("vif-0", "xen", "vif", "xen_netfront")]),
    "hyper-v netvsc": ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/9a1f2b3c", [
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00", "acpi", "vmbus", "hv_vmbus"),
        ("LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/9a1f2b3c", "vmbus", "hv_netvsc", "hv_netvsc"),
    ]),
}  # fmt: skip

# what the probe prints for each: [bus, driver, module], nearest first, up to the bus adapter
WALKED = {
    "virtio-blk": [["virtio", "virtio_blk", "virtio_blk"], ["pci", "virtio-pci", "virtio_pci"]],
    "virtio-blk built in": [["virtio", "virtio_blk", ""], ["pci", "virtio-pci", ""]],
    "virtio-scsi": [["scsi", "sd", "sd_mod"], ["virtio", "virtio_scsi", "virtio_scsi"],
                    ["pci", "virtio-pci", "virtio_pci"]],
    "ahci": [["scsi", "sd", "sd_mod"], ["pci", "ahci", "ahci"]],
    "nvme": [["pci", "nvme", "nvme"]],
    "xen blkfront": [["xen", "vbd", "xen_blkfront"]],
    "hyper-v storvsc": [["scsi", "sd", "sd_mod"], ["vmbus", "hv_storvsc", "hv_storvsc"]],
    "virtio-net behind a root port": [["virtio", "virtio_net", "virtio_net"], ["pci", "virtio-pci", "virtio_pci"]],
    "e1000": [["pci", "e1000", "e1000"]],
    "e1000e": [["pci", "e1000e", "e1000e"]],
    "vmxnet3": [["pci", "vmxnet3", "vmxnet3"]],
    "xen netfront": [["xen", "vif", "xen_netfront"]],
    "hyper-v netvsc": [["vmbus", "hv_netvsc", "hv_netvsc"]],
}  # fmt: skip


def pine_kernel() -> KernelDrivers:
    return KernelDrivers("6.1.192-pine", {drivers.module_name(p): p for p in BUILTIN.read_text().split()})


def build_sysfs(root: Path, name: str, spec: Any = None) -> Path:
    """The tree of TREES[name] (or spec) under root/sys; returns the block device's or NIC's ``device``
    link."""
    sys = root / "sys"
    device, tree = spec or TREES[name]
    for path, bus, driver, module in tree:
        d = sys / "devices" / path
        d.mkdir(parents=True, exist_ok=True)
        if bus:
            (sys / "bus" / bus / "drivers").mkdir(parents=True, exist_ok=True)
            (d / "subsystem").symlink_to(os.path.relpath(sys / "bus" / bus, d))
        if driver:
            drv = sys / "bus" / bus / "drivers" / driver
            drv.mkdir(parents=True, exist_ok=True)
            (d / "driver").symlink_to(os.path.relpath(drv, d))
            if module and not (drv / "module").is_symlink():
                (sys / "module" / module).mkdir(parents=True, exist_ok=True)
                (drv / "module").symlink_to(os.path.relpath(sys / "module" / module, drv))
    link = root / "link" / name.replace(" ", "_") / "device"
    link.parent.mkdir(parents=True)
    link.symlink_to(sys / "devices" / device)
    return link


def walk(link: Path) -> Any:
    """The probe's own ``drivers`` function (and the helpers it uses) on one device link."""
    script = probe.SCRIPT
    helpers = script[: script.index("printf '{\"probe\"")]
    function = script[script.index("name() {") : script.index("printf '\"drivers\"")]
    out = subprocess.run(["sh", "-c", helpers + function + 'printf "["; drivers "$1"; printf "]"', "sh", str(link)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.real_processes
@pytest.mark.parametrize("name", sorted(TREES))
def test_the_probe_walks_up_to_the_bus_adapter(tmp_path: Path, name: str) -> None:
    assert walk(build_sysfs(tmp_path, name)) == WALKED[name]


@pytest.mark.real_processes
def test_the_probe_reads_this_machines_drivers() -> None:
    doc = probe.parse_output(subprocess.run(["sh", "-s"], input=probe.SCRIPT, capture_output=True, text=True).stdout)
    blocks, nics = doc["drivers"]["block"], doc["drivers"]["net"]
    assert "loop0" not in blocks and "lo" not in nics  # no sysfs device: not listed
    for name, found in [*blocks.items(), *nics.items()]:
        assert all(len(e) == 3 and e[1] for e in found), (name, found)
    if os.path.exists("/sys/block/vda/device"):  # this machine: virtio-blk on PCI
        assert [e[1] for e in blocks["vda"]] == ["virtio_blk", "virtio-pci"]


# the recorded devices: q35/pc, block or net, name -> whether Pine's kernel has all their drivers
VERDICTS = {
    ("q35", "block", "vda"): True,  # virtio-blk
    ("q35", "block", "sda"): True,  # virtio-scsi
    ("q35", "block", "sdb"): True,  # AHCI
    ("q35", "block", "nvme0n1"): False,
    ("q35", "block", "sdc"): False,  # pvscsi
    ("q35", "block", "sdd"): False,  # usb-storage
    ("pc", "block", "sda"): True,  # IDE on ata_piix
    ("pc", "block", "vda"): True,
    ("q35", "net", "eth0"): True,  # virtio-net behind a PCIe root port
    ("q35", "net", "eth1"): True,  # e1000
    ("q35", "net", "eth2"): False,  # e1000e
    ("q35", "net", "eth3"): False,  # vmxnet3
    ("q35", "net", "eth4"): False,  # rtl8139: 8139cp
    ("pc", "net", "eth0"): True,
}


def test_the_trees_are_what_debians_kernel_shows() -> None:
    rec = json.loads(RECORDED.read_text())
    same = {"virtio-blk": ("q35", "block", "vda"), "virtio-scsi": ("q35", "block", "sda"),
            "ahci": ("q35", "block", "sdb"), "nvme": ("q35", "block", "nvme0n1"),
            "virtio-net behind a root port": ("q35", "net", "eth0"), "e1000": ("q35", "net", "eth1"),
            "e1000e": ("q35", "net", "eth2"), "vmxnet3": ("q35", "net", "eth3")}  # fmt: skip
    for name, (machine, kind, dev) in same.items():
        assert rec[machine][kind][dev] == WALKED[name], name
    assert rec["pc"]["block"]["sda"] == [["scsi", "sd", "sd_mod"], ["pci", "ata_piix", "ata_piix"]]
    assert rec["q35"]["block"]["sdd"] == [["scsi", "sd", "sd_mod"], ["usb", "usb-storage", "usb_storage"]]


def test_the_recorded_devices_against_pines_kernel() -> None:
    rec = json.loads(RECORDED.read_text())
    have = pine_kernel()
    got = {
        (machine, kind, dev): not drivers.missing(chain, have)
        for machine in ("q35", "pc")
        for kind in ("block", "net")
        for dev, chain in drivers.chains({"drivers": rec[machine]}, kind).items()
    }
    assert got == VERDICTS


@pytest.mark.parametrize(
    ("bus", "name", "module", "wanted"),
    [
        ("virtio", "virtio_blk", "virtio_blk", "virtio_blk"),
        ("pci", "virtio-pci", "virtio_pci", "virtio_pci"),
        ("pci", "virtio-pci", "", "virtio_pci"),  # built into the host: the driver's name, - as _
        ("scsi", "sd", "sd_mod", "sd_mod"),
        ("scsi", "sd", "", "sd_mod"),  # built in: sd's module is sd_mod
        ("xen", "vbd", "xen_blkfront", "xen_blkfront"),
        ("xen", "vbd", "", "xen_blkfront"),
        ("xen", "vif", "", "xen_netfront"),
        ("pci", "nvme", "nvme", "nvme"),
        ("pci", "vmw_pvscsi", "vmw_pvscsi", "vmw_pvscsi"),
    ],
)
def test_the_module_a_driver_needs(bus: str, name: str, module: str, wanted: str) -> None:
    assert Driver(bus, name, module).wanted == wanted


def test_name_pairs_against_pines_modules_builtin() -> None:
    have = pine_kernel()
    assert len(have.modules) == len(BUILTIN.read_text().split()) == 119
    for name in ("virtio-blk", "virtio-blk built in", "virtio-scsi", "ahci", "virtio-net behind a root port", "e1000"):
        chain = drivers.chains({"drivers": {"block": {"x": WALKED[name]}}}, "block")["x"]
        assert drivers.missing(chain, have) == [], name
    lacking = {
        "nvme": ["nvme"],
        "xen blkfront": ["xen_blkfront"],
        "hyper-v storvsc": ["hv_storvsc"],  # sd_mod it has
        "e1000e": ["e1000e"],
        "vmxnet3": ["vmxnet3"],
        "xen netfront": ["xen_netfront"],
        "hyper-v netvsc": ["hv_netvsc"],
    }
    for name, wanted in lacking.items():
        chain = drivers.chains({"drivers": {"block": {"x": WALKED[name]}}}, "block")["x"]
        assert [d.wanted for d in drivers.missing(chain, have)] == wanted, name
    assert have.shown("disk") == ["ahci", "ata_piix", "libahci", "libata", "loop", "scsi_common", "scsi_mod",
                                  "sd_mod", "virtio_blk", "virtio_scsi"]  # fmt: skip
    assert have.shown("NIC") == ["e1000", "net_failover", "virtio_net"]


def host(disk: str, nic: str, **extra: Any) -> dict[str, Any]:
    """A probe document: the disk vda holds /, eth0 is static; their drivers those of TREES[disk/nic]."""
    return {
        "probe": 1, "user": "root", "home": "/root", "hostname": "vps", "markers": {}, "efi": False,
        "lsblk": {"blockdevices": [{"name": "vda", "path": "/dev/vda", "type": "disk", "size": 1 << 30,
                                    "mountpoint": "/"}]},
        "ip_addr": [{"ifindex": 2, "ifname": "eth0", "link_type": "ether", "address": "52:54:00:12:34:56",
                     "addr_info": [{"family": "inet", "local": "192.0.2.5", "prefixlen": 24, "scope": "global"}]}],
        "files": {"/etc/os-release": DEBIAN, "/proc/meminfo": MEMINFO},
        "drivers": {"block": {"vda": WALKED[disk]} if disk else {}, "net": {"eth0": WALKED[nic]}},
        **extra,
    }  # fmt: skip


def test_a_virtio_host_passes_and_the_plan_names_its_drivers() -> None:
    found = facts.parse(host("virtio-blk", "virtio-net behind a root port"))
    assert refusals.drivers(found, pine_kernel()) == []
    assert found.disk is not None and found.disk.drivers is not None
    assert drivers.describe(found.disk.drivers) == "virtio_blk on virtio, virtio-pci on pci"
    image = plan.Image("pine.img", "0" * 64, True)
    from pineinstall.hijack.carry import carry

    merged = carry(found, {"ignition": {"version": "3.4.0"}}, "h")
    text = plan.render("root@h", [], found, image, "c.bu", merged, [], None, pine_kernel())
    assert "  its kernel: 6.1.192-pine, 119 drivers (read from the image)\n" in text
    assert "read after the provisioning" in plan.render("root@h", [], found, image, "c.bu", merged, [])
    assert "    drivers: virtio_blk on virtio, virtio-pci on pci\n" in text
    assert "  NIC eth0 drivers: virtio_net on virtio, virtio-pci on pci\n" in text
    assert "lacks a driver the host's kernel uses" in text


def test_nvme_and_vmxnet3_are_refused_naming_device_driver_and_what_pine_has() -> None:
    found = facts.parse(host("nvme", "vmxnet3"))
    assert refusals.drivers(found, pine_kernel()) == [
        "disk /dev/vda: the host's kernel drives it with nvme on pci; Pine's kernel 6.1.192-pine lacks nvme (it "
        "has for disks: ahci, ata_piix, libahci, libata, loop, scsi_common, scsi_mod, sd_mod, virtio_blk, "
        "virtio_scsi), so the new Pine would not find its root",
        "NIC eth0: the host's kernel drives it with vmxnet3 on pci; Pine's kernel 6.1.192-pine lacks vmxnet3 (it "
        "has for NICs: e1000, net_failover, virtio_net), so the new Pine would not find its network",
    ]


def test_xen_names_driver_and_module_and_a_disk_without_device_is_refused() -> None:
    xen = refusals.drivers(facts.parse(host("xen blkfront", "xen netfront")), pine_kernel())
    assert xen[0].startswith("disk /dev/vda: the host's kernel drives it with vbd (xen_blkfront) on xen; ")
    assert "lacks xen_netfront" in xen[1]
    (nbd,) = refusals.drivers(facts.parse(host("", "e1000")), pine_kernel())
    assert nbd.startswith("disk /dev/vda: no driver for it in the host's sysfs")


def test_no_module_lists_in_the_image_or_none_probed_refuses_nothing() -> None:
    assert refusals.drivers(facts.parse(host("nvme", "vmxnet3")), None) == []
    older = host("nvme", "vmxnet3")
    del older["drivers"]
    found = facts.parse(older)
    assert found.disk is not None and found.disk.drivers is None and found.interfaces[0].drivers is None
    assert refusals.drivers(found, pine_kernel()) == []


def test_the_image_lists_are_read_from_a_deployment_or_a_plain_root(tmp_path: Path) -> None:
    assert drivers.image_drivers(str(tmp_path)) is None  # built otherwise: nothing to compare with
    deploy = tmp_path / "ostree" / "deploy" / "pine" / "deploy" / "abc.0" / "usr" / "lib" / "modules" / "6.1.192-pine"
    deploy.mkdir(parents=True)
    (deploy / "modules.builtin").write_text(BUILTIN.read_text())
    (deploy / "modules.dep").write_text("")
    have = drivers.image_drivers(str(tmp_path))
    assert have is not None and have.release == "6.1.192-pine" and set(have.modules) == set(pine_kernel().modules)
    # a kernel with loadable modules (Alpine's linux-virt): modules.dep's count too
    plain = tmp_path / "plain" / "lib" / "modules" / "6.18.56-0-virt"
    plain.mkdir(parents=True)
    (plain / "modules.builtin").write_text("kernel/drivers/block/virtio_blk.ko\n")
    (plain / "modules.dep").write_text(
        "kernel/drivers/nvme/host/nvme.ko.gz: kernel/drivers/nvme/host/nvme-core.ko.gz\n"
        "kernel/drivers/nvme/host/nvme-core.ko.gz:\n"
    )
    have = drivers.image_drivers(str(tmp_path / "plain"))
    assert have is not None and set(have.modules) == {"virtio_blk", "nvme", "nvme_core"}


@pytest.mark.real_processes
def test_a_name_json_cannot_hold_is_printed_as_a_question_mark(tmp_path: Path) -> None:
    odd = ("pci0000:00/0000:00:09.0", [("pci0000:00/0000:00:09.0", "pci", 'we"ird\\', None)])
    assert walk(build_sysfs(tmp_path, "odd", odd)) == [["pci", "?", ""]]
