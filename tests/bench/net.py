#!/usr/bin/env python3
"""virtio-net throughput of the test guest `net`: kvmrun vs QEMU, same run.

Each VMM boots tests/guest/net on a tap in a network namespace of its own
(created and always deleted here; traffic stays inside it) and:
  guest->host: the guest sends --frames UDP frames of --size payload bytes
    to 10.0.2.2:9 (net.send); rate from the guest's own timing line, and
    the tap's host-side counter confirms how many arrived;
  host->guest: a sender in the namespace floods 10.0.2.15:9 for --flood
    seconds; the guest's final `net: rx=N` gives what it took in.
QEMU runs `-netdev tap,...,vhost=off -device virtio-net-pci` (and vhost=on
for both where /dev/vhost-net exists; this host has none, so the userspace
backends are compared). Prints packets/s, Gbit/s (Ethernet frame bytes)
and the ratio kvmrun/QEMU. Needs root (namespaces).

On the build machines KVM is a software one: the guest runs through the
instruction emulator, so the absolute figures are tiny and measure the
guest as much as the VMM; the ratio is the point. For the device code
alone against the raw tap, see build/tests/bench/net_bench.

    python3 tests/bench/net.py [--build build] [--frames 3000] [--size 1024] [--flood 4]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
import guestrun  # noqa: E402

FLOOD = r'''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = b"\xa5" * int(sys.argv[2]); end = time.monotonic() + float(sys.argv[1]); n = 0
while time.monotonic() < end:
    for _ in range(64):
        try:
            s.sendto(buf, ("10.0.2.15", 9)); n += 1
        except OSError:
            pass
print(n)
'''


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def tap_rx_packets(ns: str) -> int:
    j = json.loads(sh('ip', '-n', ns, '-s', '-j', 'link', 'show', 'tap0').stdout)
    return int(j[0]['stats64']['rx']['packets'])


def one_run(label: str, cmd: list[str], ns: str, args) -> dict:
    out_path = f'/tmp/kvmrun-netbench-{os.getpid()}.out'
    with open(out_path, 'wb') as out:
        proc = subprocess.Popen(['ip', 'netns', 'exec', ns] + cmd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    res = {'label': label}

    def text() -> str:
        with open(out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')

    def wait_for(rx: str, timeout: float) -> re.Match | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(rx, text())
            if m or proc.poll() is not None:
                return m or re.search(rx, text())
            time.sleep(0.05)
        return None

    try:
        if not wait_for(r'net: ip=', 120):
            res['error'] = 'guest did not come up: ' + text()[-2000:]
            return res
        # timed on the host (the tap's counter), not by the guest's clock
        before = tap_rx_packets(ns)
        t_first = c_first = None
        end = time.monotonic() + 300
        while time.monotonic() < end:
            c, t = tap_rx_packets(ns), time.monotonic()
            if t_first is None and c - before > 10:
                t_first, c_first = t, c
            if c - before >= args.frames or re.search(r'net: sent \d+ udp', text()):
                break
            time.sleep(0.02)
        m = wait_for(r'net: sent (\d+) udp frames to \S+ in (\d+) ms', 60)
        if not m or t_first is None:
            res['error'] = 'no send result: ' + text()[-2000:]
            return res
        c_last, t_last = tap_rx_packets(ns), time.monotonic()
        res['tx_pps'] = (c_last - c_first) / max(t_last - t_first, 1e-3)
        res['tx_guest_pps'] = int(m.group(1)) * 1000 / max(int(m.group(2)), 1)
        res['tx_arrived'] = c_last - before
        res['tx_frames'] = int(m.group(1))
        flood = sh('ip', 'netns', 'exec', ns, sys.executable, '-c', FLOOD, str(args.flood),
                   str(args.size))
        res['flood_sent'] = int(flood.stdout.strip() or 0)
        m = wait_for(r'net: rx=(\d+) tx=(\d+)', args.seconds + 60)
        if not m:
            res['error'] = 'no final counters: ' + text()[-2000:]
            return res
        res['rx_pps'] = int(m.group(1)) / args.flood
        return res
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.unlink(out_path)


def run_vmm(label: str, make_cmd, args) -> dict:
    ns = f'kvmrun-bench-{os.getpid()}'
    sh('ip', 'netns', 'add', ns)
    try:
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', ns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap', 'vnet_hdr')
        sh('ip', '-n', ns, 'addr', 'add', '10.0.2.2/24', 'dev', 'tap0')
        sh('ip', '-n', ns, 'link', 'set', 'tap0', 'up')
        return one_run(label, make_cmd(), ns, args)
    finally:
        sh('ip', 'netns', 'del', ns, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', default=os.path.join(HERE, '..', '..', 'build'))
    ap.add_argument('--frames', type=int, default=3000)
    ap.add_argument('--size', type=int, default=1024, help='UDP payload bytes (<= 1472)')
    ap.add_argument('--flood', type=float, default=4.0, help='host->guest seconds')
    ap.add_argument('--seconds', type=int, default=40, help='guest lifetime (net.seconds)')
    args = ap.parse_args()
    if os.geteuid() != 0:
        print('net.py: needs root (network namespaces)')
        return 77
    kvmrun = os.path.join(args.build, 'kvmrun')
    guest = os.path.join(args.build, 'tests', 'guest', 'net.elf')
    for p in (kvmrun, guest):
        if not os.path.exists(p):
            print(f'net.py: {p} is missing (ninja -C {args.build})')
            return 1
    cmdline = (f'net.ip=10.0.2.15 net.peer=10.0.2.2 net.send={args.frames} net.size={args.size} '
               f'net.send_delay_ms=2000 net.seconds={args.seconds}')
    vhosts = ['off'] + (['on'] if os.path.exists('/dev/vhost-net') else [])
    qemu = shutil.which('qemu-system-x86_64')
    rows = []
    for vh in vhosts:
        rows.append(run_vmm(f'kvmrun vhost={vh}', lambda: [
            kvmrun, f'kernel={guest}', 'net0.tap=tap0', f'net0.vhost={vh}',
            'net0.mac=52:54:00:12:34:56', f'cmdline={cmdline}', 'debug_exit=on',
            f'timeout={args.seconds + 120}'], args))
        if qemu:
            rows.append(run_vmm(f'qemu vhost={vh}', lambda: guestrun.qemu_cmd(
                guest, ['-m', '128', '-netdev',
                        f'tap,id=n0,ifname=tap0,script=no,downscript=no,vhost={vh}',
                        '-device', 'virtio-net-pci,netdev=n0,disable-legacy=on,'
                        'mac=52:54:00:12:34:56'], append=cmdline), args))
    frame = 14 + 28 + args.size
    print(f'virtio-net, test guest `net`: {args.frames} frames of {args.size} B payload '
          f'({frame} B frames) guest->host, {args.flood:.0f} s flood host->guest')
    print(f'{"vmm":<18} {"g->h pps":>10} {"g->h Gb/s":>10} {"arrived":>9} '
          f'{"h->g pps":>10} {"h->g Gb/s":>10} {"(guest-timed g->h pps)":>24}')
    for r in rows:
        if 'error' in r:
            print(f'{r["label"]:<18} FAILED: {r["error"]}')
            continue
        print(f'{r["label"]:<18} {r["tx_pps"]:>10.0f} {r["tx_pps"] * frame * 8 / 1e9:>10.4f} '
              f'{r["tx_arrived"]:>5}/{r["tx_frames"]:<4} {r["rx_pps"]:>10.0f} '
              f'{r["rx_pps"] * frame * 8 / 1e9:>10.4f} {r["tx_guest_pps"]:>24.0f}')
    by = {r['label']: r for r in rows if 'error' not in r}
    for vh in vhosts:
        k, q = by.get(f'kvmrun vhost={vh}'), by.get(f'qemu vhost={vh}')
        if k and q:
            print(f'ratio kvmrun/qemu (vhost={vh}): guest->host {k["tx_pps"] / q["tx_pps"]:.2f}, '
                  f'host->guest {k["rx_pps"] / max(q["rx_pps"], 1e-9):.2f}')
    if not os.path.exists('/dev/vhost-net'):
        print('vhost=on not measured: /dev/vhost-net is missing on this host')
    return 0 if all('error' not in r for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
