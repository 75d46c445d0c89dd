#!/bin/sh
# The installed kvmrun, as a user of it gets it: `meson install` into a
# temporary DESTDIR, then checks of what was installed and a build of
# tests/install/*.c against it through pkg-config alone.
#
#   check.sh BUILD_ROOT SOURCE_ROOT WORK_DIR SANITIZE [--guests] HELLO_ELF BALLOON_ELF
#
# SANITIZE is the build's b_sanitize ("none", or e.g. "address,undefined"):
# the programs are built with it too, as an instrumented library needs.
# Then many_vms runs on the installed library: without --guests only what
# needs no KVM; with it, everything (8 VMs at once, in one process), and
# its exit status is passed on (77: skip).
set -u
build=$1 src=$2 work=$3 sanitize=$4
fails=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

rm -rf "$work"
mkdir -p "$work"
dest=$work/destdir
if ! meson install -C "$build" --no-rebuild --destdir "$dest" >"$work/install.log" 2>&1; then
	cat "$work/install.log"
	echo "FAIL meson install"
	exit 1
fi
ok "meson install --destdir $dest"

pc=$(find "$dest" -name kvmrun.pc | head -1)
lib=$(find "$dest" -name 'libkvmrun.so.0' | head -1)
hdr=$(find "$dest" -path '*/include/kvmrun.h' | head -1)
bin=$(find "$dest" -path '*/bin/kvmrun' | head -1)
man=$(find "$dest" -path '*/man1/kvmrun.1*' | head -1)
for f in "pkg-config file:$pc" "library:$lib" "header:$hdr" "binary:$bin" "man page:$man"; do
	if [ -n "${f#*:}" ] && [ -e "${f#*:}" ]; then ok "installed ${f%%:*}: ${f#*:}"; else fail "no ${f%%:*} installed"; fi
done
[ $fails -eq 0 ] || exit 1
libdir=$(dirname "$lib")

# the shared library: its soname, and only the public API exported
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libkvmrun.so.0 ] && ok "soname $soname" || fail "soname '$soname', want libkvmrun.so.0"
[ -L "$libdir/libkvmrun.so" ] && ok "libkvmrun.so links to $(readlink "$libdir/libkvmrun.so")" ||
	fail "no libkvmrun.so development link"
nm -D --defined-only "$lib" | awk '{ print $NF }' | sort >"$work/exported"
grep -v '^kvmrun_' "$work/exported" >"$work/foreign"
if [ -s "$work/foreign" ]; then
	fail "exported besides kvmrun_*: $(tr '\n' ' ' <"$work/foreign")"
else
	ok "nm -D --defined-only: $(wc -l <"$work/exported") symbols, all kvmrun_*"
fi
# every function the header declares is exported, and nothing else is
grep -o '^[a-z_ *]*\bkvmrun_[a-z_]*(' "$hdr" | grep -o 'kvmrun_[a-z_]*' | sort -u >"$work/declared"
if cmp -s "$work/declared" "$work/exported"; then
	ok "the header declares exactly the exported functions"
else
	fail "header and exports differ: $(diff "$work/declared" "$work/exported" | grep '^[<>]' | tr '\n' ' ')"
fi
if grep -q '#include "' "$hdr"; then fail "kvmrun.h includes a project header"; else ok "kvmrun.h includes only system headers"; fi

# the binary
v=$("$bin" --version)
[ "$v" = "kvmrun $(sed -n 's/^Version: //p' "$pc")" ] && ok "bin/kvmrun --version: $v" ||
	fail "bin/kvmrun --version: '$v'"

# the man page renders without warnings, with every key and exit status
if MANWIDTH=80 man --warnings -l "$man" >"$work/man.txt" 2>"$work/man.err" && [ ! -s "$work/man.err" ]; then
	ok "man -l renders kvmrun(1) ($(wc -l <"$work/man.txt") lines), no warnings"
else
	fail "man -l: $(head -5 "$work/man.err")"
fi
col -bx <"$work/man.txt" >"$work/man.plain"
"$bin" --print-config kernel=/k disk0.path=/d net0.tap=t >"$work/keys" || fail "--print-config"
missing=""
for key in $(sed -e 's/=.*//' -e 's/^\(disk\|net\)[0-9]*\./\1N./' "$work/keys"); do
	grep -Eq "^ {7}$key=" "$work/man.plain" || missing="$missing $key"
done
[ -z "$missing" ] && ok "kvmrun(1) has an entry for each of the $(wc -l <"$work/keys") keys" ||
	fail "kvmrun(1) lacks the keys:$missing"
missing=""
for code in 0 1 2 3 124 128+N 'v\*2+1'; do # (basic regular expressions)
	sed -n '/^EXIT STATUS/,/^[A-Z]/p' "$work/man.plain" | grep -q "^       $code\( \|\$\)" ||
		missing="$missing $code"
done
[ -z "$missing" ] && ok "kvmrun(1) lists the exit statuses" || fail "kvmrun(1) lacks exit statuses:$missing"

# programs built against the installed library through pkg-config alone
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs kvmrun) || { fail "pkg-config kvmrun"; exit 1; }
ok "pkg-config --cflags --libs kvmrun: $flags"
san=""
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
for p in example many_vms; do
	# shellcheck disable=SC2086
	if ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $san "$src/tests/install/$p.c" -o "$work/$p" \
		$flags -pthread 2>"$work/$p.err"; then
		ok "built tests/install/$p.c against the installed library"
	else
		fail "building $p.c: $(head -20 "$work/$p.err")"
	fi
done
[ $fails -eq 0 ] || exit 1
export LD_LIBRARY_PATH="$libdir"
resolved=$(ldd "$work/many_vms" | sed -n 's/.*libkvmrun.so.0 => \([^ ]*\).*/\1/p')
[ "$resolved" = "$lib" ] && ok "many_vms loads $resolved" || fail "many_vms loads '$resolved', not $lib"
[ $fails -eq 0 ] || exit 1

if [ $# -ge 7 ] && [ "$5" = --guests ]; then
	"$work/many_vms" "$6" "$7"
	exit $?
fi
# what needs no KVM: config errors, the kick signal, a failed start, leaks
"$work/many_vms" --no-guest "$5" "$6" || fails=$((fails + 1))
echo "$fails failed"
[ $fails -eq 0 ]
