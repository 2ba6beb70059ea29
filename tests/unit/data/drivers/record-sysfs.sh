#!/bin/sh
# How debian-6.1-sysfs.json was recorded (not run by the tests): Debian 12's kernel booted in QEMU with
# a busybox initramfs that loads the drivers of the devices below and runs the hijack probe
# (pineinstall.hijack.probe.SCRIPT); its "drivers" part, from a q35 machine (virtio-blk, virtio-scsi,
# AHCI, NVMe, pvscsi, usb-storage; virtio-net behind a PCIe root port, e1000, e1000e, vmxnet3, rtl8139)
# and from a pc machine (IDE on ata_piix). About 20 s per boot under TCG.
#   sh record-sysfs.sh WORKDIR REPO   (root; the .deb is in the test cache after a VM-tier run)
set -eu
W=$1 REPO=$2
DEB=$(ls ~/.cache/pineinstall-tests/debs/linux-image-6.1.0-*-amd64_*.deb | tail -1)
mkdir -p "$W" && cd "$W"
dpkg-deb -x "$DEB" k
V=$(ls k/lib/modules)
depmod -b k "$V"
mkdir -p ir/bin ir/mods ir/proc ir/sys ir/dev ir/root
cp /bin/busybox ir/bin/busybox
for l in sh mount insmod sleep poweroff; do ln -sf busybox ir/bin/$l; done
i=10
for m in virtio_pci virtio_blk virtio_scsi sd_mod ahci ata_piix nvme vmw_pvscsi virtio_net e1000 e1000e \
	vmxnet3 8139cp xhci_pci usb_storage; do modprobe -d k -S "$V" --show-depends $m; done |
	awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r p; do
	i=$((i + 1)); cp "$p" "ir/mods/$i-${p##*/}"
done
PYTHONPATH=$REPO python3 -c "from pineinstall.hijack import probe; print(probe.SCRIPT)" >ir/probe.sh
cat >ir/init <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin && /bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod "$m" 2>/dev/null; done
sleep 8
echo PINE-REC-BEGIN; HOME=/root sh /probe.sh 2>/dev/null; echo PINE-REC-END
poweroff -f
INIT
chmod +x ir/init
(cd ir && find . | cpio -o -H newc 2>/dev/null | gzip -1) >initrd.gz
for n in 0 1 2 3 4 5 6; do truncate -s 16M d$n.img; done
boot() { # machine, serial log, device arguments
	m=$1 log=$2; shift 2
	flock ~/.cache/pineinstall-tests/qemu.lock qemu-system-x86_64 -machine "$m" -accel tcg -cpu max -m 512M \
		-nodefaults -no-user-config -display none -no-reboot -serial "file:$log" -kernel "k/boot/vmlinuz-$V" \
		-initrd initrd.gz -append "console=ttyS0 panic=-1 loglevel=3" "$@"
	sed -n '/PINE-REC-BEGIN/,/PINE-REC-END/p' "$log" | sed '1d;$d' | tr -d '\r' >"$log.json"
}
disk() { echo "-drive if=none,id=$1,file=$1.img,format=raw"; }
# shellcheck disable=SC2046
boot q35 q35.log $(disk d0) -device virtio-blk-pci,drive=d0 \
	-device virtio-scsi-pci,id=vs $(disk d1) -device scsi-hd,bus=vs.0,drive=d1 \
	$(disk d2) -device ide-hd,bus=ide.0,drive=d2 $(disk d3) -device nvme,serial=pinenvme,drive=d3 \
	-device pvscsi,id=pv $(disk d4) -device scsi-hd,bus=pv.0,drive=d4 \
	-device qemu-xhci,id=xhci $(disk d5) -device usb-storage,bus=xhci.0,drive=d5 \
	-device pcie-root-port,id=rp1,chassis=1 -netdev user,id=n0 -device virtio-net-pci,netdev=n0,bus=rp1 \
	-netdev user,id=n1 -device e1000,netdev=n1 -netdev user,id=n2 -device e1000e,netdev=n2 \
	-netdev user,id=n3 -device vmxnet3,netdev=n3 -netdev user,id=n4 -device rtl8139,netdev=n4
# shellcheck disable=SC2046
boot pc pc.log -drive if=ide,file=d6.img,format=raw $(disk d0) -device virtio-blk-pci,drive=d0 \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0
python3 - "$V" <<'PY'
import json, sys
doc = {"kernel": f"Debian linux-image-{sys.argv[1]}"}
for m in ("q35", "pc"):
    doc[m] = json.load(open(f"{m}.log.json"))["drivers"]
print(json.dumps(doc, indent=1))
PY
