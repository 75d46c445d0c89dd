#!/usr/bin/env python3
"""Linux boot benchmark: the Debian cloud kernel (bzImage) and the busybox
initramfs of scripts/fetch-linux-kernel, booted to `poweroff -f` under
kvmrun, `qemu-system-x86_64 -M microvm` and `qemu-system-x86_64 -M pc`
(both `-accel kvm -cpu host`), with the same kernel, initramfs, command
line, RAM and vCPUs, interleaved round by round in one run. For each VMM,
medians over the rounds of:

- the time from exec to the init's first line (`kvmrun-init: start`);
- the time from exec to the VMM's exit after the guest's power-off;
- the VMM's CPU time (user + system, all its threads);
- its peak RSS (guest RAM the guest touched included);

and the ratio of kvmrun to each QEMU.

    python3 tests/bench/linux_boot.py [--rounds N] [--cpus N] [--mem 256M]
        [--cmdline '...'] [--kvmrun PATH] [--kernel PATH --initrd PATH]

Needs hardware virtualisation. On a host without it (no /dev/kvm, or one
backed by KVM's instruction emulator), the script runs itself in the
nested lane (tests/nested/l1) and says so: there every figure is inflated
by the emulated outer VM, and only the ratios mean anything.

Anchors measured elsewhere on bare metal: Firecracker's specification
allows 125 ms to init; Cloud Hypervisor about 104 ms; QEMU -M pc about
233 ms.
"""
from __future__ import annotations

import argparse
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import ROOT, build_path

import guestrun
import kvmtest

MARK = b'kvmrun-init: start'
DEFAULT_CMDLINE = 'console=ttyS0 quiet panic=-1 kvmrun.test=poweroff'


def boot_once(runstat: str, cmd: list[str], timeout: float) -> dict:
    """One boot through runstat: seconds to MARK and to exit, CPU seconds,
    peak RSS in MiB and the exit status (None where it did not happen)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([runstat] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    out, t_mark = b'', None
    fd = proc.stdout.fileno()
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            guestrun.kill_group(proc)
            break
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
        if t_mark is None and MARK in out:
            t_mark = time.monotonic() - t0
    proc.wait()
    last = out.rstrip(b'\n').rsplit(b'\n', 1)[-1].split()
    if len(last) != 4 or not all(x.isdigit() for x in last):
        return {'init': t_mark, 'exit': None, 'cpu': None, 'rss': None, 'rc': None}
    wall, cpu, rss, rc = (int(x) for x in last)
    return {'init': t_mark, 'exit': wall / 1e6, 'cpu': cpu / 1e6, 'rss': rss / 1024, 'rc': rc}


def median(samples: list[dict], key: str, scale: float = 1.0) -> float | None:
    vals = [s[key] * scale for s in samples if s[key] is not None and s['rc'] == 0]
    return statistics.median(vals) if vals else None


def fetch(args: argparse.Namespace) -> tuple[str, str] | None:
    if args.kernel and args.initrd:
        return args.kernel, args.initrd
    cache = build_path('linux')
    p = subprocess.run([os.path.join(ROOT, 'scripts', 'fetch-linux-kernel'), cache],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f'linux_boot: scripts/fetch-linux-kernel failed: {p.stderr.strip()}')
        return None
    return args.kernel or p.stdout.split()[0], args.initrd or os.path.join(
        cache, 'kvmrun-initrd.cpio.gz')


def vmms(args: argparse.Namespace, kernel: str, initrd: str) -> list[tuple[str, list[str]]]:
    mem_mib = kvmtest.size(args.mem) >> 20
    out = [('kvmrun', [args.kvmrun, f'kernel={kernel}', f'initrd={initrd}',
                       f'cpus={args.cpus}', f'mem={args.mem}', f'cmdline={args.cmdline}',
                       f'timeout={int(args.timeout)}'])]
    qemu = shutil.which('qemu-system-x86_64')
    if not qemu:
        print('linux_boot: qemu-system-x86_64 is not installed: kvmrun alone, no ratios')
        return out
    common = ['-accel', 'kvm', '-cpu', 'host', '-m', str(mem_mib), '-smp', str(args.cpus),
              '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
              '-no-reboot', '-kernel', kernel, '-initrd', initrd, '-append', args.cmdline]
    out.append(('qemu -M microvm', [qemu, '-M', 'microvm'] + common))
    out.append(('qemu -M pc', [qemu, '-M', 'pc'] + common))
    return out


def run_in_lane(why: str) -> int:
    """Runs this script, with the same arguments, in the nested lane."""
    print(f'linux_boot: {why}: running in the nested lane (tests/nested/l1)', flush=True)
    lane = os.path.join(ROOT, 'tests', 'nested', 'l1')
    return subprocess.call([lane, '--timeout', '3600', '--', sys.executable,
                            os.path.abspath(__file__)] + sys.argv[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--cpus', type=int, default=1)
    ap.add_argument('--mem', default='256M')
    ap.add_argument('--cmdline', default=DEFAULT_CMDLINE)
    ap.add_argument('--timeout', type=float, default=300, help='seconds per boot')
    ap.add_argument('--kvmrun', default=build_path('kvmrun'))
    ap.add_argument('--kernel', help='default: from scripts/fetch-linux-kernel')
    ap.add_argument('--initrd', help='default: from scripts/fetch-linux-kernel')
    args = ap.parse_args()
    runstat = build_path('tests', 'bench', 'runstat')
    if not benchlib.require_built('linux_boot', (args.kvmrun, runstat)):
        return 1
    files = fetch(args)  # on this host: the nested lane has no network
    if not files:
        return 1
    kind, why = kvmtest.host_kvm()
    if kind != 'native':
        if not (args.kernel and args.initrd):
            sys.argv += ['--kernel', files[0], '--initrd', files[1]]
        return run_in_lane(why)
    kernel, initrd = files

    lane = os.environ.get('KVMRUN_LANE') == 'nested'
    runs = vmms(args, kernel, initrd)
    for _, cmd in runs:  # warm the page cache
        boot_once(runstat, cmd, args.timeout)
    samples: dict[str, list[dict]] = {name: [] for name, _ in runs}
    for _ in range(args.rounds):
        for name, cmd in runs:
            samples[name].append(boot_once(runstat, cmd, args.timeout))

    print(f'Linux boot: {os.path.basename(kernel)} + {os.path.basename(initrd)}, '
          f'{args.cpus} vCPU(s), {args.mem}, cmdline "{args.cmdline}"')
    print(f'host: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or "x86_64"}; '
          f'median of {args.rounds} interleaved rounds')
    if lane:
        print('lane: NESTED (an outer VM under QEMU/TCG with an emulated SVM CPU): every time '
              'below is inflated by the emulation; only the ratios mean anything')
    rows = []
    for name, _ in runs:
        s = samples[name]
        bad = [x['rc'] for x in s if x['rc'] != 0]
        rows.append({'name': name, 'init': median(s, 'init', 1000),
                     'exit': median(s, 'exit', 1000), 'cpu': median(s, 'cpu', 1000),
                     'rss': median(s, 'rss'), 'codes': sorted({x['rc'] for x in s},
                                                           key=lambda c: (c is None, c)),
                     'note': f'  ({len(bad)} of {len(s)} boots failed)' if bad else ''})
    benchlib.print_table(rows, (('to init ms', 'init', 12), ('to exit ms', 'exit', 12),
                                ('CPU ms', 'cpu', 10), ('peak RSS MiB', 'rss', 13)))
    print('anchors (bare metal, elsewhere): Firecracker spec <= 125 ms to init, '
          'Cloud Hypervisor ~104 ms, QEMU -M pc ~233 ms')
    return 0 if all(not r['note'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
