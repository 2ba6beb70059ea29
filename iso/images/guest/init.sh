#!/bin/sh
# /init of the test images' initramfs (busybox): load the disk drivers, mount the root named by root=
# (UUID=, LABEL=, PARTUUID= or a device path), enter the OSTree deployment named by ostree= when there
# is one, and switch_root into the real init. Errors go to the console and the guest powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
    echo "PINE-INITRAMFS-ERROR: $*" > /dev/console
    sleep 2
    echo o > /proc/sysrq-trigger
    sleep 30
}

while read -r m; do
    insmod "/lib/modules/$m" 2> /dev/null || echo "initramfs: insmod $m failed" > /dev/console
done < /modules.list

root="" ostree="" mode=rw init=/sbin/init
for arg in $(cat /proc/cmdline); do
    case "$arg" in
    root=*) root=${arg#root=} ;;
    ostree=*) ostree=${arg#ostree=} ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
    init=*) init=${arg#init=} ;;
    esac
done
[ -n "$root" ] || die "no root= on the kernel command line"

# The disk appears asynchronously after virtio_blk loads: poll for up to 20 s.
dev="" i=0
while [ -z "$dev" ] && [ $i -lt 200 ]; do
    case "$root" in
    UUID=* | LABEL=*) dev=$(findfs "$root" 2> /dev/null) ;;
    PARTUUID=*)
        want=${root#PARTUUID=}
        dev=$(blkid | sed -n "s/^\([^:]*\):.*PARTUUID=\"$want\".*/\1/p" | head -n1)
        ;;
    *) [ -b "$root" ] && dev=$root ;;
    esac
    [ -n "$dev" ] || { sleep 0.1; i=$((i + 1)); }
done
[ -n "$dev" ] || die "root device $root not found"

mkdir -p /sysroot /newroot
mount -t ext4 -o "$mode" "$dev" /sysroot || die "cannot mount $dev ($root)"

if [ -n "$ostree" ]; then
    # What ostree-prepare-root does: the deployment becomes /, the physical root /sysroot, the
    # stateroot's var /var, and /usr is read-only.
    cd "/sysroot$ostree" 2> /dev/null || die "ostree=$ostree does not exist on $dev"
    deploy=$(pwd -P)
    cd /
    stateroot=${deploy%/deploy/*}
    mount --bind "$deploy" /newroot || die "cannot bind $deploy"
    mount --bind /sysroot /newroot/sysroot || die "cannot bind the physical root"
    mount --bind "$stateroot/var" /newroot/var || die "cannot bind $stateroot/var"
    mount --bind /newroot/usr /newroot/usr && mount -o remount,bind,ro /newroot/usr
    mkdir -p /newroot/run
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run && : > /newroot/run/ostree-booted
else
    mount --move /sysroot /newroot || die "cannot move the root"
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot "$init"
die "switch_root $init failed"
