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
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def measure(cmd: list[str]) -> tuple[float, float, float, int]:
    """Runs @cmd once: (wall s, cpu s, peak RSS MiB, exit status)."""
    # posix_spawn (vfork-like) rather than fork: a forked Python child's
    # pages would count in the VMM's peak RSS.
    null = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
               (os.POSIX_SPAWN_DUP2, null, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    os.close(null)
    wall = time.perf_counter() - start
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def series(name: str, cmd: list[str], runs: int) -> dict:
    measure(cmd)  # warm the page cache
    samples = [measure(cmd) for _ in range(runs)]
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
    args = ap.parse_args()
    for path in (args.kvmrun, args.guest):
        if not os.path.exists(path):
            print(f'startup: {path} is missing; build first (meson setup build && ninja -C build)')
            return 1

    rows = [series('kvmrun', [args.kvmrun, f'kernel={args.guest}', f'mem={args.mem}',
                              'serial=none', 'debug_exit=on'], args.runs)]
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        rows.append(series('qemu -M microvm', [
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
