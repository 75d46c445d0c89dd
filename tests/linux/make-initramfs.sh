#!/bin/sh
# Builds a tiny initramfs (gzip'd newc cpio) for booting stock Linux under
# kvmrun: busybox-static plus an /init that reports on the console and then
# does what the kernel command line asks:
#
#   kvmrun.test=poweroff   poweroff -f            (ACPI S5: kvmrun exits 0)
#   kvmrun.test=reboot     reboot -f              (ACPI reset register)
#   kvmrun.test=panic      echo c > /proc/sysrq-trigger
#
# and first prints what kvmrun.report= (a comma-separated list) asks:
#
#   topology   one line per CPU: package, core and sibling lists from sysfs
#   clock      guest uptime between two edges of the RTC (which reads the
#              host's clock) about 10 s apart: the guest's clock rate
#
# With MODULES=/lib/modules/VERSION (the kernel's module tree), the pvpanic
# modules are included and loaded first, so a panic reaches kvmrun through
# its pvpanic port and ends the VM with the crash exit code (3).
#
# The virtio drivers (virtio_pci, virtio_mmio, virtio_blk, virtio_net,
# virtio_balloon, and virtio-vsock's vmw_vsock_virtio_transport with vsock
# and vmw_vsock_virtio_transport_common: modules in Debian's cloud kernel)
# are included too, with
# their dependencies in load order (modprobe --show-depends), but loaded
# only for a driver test:
#
#   kvmrun.run=NAME[:ARGS]  load the virtio drivers, mount the tools disk
#              (the virtio disk whose serial is kvmrun-tools: an ext4 image
#              from tests/linux/make-tools-disk.sh holding fio, iperf3,
#              e2fsprogs, ethtool and their libraries) read-only at /tools,
#              and run /tools/guest/NAME.sh with ARGS (commas for spaces);
#              then do what kvmrun.test= says (default: poweroff)
#
# so the plain boots pay for none of it.
#
# Usage: [BUSYBOX=/path/to/static/busybox] [MODULES=DIR] make-initramfs.sh OUTPUT.cpio.gz
# Needs: root (for the /dev nodes), Debian 12 with busybox-static and cpio
#        (apt-get install busybox-static cpio).
set -eu

die() { echo "make-initramfs.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTPUT.cpio.gz"
out=$1

[ "$(id -u)" -eq 0 ] || die "must run as root (it creates /dev/console and /dev/null nodes)"
if [ -r /etc/debian_version ]; then
	case $(cat /etc/debian_version) in
	12*|bookworm*) ;;
	*) echo "make-initramfs.sh: warning: written for Debian 12, this is Debian $(cat /etc/debian_version)" >&2 ;;
	esac
else
	echo "make-initramfs.sh: warning: written for Debian 12; this is not Debian" >&2
fi
# BUSYBOX=/path/to/busybox uses that static binary instead of the installed
# package's (scripts/fetch-linux-kernel unpacks busybox-static without
# installing it).
if [ -n "${BUSYBOX:-}" ]; then
	bb=$BUSYBOX
	[ -x "$bb" ] || die "BUSYBOX=$bb is not an executable"
else
	if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
		die "busybox-static is not installed (apt-get install busybox-static)"
	fi
	bb=/bin/busybox
	[ -x "$bb" ] || die "$bb missing although busybox-static is installed"
fi
if ldd "$bb" >/dev/null 2>&1; then
	die "$bb is dynamically linked; reinstall busybox-static"
fi
command -v cpio >/dev/null || die "cpio is not installed (apt-get install cpio)"
command -v gzip >/dev/null || die "gzip is not installed"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] && continue
	ln -s busybox "$root/bin/$applet"
done
if [ -n "${MODULES:-}" ]; then
	mkdir -p "$root/lib/modules"
	for m in pvpanic pvpanic-mmio; do
		ko=$MODULES/kernel/drivers/misc/pvpanic/$m.ko
		if [ -f "$ko" ]; then
			cp "$ko" "$root/lib/modules/"
		else
			echo "make-initramfs.sh: warning: $ko missing; panics will look like reboots" >&2
		fi
	done
	# The virtio drivers and what they need, in load order. modprobe reads
	# modules.dep, which an unpacked (not installed) kernel package lacks:
	# depmod writes it into that tree first.
	ver=${MODULES%/}
	ver=${ver##*/}
	base=${MODULES%/lib/modules/*}
	[ "$base" != "$MODULES" ] || base=${MODULES%/usr/lib/modules/*}
	base=${base:-/}
	if [ ! -f "$MODULES/modules.dep" ] && command -v depmod >/dev/null; then
		depmod -b "$base" "$ver" || echo "make-initramfs.sh: warning: depmod failed" >&2
	fi
	: > "$root/lib/modules/virtio.order"
	for m in virtio_pci virtio_mmio virtio_blk virtio_net virtio_balloon vmw_vsock_virtio_transport; do
		if ! deps=$(modprobe -d "$base" -S "$ver" --show-depends "$m" 2>/dev/null); then
			echo "make-initramfs.sh: warning: no module $m in $MODULES; driver tests will fail" >&2
			continue
		fi
		for ko in $(echo "$deps" | sed -n 's/^insmod \([^ ]*\).*/\1/p'); do
			name=${ko##*/}
			grep -qx "$name" "$root/lib/modules/virtio.order" && continue
			cp "$ko" "$root/lib/modules/$name"
			echo "$name" >> "$root/lib/modules/virtio.order"
		done
	done
fi
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
export PATH=/bin:/sbin

# One line per CPU as sysfs shows the topology the VMM described.
report_topology() {
	for d in /sys/devices/system/cpu/cpu[0-9]*; do
		t=$d/topology
		echo "kvmrun-init: topology ${d##*/} package=$(cat $t/physical_package_id)" \
			"core=$(cat $t/core_id) threads=$(cat $t/thread_siblings_list)" \
			"cores=$(cat $t/core_siblings_list)"
	done
}

# The guest's clock against the host's: the RTC (which reads the host's
# time) ticks whole seconds, so time uptime from one RTC second edge to
# another, about 10 s of guest time apart.
# Only shell builtins between the edge and the uptime read: a process
# started there can take a tenth of a second in a loaded nested lane, and
# would make the two ends of the measurement late by different amounts.
rtc_edge() {
	read -r s </sys/class/rtc/rtc0/since_epoch
	while read -r n </sys/class/rtc/rtc0/since_epoch && [ "$n" = "$s" ]; do usleep 1000; done
	read -r u _ </proc/uptime
	echo "$n $u"
}
report_clock() {
	set -- $(rtc_edge)
	r0=$1 u0=$2
	sleep 10
	set -- $(rtc_edge)
	echo "kvmrun-init: clock rtc=$(($1 - r0))s uptime=$u0..$2"
}
# A driver test: the virtio drivers, the tools disk, then the test's script.
run_tools() {
	for m in $(cat /lib/modules/virtio.order 2>/dev/null); do
		insmod /lib/modules/$m || echo "kvmrun-init: insmod $m failed"
	done
	echo "kvmrun-init: loaded virtio drivers"
	mkdir -p /tools /tmp /run /etc /dev/shm /lib64
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm
	ln -sf /proc/mounts /etc/mtab
	tools=
	for i in 1 2 3 4 5 6 7 8 9 10; do
		for s in /sys/block/vd*/serial; do
			[ -f "$s" ] && [ "$(cat $s)" = kvmrun-tools ] && { d=${s%/serial}; tools=/dev/${d##*/}; }
		done
		[ -n "$tools" ] && break
		sleep 0.2
	done
	if [ -z "$tools" ] || ! mount -t ext4 -o ro,noload "$tools" /tools; then
		echo "kvmrun-init: no tools disk (a virtio disk with serial kvmrun-tools)"
		return
	fi
	ln -sf /tools/lib/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
	export PATH=/tools/bin:/bin LD_LIBRARY_PATH=/tools/lib MKE2FS_CONFIG=/tools/etc/mke2fs.conf
	echo "kvmrun-init: tools disk $tools"
	name=${1%%:*} args=
	[ "$name" = "$1" ] || args=$(echo "${1#*:}" | tr , ' ')
	if [ -f /tools/guest/$name.sh ]; then
		# shellcheck disable=SC2086
		sh /tools/guest/$name.sh $args
		echo "kvmrun-init: $name exited $?"
	else
		echo "kvmrun-init: no /tools/guest/$name.sh"
	fi
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "kvmrun-init: start"
# pvpanic first (pvpanic-mmio needs pvpanic): a panic then reaches the VMM
for m in pvpanic pvpanic-mmio; do
	[ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko && echo "kvmrun-init: loaded $m"
done
echo "kvmrun-init: kernel $(uname -r)"
echo "kvmrun-init: nproc $(nproc)"
echo "kvmrun-init: $(grep MemTotal /proc/meminfo)"
action=
reports=
run=
for arg in $(cat /proc/cmdline); do
	case $arg in
	kvmrun.test=*) action=${arg#kvmrun.test=} ;;
	kvmrun.report=*) reports=$(echo "${arg#kvmrun.report=}" | tr , ' ') ;;
	kvmrun.run=*) run=${arg#kvmrun.run=} ;;
	esac
done
for r in $reports; do
	case $r in
	topology) report_topology ;;
	clock) report_clock ;;
	*) echo "kvmrun-init: unknown report $r" ;;
	esac
done
if [ -n "$run" ]; then
	run_tools "$run"
	[ -n "$action" ] || action=poweroff
fi
echo "kvmrun-init: test=${action:-none}"
case $action in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic) sleep 1   # let the console drain: the panic's lines must not interleave with ours
       echo c > /proc/sysrq-trigger ;;
*) echo "kvmrun-init: no kvmrun.test=poweroff|reboot|panic on the command line; powering off"
   poweroff -f ;;
esac
# only reached if the request failed
echo "kvmrun-init: $action did not happen"
sleep 5
poweroff -f
INIT
chmod 755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 > "$out.tmp"
mv "$out.tmp" "$out"
echo "make-initramfs.sh: wrote $out ($(wc -c < "$out") bytes)"
