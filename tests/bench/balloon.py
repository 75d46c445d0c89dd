#!/usr/bin/env python3
"""Balloon benchmark: time from a balloon request to the drop of the host
RSS of guest RAM, for SIZE (default 1 GiB), with the `balloon` test guest
(host-driven mode) under kvmrun (virtio-balloon, `balloon target=` on the
control socket) and under QEMU (virtio-balloon-pci, the QMP `balloon`
command) in the same run. RAM is prefaulted in both so the drop is real.

Prints, per VMM: the request's answer latency, the time until half and
all of SIZE has left the host RSS of guest RAM (/proc/PID/smaps of the RAM
mapping, polled every 10 ms), the guest's own inflation time (to its
`balloon: actual=N pages` line) and the RSS drop reached; then the ratios.

    python3 tests/bench/balloon.py [--size 1G] [--kvmrun PATH] [--guest PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import build_path
from kvmtest import MiB, ctl, ram_rss, size


class Proc:
    def __init__(self, cmd: list[str], tag: str) -> None:
        self.out_path = os.path.join(tempfile.gettempdir(), f'kvmrun-bench-{os.getpid()}-{tag}.out')
        self.out = open(self.out_path, 'wb')
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        with open(self.out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')

    def wait_line(self, pattern: str, timeout: float) -> float | None:
        rx = re.compile(pattern, re.M)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if rx.search(self.output()):
                return time.monotonic()
            if self.p.poll() is not None:
                return None
            time.sleep(0.01)
        return None

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.out.close()
        os.unlink(self.out_path)


def measure(name: str, proc: Proc, mem: int, target: int, request) -> dict | None:
    """@request() sends the balloon request and returns when it is answered."""
    if proc.wait_line(r'^balloon: waiting for targets', 120) is None:
        print(f'{name}: the guest did not start:\n{proc.output()[-2000:]}')
        return None
    time.sleep(0.5)
    rss0 = ram_rss(proc.p.pid, mem)
    pages = target // 4096
    t0 = time.monotonic()
    request()
    t_ans = time.monotonic()
    half = full = None
    deadline = t0 + 600
    drop = 0
    while time.monotonic() < deadline:
        drop = rss0 - ram_rss(proc.p.pid, mem)
        now = time.monotonic()
        if half is None and drop >= target // 2:
            half = now
        if drop >= target - 2 * MiB:
            full = now
            break
        if proc.p.poll() is not None:
            break
        time.sleep(0.01)
    t_guest = proc.wait_line(rf'^balloon: actual={pages} pages', 5)
    return {
        'name': name, 'rss0': rss0, 'drop': drop,
        'answer_ms': (t_ans - t0) * 1000,
        'half_s': (half - t0) if half else None,
        'full_s': (full - t0) if full else None,
        'guest_s': (t_guest - t0) if t_guest else None,
    }


def run_kvmrun(args, mem: int, target: int) -> dict | None:
    d = tempfile.mkdtemp(prefix='kvmrun-bench-')
    sock = os.path.join(d, 'ctl.sock')
    proc = Proc([args.kvmrun, f'kernel={args.guest}', f'mem={mem >> 20}M', 'mem_prefault=on',
                 'balloon=on', f'control={sock}', 'serial=stdio', 'timeout=900'], 'kvmrun')

    def request() -> None:
        r = ctl(sock, f'balloon target={target >> 20}M')
        if not r.startswith('ok'):
            raise RuntimeError(f'kvmrun: {r}')

    try:
        return measure('kvmrun', proc, mem, target, request)
    finally:
        try:
            ctl(sock, 'stop')
        except OSError:
            pass
        proc.close()
        shutil.rmtree(d, ignore_errors=True)


class QMP:
    def __init__(self, path: str) -> None:
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(200):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile('rw')
        json.loads(self.f.readline())          # greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name: str, **arguments) -> dict:
        msg = {'execute': name}
        if arguments:
            msg['arguments'] = arguments
        self.f.write(json.dumps(msg) + '\n')
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if 'return' in r or 'error' in r:       # skip events
                return r

    def close(self) -> None:
        self.s.close()


def run_qemu(args, mem: int, target: int) -> dict | None:
    qemu = shutil.which('qemu-system-x86_64')
    if not qemu:
        print('qemu: qemu-system-x86_64 not found; QEMU column skipped')
        return None
    d = tempfile.mkdtemp(prefix='kvmrun-bench-qmp-')
    qsock = os.path.join(d, 'qmp.sock')
    cmd = [qemu, '-M', 'pc', '-accel', 'kvm', '-nodefaults', '-display', 'none',
           '-no-reboot', '-serial', 'stdio', '-m', f'{mem >> 20}M', '-mem-prealloc',
           '-device', 'isa-debug-exit,iobase=0x501,iosize=2',
           '-device', 'virtio-balloon-pci,disable-legacy=on',
           '-qmp', f'unix:{qsock},server=on,wait=off', '-kernel', args.guest]
    proc = Proc(cmd, 'qemu')
    qmp = None

    def request() -> None:
        # QMP `balloon` takes the guest's target *size*, not the balloon's
        r = qmp.cmd('balloon', value=mem - target)
        if 'error' in r:
            raise RuntimeError(f'qemu: {r}')

    try:
        if proc.wait_line(r'^balloon: waiting for targets', 120) is None:
            print(f'qemu: the guest did not start:\n{proc.output()[-2000:]}')
            return None
        qmp = QMP(qsock)
        return measure('qemu', proc, mem, target, request)
    finally:
        if qmp:
            try:
                qmp.cmd('quit')
            except (OSError, ValueError):
                pass
            qmp.close()
        proc.close()
        shutil.rmtree(d, ignore_errors=True)


def fmt(v: float | None, unit: str = 's') -> str:
    return f'{v:8.2f} {unit}' if v is not None else '     n/a  '


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=size, default=size('1G'), help='balloon size (default 1G)')
    ap.add_argument('--kvmrun', default=build_path('kvmrun'))
    ap.add_argument('--guest', default=build_path('tests', 'guest', 'balloon.elf'))
    ap.add_argument('--no-qemu', action='store_true')
    args = ap.parse_args()
    if not benchlib.require_built('balloon', (args.kvmrun, args.guest)):
        return 1
    target = args.size
    mem = target + 256 * MiB  # room for the guest and its reserve
    print(f'balloon benchmark: {target >> 20} MiB into the balloon of a {mem >> 20} MiB guest '
          f'(prefaulted), guest {os.path.basename(args.guest)}')
    rows = [run_kvmrun(args, mem, target)]
    if not args.no_qemu:
        rows.append(run_qemu(args, mem, target))
    rows = [r for r in rows if r]
    print(f'{"":8} {"answer":>10} {"RSS -50%":>11} {"RSS -100%":>11} {"guest done":>11} '
          f'{"RSS drop":>10} {"MiB/s":>8}')
    for r in rows:
        rate = (target / MiB) / r['full_s'] if r['full_s'] else None
        print(f'{r["name"]:8} {fmt(r["answer_ms"], "ms")} {fmt(r["half_s"])} {fmt(r["full_s"])} '
              f'{fmt(r["guest_s"])} {r["drop"] >> 20:6d} MiB {rate or 0:8.1f}')
    if len(rows) == 2 and rows[0]['full_s'] and rows[1]['full_s']:
        print(f'kvmrun/qemu: time to the full RSS drop {rows[0]["full_s"] / rows[1]["full_s"]:.2f}x')
    return 0 if rows and all(r['full_s'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
