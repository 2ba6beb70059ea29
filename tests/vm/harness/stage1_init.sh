#!/bin/sh
# Stage 1 (busybox, in the initramfs): find the root disk by its virtio serial, mount it and the per-run
# 9p share, then hand over to the per-run boot script that the host wrote into that share.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
    echo "PINE-STAGE1-ERROR: $*" > /dev/console
    echo o > /proc/sysrq-trigger
    sleep 30
}

while read -r m; do
    insmod "/lib/modules/$m" || die "insmod $m failed"
done < /modules.list

root=""
i=0
while [ -z "$root" ] && [ $i -lt 100 ]; do
    for s in /sys/block/vd*/serial; do
        [ -e "$s" ] || continue
        if [ "$(cat "$s")" = "pine-guest-root" ]; then
            d=${s%/serial}
            root=/dev/${d##*/}
        fi
    done
    [ -n "$root" ] || { sleep 0.1; i=$((i + 1)); }
done
[ -n "$root" ] || die "no virtio disk with serial pine-guest-root"

# The root disk is attached with snapshot=on: writes land in a throw-away overlay on the host.
mount -t ext4 -o rw,noatime "$root" /newroot || die "cannot mount $root"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 pinerun /newroot/mnt/pinerun \
    || die "cannot mount the 9p share pinerun"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /bin/bash /mnt/pinerun/boot.sh
die "switch_root failed"
