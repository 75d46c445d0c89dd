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
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def measure(runstat: str, cmd: list[str]) -> tuple[float, float, float, int]:
    """Runs @cmd once through runstat: (wall s, cpu s, peak RSS MiB, exit status)."""
    out = subprocess.run([runstat] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True, text=True).stdout.split('\n')[-2]
    wall, cpu, rss, code = (int(x) for x in out.split())
    return wall / 1e6, cpu / 1e6, rss / 1024.0, code


def series(runstat: str, name: str, cmd: list[str], runs: int) -> dict:
    measure(runstat, cmd)  # warm the page cache
    samples = [measure(runstat, cmd) for _ in range(runs)]
    codes = sorted({s[3] for s in samples})
    return {
        'name': name,
        'wall': statistics.median(s[0] for s in samples) * 1000,
        'cpu': statistics.median(s[1] for s in samples) * 1000,
        'rss': statistics.median(s[2] for s in samples),
        'codes': codes,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--kvmrun', default=os.path.join(ROOT, 'build', 'kvmrun'))
    ap.add_argument('--guest', default=os.path.join(ROOT, 'build', 'tests', 'guest', 'hello.elf'))
    ap.add_argument('--mem', default='128M')
    ap.add_argument('--runstat', default=os.path.join(ROOT, 'build', 'tests', 'bench', 'runstat'))
    args = ap.parse_args()
    for path in (args.kvmrun, args.guest, args.runstat):
        if not os.path.exists(path):
            print(f'startup: {path} is missing; build first (meson setup build && ninja -C build)')
            return 1

    rows = [series(args.runstat, 'kvmrun', [args.kvmrun, f'kernel={args.guest}', f'mem={args.mem}',
                              'serial=none', 'debug_exit=on'], args.runs)]
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        rows.append(series(args.runstat, 'qemu -M microvm', [
            qemu, '-M', 'microvm', '-accel', 'kvm', '-m', args.mem, '-nodefaults',
            '-no-user-config', '-display', 'none', '-serial', 'none', '-no-reboot',
            '-device', 'isa-debug-exit,iobase=0x501,iosize=2', '-kernel', args.guest], args.runs))

    print(f'start-up of {os.path.basename(args.guest)} with {args.mem} RAM, median of {args.runs} runs')
    print(f'{"VMM":<18}{"wall ms":>10}{"cpu ms":>10}{"peak RSS MiB":>14}  exit codes')
    for r in rows:
        print(f'{r["name"]:<18}{r["wall"]:>10.1f}{r["cpu"]:>10.1f}{r["rss"]:>14.1f}  {r["codes"]}')
    if len(rows) == 2:
        k, q = rows
        print(f'{"kvmrun/qemu":<18}{k["wall"] / q["wall"]:>10.2f}{k["cpu"] / q["cpu"]:>10.2f}'
              f'{k["rss"] / q["rss"]:>14.2f}')
    else:
        print('baseline missing: qemu-system-x86_64 is not installed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
