#!/usr/bin/env python3
"""The `blk` test guest doing the same fixed work (its whole check list:
patterned writes in several descriptor layouts, flush, read-back, get-id,
discard, write-zeroes) under kvmrun and under QEMU
(-drive aio=io_uring,cache=none -device virtio-blk-pci), side by side:
wall time, CPU time and peak RSS of the VMM, medians over N runs.

    python3 tests/bench/blk_guest.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import benchlib


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--build', default=benchlib.build_path())
    args = ap.parse_args()
    kvmrun = os.path.join(args.build, 'kvmrun')
    guest = os.path.join(args.build, 'tests', 'guest', 'blk.elf')
    runstat = os.path.join(args.build, 'tests', 'bench', 'runstat')
    if not benchlib.require_built('blk_guest', (kvmrun, guest, runstat)):
        return 1
    img = '/var/tmp/kvmrun-blk-guest-bench.img'
    with open(img, 'wb') as f:
        f.truncate(64 << 20)
    vmms = {'kvmrun': [kvmrun, f'kernel={guest}', 'mem=128M', 'serial=none', 'debug_exit=on',
                       f'disk0.path={img}', 'disk0.cache=none', 'disk0.io=io_uring', 'timeout=120']}
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        vmms['qemu -M pc'] = [qemu, '-M', 'pc', '-accel', 'kvm', '-m', '128M', '-nodefaults',
                              '-no-user-config', '-display', 'none', '-serial', 'none',
                              '-no-reboot', '-device', 'isa-debug-exit,iobase=0x501,iosize=2',
                              '-drive', f'if=none,id=d0,file={img},format=raw,aio=io_uring,cache=none',
                              '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on',
                              '-kernel', guest]
    try:
        rows = [benchlib.runstat_series(runstat, name, cmd, args.runs) for name, cmd in vmms.items()]
    finally:
        os.unlink(img)
    print(f'blk test guest, same work, median of {args.runs} runs')
    benchlib.print_table(rows, width=14)
    return 0


if __name__ == '__main__':
    sys.exit(main())
