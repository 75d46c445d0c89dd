#!/usr/bin/env python3
"""Restore benchmark (issue 17): time from exec to a restored guest
running and to its first console line, for several RAM sizes, beside
kvmrun's own cold boot of the same guest and QEMU's `-incoming` from a
file of the same guest, in the same run; and RSS after the restore
against RAM size.

The guest is the counter test guest with counter.ms=1: once running it
prints a line every millisecond of guest time, so its first output byte
after exec marks "running" to within a millisecond, and the first whole
`tick` line is "first console line". For a cold boot, running is the
first byte (`counter: start`, printed once the guest has filled its 8 MiB
buffer) and the first console line the first `tick`.

    python3 tests/bench/restore.py [--runs N] [--mem 128M,1G,4G]

Prints medians over N runs, and the ratios of each baseline to kvmrun's
restore. Needs /dev/kvm; QEMU rows need qemu-system-x86_64."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import build_path
from kvmtest import ctl, size


def timed_first_output(cmd: list[str], timeout: float = 120) -> tuple[float, float, int]:
    """Runs @cmd: (ms to the first stdout byte, ms to the first `tick` line,
    VmRSS bytes at that line); kills it after."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    first = line = None
    buf = b''
    rss = 0
    os.set_blocking(p.stdout.fileno(), False)
    end = t0 + timeout
    while time.monotonic() < end and p.poll() is None:
        try:
            chunk = p.stdout.read(65536)
        except BlockingIOError:
            chunk = None
        if not chunk:
            time.sleep(0.0002)
            continue
        now = time.monotonic()
        if first is None:
            first = now
        buf += chunk
        # a whole tick line: one that begins after a newline (or the output's start)
        for l in buf.split(b'\n')[:-1]:
            if l.startswith(b'tick '):
                line = now
                break
        if line:
            with open(f'/proc/{p.pid}/status') as f:
                rss = next(int(x.split()[1]) << 10 for x in f if x.startswith('VmRSS:'))
            break
    os.killpg(p.pid, 9)
    p.wait()
    if first is None or line is None:
        raise RuntimeError(f'no output from {" ".join(cmd)}')
    return (first - t0) * 1e3, (line - t0) * 1e3, rss


def series(cmd: list[str], runs: int) -> dict:
    timed_first_output(cmd)   # warm the page cache
    s = [timed_first_output(cmd) for _ in range(runs)]
    return {'running': statistics.median(x[0] for x in s),
            'line': statistics.median(x[1] for x in s),
            'rss': statistics.median(x[2] for x in s)}


def kvmrun_snapshot(kvmrun: str, guest: str, mem: str, snap: str, work: str) -> None:
    sock = os.path.join(work, 'snap.sock')
    p = subprocess.Popen([kvmrun, f'kernel={guest}', f'mem={mem}', 'cmdline=counter.ms=1',
                          'mem_overcommit=on', f'control={sock}'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if ctl(sock, 'status').startswith('ok'):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        assert ctl(sock, 'pause') == 'ok state=paused'
        r = ctl(sock, f'snapshot path={snap}', timeout=600)
        assert r.startswith('ok'), r
        ctl(sock, 'stop')
    finally:
        p.wait(60)


def qmp(sock_path: str, cmds: list[dict]) -> list[dict]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    f = s.makefile('rw')
    f.readline()
    out = []
    for c in [{'execute': 'qmp_capabilities'}] + cmds:
        f.write(json.dumps(c) + '\n')
        f.flush()
        while True:
            r = json.loads(f.readline())
            if 'return' in r or 'error' in r:
                out.append(r)
                break
    s.close()
    return out[1:]


def qemu_base(qemu: str, guest: str, mem: str) -> list[str]:
    return [qemu, '-M', 'microvm', '-accel', 'kvm', '-cpu', 'host', '-m', mem, '-nodefaults',
            '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
            '-kernel', guest, '-append', 'counter.ms=1']


def qemu_save(qemu: str, guest: str, mem: str, path: str, work: str) -> None:
    q = os.path.join(work, 'qmp.sock')
    p = subprocess.Popen(qemu_base(qemu, guest, mem) + ['-qmp', f'unix:{q},server=on,wait=off'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if os.path.exists(q):
                break
            time.sleep(0.1)
        time.sleep(1.5)
        qmp(q, [{'execute': 'migrate', 'arguments': {'uri': f'exec:cat > {path}'}}])
        for _ in range(6000):
            st = qmp(q, [{'execute': 'query-migrate'}])[0]['return'].get('status')
            if st in ('completed', 'failed'):
                break
            time.sleep(0.1)
        assert st == 'completed', st
        qmp(q, [{'execute': 'quit'}])
    finally:
        p.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--mem', default='128M,1G,4G')
    ap.add_argument('--kvmrun', default=build_path('kvmrun'))
    ap.add_argument('--guest', default=build_path('tests', 'guest', 'counter.elf'))
    args = ap.parse_args()
    if not benchlib.require_built('restore', (args.kvmrun, args.guest)):
        return 1
    qemu = shutil.which('qemu-system-x86_64')
    work = tempfile.mkdtemp(prefix='kvmrun-bench-restore-',
                            dir=os.environ.get('TMPDIR', '/var/tmp'))
    print(f'exec to running / to first console line (ms) and RSS after it, counter guest, '
          f'median of {args.runs}')
    print(f'{"mem":>6} {"what":<28} {"running ms":>11} {"line ms":>9} {"RSS MiB":>8}  ratio to restore')
    try:
        for mem in args.mem.split(','):
            snap = os.path.join(work, f'snap-{mem}')
            try:
                kvmrun_snapshot(args.kvmrun, args.guest, mem, snap, work)
            except (AssertionError, OSError, subprocess.TimeoutExpired) as e:
                print(f'{mem:>6} snapshot failed ({e}); skipped')
                continue
            rows = [('kvmrun restore', series([args.kvmrun, f'restore={snap}'], args.runs)),
                    ('kvmrun restore.prefault=on',
                     series([args.kvmrun, f'restore={snap}', 'restore.prefault=on'], args.runs)),
                    ('kvmrun cold boot', series([args.kvmrun, f'kernel={args.guest}', f'mem={mem}',
                                                 'mem_overcommit=on', 'cmdline=counter.ms=1'],
                                                args.runs))]
            if qemu:
                img = os.path.join(work, f'qemu-{mem}.mig')
                try:
                    qemu_save(qemu, args.guest, mem, img, work)
                    rows.append(('qemu -incoming exec:cat', series(
                        qemu_base(qemu, args.guest, mem) + ['-incoming', f'exec:cat {img}'],
                        args.runs)))
                except (AssertionError, OSError, subprocess.TimeoutExpired, RuntimeError) as e:
                    print(f'{mem:>6} qemu -incoming: not measured ({e})')
                finally:
                    if os.path.exists(img):
                        os.unlink(img)
            base = rows[0][1]
            for name, r in rows:
                print(f'{mem:>6} {name:<28} {r["running"]:>11.1f} {r["line"]:>9.1f} '
                      f'{r["rss"] / (1 << 20):>8.1f}  x{r["running"] / base["running"]:.2f} '
                      f'/ x{r["line"] / base["line"]:.2f}')
            print(f'{mem:>6} RSS after restore: {base["rss"] / size(mem) * 100:.1f}% of RAM')
            shutil.rmtree(snap, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
