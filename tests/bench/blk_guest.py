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
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def measure(runstat: str, cmd: list[str]) -> tuple[float, float, float, int]:
    out = subprocess.run([runstat] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True, text=True).stdout.split('\n')[-2]
    wall, cpu, rss, code = (int(x) for x in out.split())
    return wall / 1e3, cpu / 1e3, rss / 1024.0, code


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    args = ap.parse_args()
    kvmrun = os.path.join(args.build, 'kvmrun')
    guest = os.path.join(args.build, 'tests', 'guest', 'blk.elf')
    runstat = os.path.join(args.build, 'tests', 'bench', 'runstat')
    for p in (kvmrun, guest, runstat):
        if not os.path.exists(p):
            print(f'blk_guest: {p} is missing; build first')
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
    rows = {}
    try:
        for name, cmd in vmms.items():
            measure(runstat, cmd)
            samples = [measure(runstat, cmd) for _ in range(args.runs)]
            rows[name] = [statistics.median(s[i] for s in samples) for i in range(3)] + \
                [sorted({s[3] for s in samples})]
    finally:
        os.unlink(img)
    print(f'blk test guest, same work, median of {args.runs} runs')
    print(f'{"VMM":<14}{"wall ms":>10}{"cpu ms":>10}{"peak RSS MiB":>14}  exit codes')
    for name, (w, c, r, codes) in rows.items():
        print(f'{name:<14}{w:>10.1f}{c:>10.1f}{r:>14.1f}  {codes}')
    if len(rows) == 2:
        (kw, kc, kr, _), (qw, qc, qr, _) = rows.values()
        print(f'{"kvmrun/qemu":<14}{kw / qw:>10.2f}{kc / qc:>10.2f}{kr / qr:>14.2f}')
    else:
        print('baseline missing: qemu-system-x86_64 is not installed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
