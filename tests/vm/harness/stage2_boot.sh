#!/bin/bash
# Stage 2 (the Debian root, run as PID 1 by bash): mounts, modules, udev, then the test's command.
# Copied by the host into the per-run 9p share next to settings.sh and cmd.sh, so changing it does
# not rebuild the guest image. Results: output and rc files in the share, markers on the console.
RUN=/mnt/pinerun
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

off() {
    sync
    echo o > /proc/sysrq-trigger
    sleep 30
}
trap off EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
exec > /dev/console 2>&1
echo "PINE-GUEST-STAGE2 $(cut -d' ' -f1 /proc/uptime)"

# Modules without a device to autoload them. The rest (raid456, btrfs, xfs, dm targets, crypto
# modes, nls) the kernel requests through /sbin/modprobe on first use; raid456 and btrfs run slow
# xor/raid6 benchmarks at load, so they are not loaded unless a test needs them.
. "$RUN/settings.sh"
extra=""
[ "$PINE_NET" = 1 ] && extra="$extra virtio_net"
[ "$PINE_ISO" = 1 ] && extra="$extra ahci sr_mod"
modprobe -a qemu_fw_cfg md_mod raid0 raid1 dm_mod loop $extra
echo "PINE-T modprobe-done $(cut -d' ' -f1 /proc/uptime)"

# udev for /dev/disk/by-* links and the rules of mdadm and device-mapper; replaying only block
# (and net) devices: a full coldplug costs ~20 s under TCG.
/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --action=add --type=devices --subsystem-match=block --subsystem-match=net
udevadm settle --timeout=60
echo "PINE-T udev-done $(cut -d' ' -f1 /proc/uptime)"

ip link set lo up
if [ "$PINE_NET" = 1 ]; then
    for dev in /sys/class/net/*; do
        dev=${dev##*/}
        [ "$dev" = lo ] && continue
        ip link set "$dev" up
        ip addr add 10.0.2.15/24 dev "$dev"
        ip route add default via 10.0.2.2
        break
    done
    echo "nameserver 10.0.2.3" > /etc/resolv.conf
fi
if [ "$PINE_REPO" = 1 ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro repo /repo
    # Entry points of the project, as an installed package would have them.
    printf '#!/bin/sh\nexec python3 -c "import sys; from pineinstall.cli import main; sys.exit(main())" "$@"\n' \
        > /usr/local/bin/pineinstall
    printf '#!/bin/sh\nexec python3 -c "import sys; from butane_like.cli import main; sys.exit(main())" "$@"\n' \
        > /usr/local/bin/pine-transpile
    chmod 0755 /usr/local/bin/pineinstall /usr/local/bin/pine-transpile
fi
if [ "$PINE_SHARE" = 1 ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/share
fi

echo "PINE-GUEST-START $(cut -d' ' -f1 /proc/uptime)"
cd "$PINE_CWD" || cd /
bash "$RUN/cmd.sh" < /dev/null > "$RUN/output" 2>&1
rc=$?
echo "$rc" > "$RUN/rc"
echo "PINE-GUEST-RC=$rc $(cut -d' ' -f1 /proc/uptime)"
