#!/bin/sh
# Builds the "tools disk" of the Linux driver tests and of tests/bench/compare:
# a small ext4 image that the test initramfs (make-initramfs.sh,
# kvmrun.run=NAME) mounts read-only at /tools from the virtio disk whose
# serial is kvmrun-tools. It holds what busybox lacks, each binary with the
# shared libraries ldd lists (flattened into /tools/lib, with the dynamic
# loader), and the guest side of the tests:
#
#   /tools/bin     fio iperf3 mkfs.ext4 e2fsck ethtool socat (vsock both ends)
#   /tools/lib     their libraries and ld-linux-x86-64.so.2
#   /tools/etc     mke2fs.conf
#   /tools/guest   tests/linux/guest/*.sh (run as kvmrun.run=NAME)
#
# Debian's fio alone links 64 libraries (~80 MB); on a disk that the guest
# reads on demand they cost a boot nothing, where in the initramfs every
# boot would decompress them.
#
# Usage: make-tools-disk.sh OUTPUT.img
# Needs: Debian 12 with fio, iperf3, e2fsprogs, ethtool and socat installed
#        (scripts/install-deps); no root.
set -eu

die() { echo "make-tools-disk.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 OUTPUT.img"
out=$1
here=$(cd "$(dirname "$0")" && pwd)

tools="fio iperf3 mkfs.ext4 e2fsck ethtool socat"
for t in $tools; do
	command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || [ -x "/sbin/$t" ] ||
		die "$t is not installed (scripts/install-deps)"
done
command -v mkfs.ext4 >/dev/null || PATH=$PATH:/usr/sbin:/sbin

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/tools
mkdir -p "$root/bin" "$root/lib" "$root/etc" "$root/guest"
for t in $tools; do
	bin=$(command -v "$t")
	cp -L "$bin" "$root/bin/$t"
	# "libfoo.so.1 => /path/libfoo.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
	for lib in $(ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		[ -f "$root/lib/${lib##*/}" ] || cp -L "$lib" "$root/lib/"
	done
done
[ -f "$root/lib/ld-linux-x86-64.so.2" ] || die "ldd named no ld-linux-x86-64.so.2"
cp /etc/mke2fs.conf "$root/etc/" 2>/dev/null || true
cp "$here"/guest/*.sh "$root/guest/"

# Room for the files plus ext4's own metadata; the image is sparse.
kib=$(du -sk "$root" | cut -f1)
size=$(( (kib * 5 / 4 + 16384) / 1024 ))M
rm -f "$out.tmp"
mkfs.ext4 -q -F -L kvmrun-tools -E root_owner=0:0 -O ^has_journal -d "$root" "$out.tmp" "$size" ||
	die "mkfs.ext4 -d failed"
mv "$out.tmp" "$out"
echo "make-tools-disk.sh: wrote $out ($size, $(ls "$root/bin" | wc -l) tools, $(ls "$root/lib" | wc -l) libraries)"
