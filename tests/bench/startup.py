#!/usr/bin/env python3
"""Start-up benchmark: exec to exit of the `hello` test guest (greeting,
then ACPI power-off) under kvmrun and under `qemu-system-x86_64 -M microvm`
with the same guest and 128 MiB of RAM, in the same run. Prints wall time,
CPU time (user+sys of the VMM and its threads) and peak RSS, as medians
over N runs, and the ratios kvmrun/QEMU.

    python3 tests/bench/startup.py [--runs N] [--kvmrun PATH] [--guest PATH]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import benchlib
from benchlib import build_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--kvmrun', default=build_path('kvmrun'))
    ap.add_argument('--guest', default=build_path('tests', 'guest', 'hello.elf'))
    ap.add_argument('--mem', default='128M')
    ap.add_argument('--runstat', default=build_path('tests', 'bench', 'runstat'))
    args = ap.parse_args()
    if not benchlib.require_built('startup', (args.kvmrun, args.guest, args.runstat)):
        return 1

    rows = [benchlib.runstat_series(args.runstat, 'kvmrun', [
        args.kvmrun, f'kernel={args.guest}', f'mem={args.mem}', 'serial=none', 'debug_exit=on'],
        args.runs)]
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        rows.append(benchlib.runstat_series(args.runstat, 'qemu -M microvm', [
            qemu, '-M', 'microvm', '-accel', 'kvm', '-m', args.mem, '-nodefaults',
            '-no-user-config', '-display', 'none', '-serial', 'none', '-no-reboot',
            '-device', 'isa-debug-exit,iobase=0x501,iosize=2', '-kernel', args.guest], args.runs))

    print(f'start-up of {os.path.basename(args.guest)} with {args.mem} RAM, median of {args.runs} runs')
    benchlib.print_table(rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
