# The guest side of the Linux driver tests and of tests/bench/compare: a
# command loop on the serial console, so the host drives each step and acts
# between them (kills the VMM, takes a tap down, sets a balloon target).
#
# The host writes one line per command to the VMM's stdin, which is COM1's
# input: "@ID SHELL-COMMAND". The agent answers
#
#   kvmrun-t: begin ID
#   ...the command's output (stdout and stderr)...
#   kvmrun-t: end ID rc=STATUS
#
# and ignores any other line. "exit" ends the loop (init then powers off).
# Commands run in this shell (cd and variables persist) with stdin from
# /dev/null, so they cannot eat the host's next line. Started by the test
# initramfs as kvmrun.run=agent (tests/linux/make-initramfs.sh).
stty -echo 2>/dev/null
export HOME=/tmp
cd /tmp || exit 1
echo "kvmrun-t: ready"
while IFS= read -r line; do
	case $line in
	@*' '*) ;;
	*) continue ;;
	esac
	id=${line%% *}
	id=${id#@}
	cmd=${line#* }
	[ "$cmd" = exit ] && { echo "kvmrun-t: begin $id"; echo "kvmrun-t: end $id rc=0"; break; }
	echo "kvmrun-t: begin $id"
	eval "$cmd" </dev/null 2>&1
	echo "kvmrun-t: end $id rc=$?"
done
