#!/bin/sh
# Runs the virtio-blk benchmark (tests/bench/blk_bench.c): kvmrun's device
# and io_uring engine against raw fio on the same 1 GiB file in /var/tmp
# (filled with data first, removed at the end). Extra arguments go to
# blk_bench (--runtime S, --repeat N, --only qd1,qd32,..., --poll-us N,
# --size BYTES, --file PATH, --no-fio, --keep). On a shared machine use
# several rounds, e.g.: run-blk.sh build/tests/bench/blk_bench --repeat 5
set -eu
exe=${1:?usage: run-blk.sh PATH/TO/blk_bench [args]}
shift
command -v fio >/dev/null 2>&1 || echo "run-blk.sh: fio not installed: kvmrun figures only, no baseline"
exec "$exe" "$@"
