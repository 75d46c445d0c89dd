"""Metrics end to end with the blk test guest: the `metrics` control
command and metrics_file report the disk requests and bytes the guest did
(exactly, for the read-only check list), vCPU exits by kind and KVM's
in-kernel counters; metrics_file gets a line per metrics_period with the
wall-clock timestamp first; metrics=off keeps the counts but times
nothing."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import Checker, ctl, fields, run_kvmrun

BLK = guestrun.guest('blk')


def image(d: str, size: int = 64 << 20) -> str:
    path = os.path.join(d, 'disk.img')
    with open(path, 'wb') as f:
        f.truncate(size)
    return path


def parse_line(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in (t.split('=', 1) for t in line.split()) if v.isdigit()}


def file_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return [l for l in f.read().splitlines() if l]
    except OSError:
        return []


def test_readonly_exact(c: Checker, d: str, metrics: str) -> None:
    """The read-only check list does exactly: one 512-byte write (IOERR),
    one 512-byte read, one GET_ID. The last metrics_file line (written at
    exit) must say so."""
    path = image(d)
    mfile = os.path.join(d, f'metrics-{metrics}.log')
    r = run_kvmrun([f'kernel={BLK}', 'debug_exit=on', 'timeout=120', 'cmdline=blk.expect_ro=1',
                    f'disk0.path={path}', 'disk0.readonly=on', f'metrics={metrics}',
                    f'metrics_file={mfile}', 'metrics_period=1m'], timeout=180)
    lines = file_lines(mfile)
    name = f'metrics={metrics}'
    if not c.check(name + ' guest', r.rc == 0 and r.has_line('blk: all ok') and len(lines) == 1,
                   f'the guest passed and metrics_file has the line written at exit ({len(lines)} lines)', r):
        return
    m = parse_line(lines[0])
    want = {'disk0.requests': 3, 'disk0.reads': 1, 'disk0.read_bytes': 512, 'disk0.writes': 0,
            'disk0.write_bytes': 0, 'disk0.ioerr': 1, 'disk0.errors': 1, 'disk0.inflight': 0,
            'disk0.throttled': 0}
    got = {k: m.get(k) for k in want}
    c.check(name + ' disk counts', got == want, f'{got}')
    lat = m.get('disk0.lat_us_count')
    c.check(name + ' latency', lat == (3 if metrics == 'on' else 0)
            and m.get('disk0.lat_us_le_1048576', -1) <= (lat or 0),
            f'lat_us_count={lat}: every request timed with metrics=on, none with off')
    io = m.get('vcpu0.exits_io', 0)
    c.check(name + ' vcpu exits', (io > 100) == (metrics == 'on'),
            f'vcpu0.exits_io={io}: the guest\'s console and PCI config port writes, counted only with metrics=on')
    if metrics == 'on':
        kexits = m.get('vcpu0.kvm_exits')
        if kexits is None:
            c.skip('kvm stats', 'this kernel has no KVM_GET_STATS_FD')
        else:
            # kvm_io_exits is the kernel's own count: hardware KVM counts
            # every port I/O exit there, an emulator-backed one (kvm-pvm)
            # completes them in its instruction emulator and counts none
            kio = m.get('vcpu0.kvm_io_exits')
            c.check('kvm stats', kexits >= io and kio is not None and 'vcpu0.halt_ns' in m,
                    f'in-kernel vcpu0.kvm_exits={kexits} >= userspace io exits {io}, '
                    f'kvm_io_exits={kio} and halt_ns present')
    c.check(name + ' first field', lines[0].startswith('ts_ms=')
            and abs(m['ts_ms'] / 1000 - time.time()) < 300,
            f'the line starts with the wall-clock timestamp ({lines[0][:40]}...)')


def test_periodic_and_command(c: Checker, d: str) -> None:
    """The crash-test mode writes 8 x 4 KiB and flushes, for ever."""
    path = image(d)
    mfile = os.path.join(d, 'metrics-period.log')
    sock = os.path.join(d, 'ctl.sock')
    bg = kvmtest.Background([f'kernel={BLK}', 'debug_exit=on', 'timeout=60',
                             'cmdline=blk.mode=crashtest', f'disk0.path={path}',
                             f'control={sock}', f'metrics_file={mfile}', 'metrics_period=200ms'],
                            tag='metrics')
    try:
        if not c.check('crashtest guest', bg.wait_for_line(r'blk: flushed seq=3', 60) is not None,
                       'the guest is writing', None):
            print(bg.describe())
            return
        time.sleep(2)
        resp = ctl(sock, 'metrics')
        f = {k: int(v) for k, v in fields(resp).items() if v.isdigit()}
        w = f.get('disk0.writes', 0)
        c.check('ctl metrics', resp.startswith('ok ts_ms=') and w > 0
                and f.get('disk0.write_bytes') == 4096 * w and f.get('disk0.flushes', 0) > 0
                and f.get('disk0.lat_us_count', 0) > 0 and 'ram_rss' in f,
                f'writes={w} write_bytes={f.get("disk0.write_bytes")} (8 sectors each), '
                f'flushes={f.get("disk0.flushes")}, {len(resp)} bytes')
        r = run_kvmrun(['ctl', sock, 'metrics'], timeout=30)
        c.check('kvmrun ctl metrics', r.rc == 0 and r.out.startswith('ok ts_ms=')
                and 'disk0.lat_us_le_64=' in r.out and 'vcpu0.exits_io=' in r.out,
                r.out[:120], r)
        print('metrics line:', resp)
    finally:
        bg.stop()
    lines = file_lines(mfile)
    ts = [parse_line(l).get('ts_ms', 0) for l in lines]
    gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
    med = gaps[len(gaps) // 2] if gaps else 0
    c.check('metrics_file period', len(lines) >= 8 and all(l.startswith('ts_ms=') for l in lines)
            and 150 <= med <= 400,
            f'{len(lines)} lines, median gap {med} ms (period 200 ms)')
    writes = [parse_line(l).get('disk0.writes', 0) for l in lines]
    c.check('metrics_file monotonic', writes == sorted(writes) and writes[-1] > writes[0],
            f'disk0.writes grows line by line ({writes[0]} .. {writes[-1]})')


def test_bad_input(c: Checker, d: str) -> None:
    r = run_kvmrun([f'kernel={BLK}', 'debug_exit=on', 'timeout=60',
                    f'metrics_file={d}/no/such/dir/m.log'], timeout=90)
    c.check('metrics_file unopenable', r.rc != 0 and 'metrics_file' in r.err
            and 'No such file or directory' in r.err,
            'a clear error naming the key and the cause', r)
    r = run_kvmrun([f'kernel={BLK}', 'metrics_period=0s'], timeout=30)
    c.check('metrics_period bad', r.rc != 0 and 'metrics_period' in r.err, 'refused', r)
    r = run_kvmrun([f'kernel={BLK}', 'net0.tap=kvmrun-none0', 'net0.vhost=on',
                    'net0.bandwidth=1M'], timeout=30)
    c.check('net limit with vhost=on', r.rc != 0 and 'net0.bandwidth' in r.err
            and 'vhost' in r.err, 'refused, naming the key and why', r)
    r = run_kvmrun([f'kernel={BLK}', f'disk0.path={d}/x.img', 'disk0.bandwidth=fast'], timeout=30)
    c.check('disk limit bad', r.rc != 0 and 'disk0.bandwidth' in r.err, 'refused, naming the key', r)


def main() -> int:
    kvmtest.require_kvm()
    kvmtest.require_guest('blk')
    c = Checker()
    d = tempfile.mkdtemp(prefix='kvmrun-metrics-')
    try:
        test_readonly_exact(c, d, 'on')
        test_readonly_exact(c, d, 'off')
        test_periodic_and_command(c, d)
        test_bad_input(c, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
