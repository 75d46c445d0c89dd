#!/usr/bin/env python3
"""Linux boot benchmark: time from exec to the first line the initramfs's
init prints (`kvmrun-init: start`), and to the VMM's exit after the init's
`poweroff -f`, for the Debian cloud kernel (bzImage) and the busybox
initramfs of scripts/fetch-linux-kernel, under kvmrun and under
`qemu-system-x86_64 -M microvm -accel kvm` with the same kernel, initrd,
command line, RAM and CPUs, in the same run. Prints medians over N runs and
the ratios kvmrun/QEMU.

    python3 tests/bench/linux_boot.py [--runs N] [--cpus N] [--mem 512M]
        [--cmdline '...'] [--kvmrun PATH] [--kernel PATH --initrd PATH]

A host whose KVM runs guests through its instruction emulator (measured
by the calibration test guest: under 200 M instructions/s) cannot boot Linux
in any useful time; there the script prints why and exits 0 without figures.
"""
from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import ROOT, build_path

NATIVE_MIPS = 200
MARK = b'kvmrun-init: start'
DEFAULT_CMDLINE = 'console=ttyS0 quiet panic=-1 kvmrun.test=poweroff'


def calibrate(kvmrun: str, guest: str) -> float | None:
    try:
        p = subprocess.run([kvmrun, f'kernel={guest}', 'timeout=60'], capture_output=True,
                           text=True, timeout=90)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'^calibrate: kips=(\d+)', p.stdout, re.M)
    return int(m.group(1)) / 1000 if m and p.returncode == 0 else None


def boot_once(cmd: list[str], timeout: float) -> tuple[float | None, float | None, int | None]:
    """(s to MARK, s to exit, exit status); None where it did not happen."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    buf, t_mark = b'', None
    fd = proc.stdout.fileno()
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            proc.kill()
            break
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if t_mark is None:
            buf = (buf + chunk)[-4096:]
            if MARK in buf:
                t_mark = time.monotonic() - t0
    try:
        rc = proc.wait(max(timeout - (time.monotonic() - t0), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return t_mark, None, None
    return t_mark, time.monotonic() - t0, rc


def series(name: str, cmd: list[str], runs: int, timeout: float) -> dict:
    boot_once(cmd, timeout)  # warm the page cache
    samples = [boot_once(cmd, timeout) for _ in range(runs)]
    marks = [s[0] for s in samples if s[0] is not None]
    exits = [s[1] for s in samples if s[1] is not None]
    return {
        'name': name,
        'init': statistics.median(marks) * 1000 if marks else None,
        'init_min': min(marks) * 1000 if marks else None,
        'exit': statistics.median(exits) * 1000 if exits else None,
        'note': f'  ({runs - len(marks)} runs never reached init)' if len(marks) < runs else '',
        'codes': sorted({s[2] for s in samples}, key=lambda c: (c is None, c)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--cpus', type=int, default=2)
    ap.add_argument('--mem', default='512M')
    ap.add_argument('--cmdline', default=DEFAULT_CMDLINE)
    ap.add_argument('--timeout', type=float, default=120, help='seconds per boot')
    ap.add_argument('--kvmrun', default=build_path('kvmrun'))
    ap.add_argument('--calibrate-guest', default=build_path('tests', 'guest', 'calibrate.elf'))
    ap.add_argument('--kernel', help='default: from scripts/fetch-linux-kernel')
    ap.add_argument('--initrd', help='default: from scripts/fetch-linux-kernel')
    args = ap.parse_args()
    if not benchlib.require_built('linux_boot', (args.kvmrun, args.calibrate_guest)):
        return 1

    mips = calibrate(args.kvmrun, args.calibrate_guest)
    if mips is None:
        print('linux_boot: the calibration guest did not run; cannot tell whether this host '
              'runs guests natively')
        return 1
    if mips < NATIVE_MIPS:
        print(f"linux_boot: no figures: this host runs guests through KVM's instruction emulator "
              f'({mips:.1f} M instr/s, native KVM is >= {NATIVE_MIPS}); a Linux boot would take '
              'minutes and measure the emulator, not the VMM')
        return 0

    kernel, initrd = args.kernel, args.initrd
    if not kernel or not initrd:
        cache = build_path('linux')
        p = subprocess.run([os.path.join(ROOT, 'scripts', 'fetch-linux-kernel'), cache],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f'linux_boot: scripts/fetch-linux-kernel failed: {p.stderr.strip()}')
            return 1
        kernel = kernel or p.stdout.split()[0]
        initrd = initrd or os.path.join(cache, 'kvmrun-initrd.cpio.gz')

    mem_mib = int(args.mem.rstrip('Mm')) if args.mem.rstrip('Mm').isdigit() else 512
    rows = [series('kvmrun', [args.kvmrun, f'kernel={kernel}', f'initrd={initrd}',
                              f'cpus={args.cpus}', f'mem={args.mem}', f'cmdline={args.cmdline}',
                              f'timeout={int(args.timeout)}'], args.runs, args.timeout)]
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        rows.append(series('qemu -M microvm', [
            qemu, '-M', 'microvm', '-accel', 'kvm', '-cpu', 'host', '-m', str(mem_mib),
            '-smp', str(args.cpus), '-nodefaults', '-no-user-config', '-display', 'none',
            '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-initrd', initrd,
            '-append', args.cmdline], args.runs, args.timeout))

    print(f'Linux boot: {os.path.basename(kernel)} + {os.path.basename(initrd)}, '
          f'{args.cpus} CPUs, {args.mem}, cmdline "{args.cmdline}"')
    print(f'host: {mips:.0f} M guest instructions/s (calibration guest); median of {args.runs} runs')
    benchlib.print_table(rows, (('to init ms', 'init', 12), ('(min)', 'init_min', 10),
                                ('to exit ms', 'exit', 12)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
