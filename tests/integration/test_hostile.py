"""A hostile guest driver against kvmrun's virtio-blk, on both transports.

The `hostile` test guest (tests/guest/hostile/hostile.c) runs a list of
malformed-virtqueue attacks, each from a fresh reset, and checks that the
device answers with DEVICE_NEEDS_RESET (or fails the request with a status
the spec allows) and then works again after a reset. With
hostile.registers=1 it writes pseudo-random values to every register of the
device and to every slot's PCI configuration space instead, then checks
that the device still works.

What this test asserts, on PCI and on MMIO:
  - every attack line `hostile: <attack>: <outcome> ok` and `hostile: all
    ok`, exit status 0 (ACPI poweroff): no crash, no hang, device recovered;
  - kvmrun logged why it put the device into NEEDS_RESET, rate-limited
    (a handful of warn lines plus "similar messages suppressed", not one
    line per bad request);
  - kvmrun's peak RSS stays near that of a run with a single attack;
  - the register storm ends with exit 0 and `hostile: registers survived`
    (not a crash, not a hang: the run has a timeout).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import Checker

HOSTILE = guestrun.guest('hostile')

# name -> outcomes allowed (the contract of hostile.c's attack table)
ATTACKS = {
    'cyclic-chain': {'needs_reset'},
    'cyclic-chain-self': {'needs_reset'},
    'next-index-out-of-range': {'needs_reset'},
    'head-index-out-of-range': {'needs_reset'},
    'chain-longer-than-queue': {'needs_reset'},
    'indirect-in-indirect': {'needs_reset'},
    'indirect-len-0': {'needs_reset'},
    'indirect-len-not-16x': {'needs_reset'},
    'indirect-with-next': {'needs_reset'},
    'indirect-table-in-mmio-hole': {'needs_reset'},
    'buffer-in-mmio-hole': {'needs_reset'},
    'buffer-on-device-registers': {'needs_reset'},
    'buffer-above-ram': {'needs_reset'},
    'buffer-straddles-ram-end': {'needs_reset'},
    'buffer-at-64-tib': {'needs_reset'},
    'buffer-wraps-2^64': {'needs_reset'},
    'queue-size-3': {'needs_reset'},
    'queue-size-0': {'needs_reset'},
    'queue-size-32768': {'needs_reset'},
    'rings-in-mmio-hole': {'needs_reset'},
    'used-ring-past-ram-end': {'needs_reset'},
    'avail-ring-wraps-2^64': {'needs_reset'},
    'desc-ring-misaligned': {'needs_reset'},
    'avail-idx-jump': {'needs_reset'},
    'status-in-read-only-desc': {'needs_reset', 'no_status'},
    'status-read-only-after-writable': {'needs_reset'},
    'read-at-sector-2^32': {'ioerr'},
    'read-sector-times-512-wraps': {'ioerr'},
    'read-at-sector-2^64-1': {'ioerr'},
    'request-2^32-bytes': {'needs_reset', 'ioerr'},
    'write-zeroes-2^32-sectors': {'ioerr', 'unsupp'},
    'discard-2^32-sectors': {'ioerr', 'unsupp'},
    'reset-with-io-in-flight': {'quiesced'},
}

LINE = re.compile(r'hostile: (\S+): (\S+) ok')
NEEDS_RESET_LOG = re.compile(r'warn: virtio-blk0: malformed input from the guest driver '
                             r'\((.+)\): device needs reset')
# A rate-limited device logs at most about one line a second; these runs
# last seconds. A flood (a line per bad request or register write) would
# be thousands.
MAX_LOG_LINES = 60


class Run:
    """kvmrun to completion with its own rusage (os.wait4): exit status,
    output, peak RSS in KiB; killed (rc None) after `timeout` seconds."""

    def __init__(self, args: list[str], timeout: float = 180) -> None:
        self.cmd = [kvmtest.kvmrun_binary()] + args
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 start_new_session=True)
            status, ru = None, None
            while time.monotonic() - start < timeout:
                pid, st, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    status = st
                    break
                time.sleep(0.05)
            if status is None:
                os.killpg(p.pid, signal.SIGKILL)
                _, _, ru = os.wait4(p.pid, 0)
            p.returncode = 0  # reaped here, not by Popen
            self.wall = time.monotonic() - start
            self.rc = os.waitstatus_to_exitcode(status) if status is not None else None
            self.maxrss_kib = ru.ru_maxrss
            out.seek(0)
            err.seek(0)
            self.out = out.read().decode('utf-8', 'replace').replace('\r', '')
            self.err = err.read().decode('utf-8', 'replace')

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def describe(self) -> str:
        return (f'command: {" ".join(self.cmd)}\nexit: {self.rc} after {self.wall:.1f}s, '
                f'maxrss {self.maxrss_kib} KiB\n--- stdout ---\n{self.out}'
                f'\n--- stderr ---\n{self.err}')


def boot(disk: str, transport: str, guest_args: str, timeout: float = 180) -> Run:
    return Run([f'kernel={HOSTILE}', f'disk0.path={disk}', f'transport={transport}',
                'debug_exit=on', 'timeout=120', 'mem=128M',
                f'cmdline=transport={transport} {guest_args}'.strip()], timeout)


def check(c: Checker, name: str, ok: bool, detail: str, r: Run) -> bool:
    ok = c.check(name, ok, detail)
    if not ok:
        print(r.describe(), flush=True)
    return ok


def test_attacks(c: Checker, d: str, transport: str) -> None:
    disk = os.path.join(d, f'attacks-{transport}.img')
    with open(disk, 'wb') as f:
        f.truncate(64 << 20)
    r = boot(disk, transport, '')
    t = f'hostile {transport}'
    check(c, t + ' exit', r.rc == 0 and 'hostile: all ok' in r.lines(),
          'every attack handled, exit 0 after ACPI poweroff (no crash, no hang)', r)
    seen = {m.group(1): m.group(2) for m in (LINE.fullmatch(l) for l in r.lines()) if m}
    bad = {a: seen.get(a) for a, allowed in ATTACKS.items() if seen.get(a) not in allowed}
    check(c, t + ' attacks', not bad,
          f'{len(ATTACKS)} attack lines with an allowed outcome'
          + (f'; wrong or missing: {bad}' if bad else ''), r)
    fails = [l for l in r.lines() if 'FAIL' in l]
    check(c, t + ' no FAIL lines', not fails, f'{fails[:3]}' if fails else 'none', r)

    reasons = NEEDS_RESET_LOG.findall(r.err)
    resets = sum(1 for o in seen.values() if o == 'needs_reset')
    lines = r.err.splitlines()
    check(c, t + ' needs-reset logged', 0 < len(reasons) < resets,
          f'kvmrun named the reason ({reasons[:2]}) in {len(reasons)} warn line(s) for '
          f'{resets} resets: rate-limited', r)
    check(c, t + ' log rate-limited', len(lines) <= MAX_LOG_LINES,
          f'{len(lines)} stderr lines for {len(ATTACKS)} attacks (at most {MAX_LOG_LINES})', r)

    # RSS: against one attack on the same VM, so leaks per reset show up
    one = boot(disk, transport, 'hostile.only=cyclic-chain')
    growth = r.maxrss_kib - one.maxrss_kib
    check(c, t + ' rss', one.rc == 0 and growth < 16 * 1024 and r.maxrss_kib < 512 * 1024,
          f'peak RSS {r.maxrss_kib} KiB, {growth:+d} KiB over a one-attack run '
          f'({one.maxrss_kib} KiB); limits +16 MiB, 512 MiB', r)


def test_registers(c: Checker, d: str, transport: str) -> None:
    disk = os.path.join(d, f'regs-{transport}.img')
    with open(disk, 'wb') as f:
        f.truncate(64 << 20)
    for seed in (0x6b766d72756e, 0x1234567):
        r = boot(disk, transport, f'hostile.registers=1 hostile.seed={seed:#x}')
        t = f'hostile {transport} registers seed={seed:#x}'
        check(c, t, r.rc == 0 and 'hostile: registers survived' in r.lines(),
              'garbage in every register and config space: exit 0, device still works '
              f'({"timeout" if r.rc is None else f"exit {r.rc}"}, {r.wall:.1f}s)', r)
        lines = r.err.splitlines()
        check(c, t + ' log rate-limited', len(lines) <= MAX_LOG_LINES,
              f'{len(lines)} stderr lines for tens of thousands of bad writes', r)


def test_balloon_flood(c: Checker, d: str) -> None:
    """A guest that keeps the balloon's inflate queue full of hostile chains
    (68 descriptors at the same 60 MiB: a billion PFNs each; then the
    largest buffer allowed, 4096 PFNs, refilled without end): the control
    socket still answers and SIGTERM still ends kvmrun within 1 s."""
    sock = os.path.join(d, 'flood.sock')
    for what, args in (('68 x 60 MiB', ''),
                       ('4096-PFN buffers', 'hostile.flood_descs=1 hostile.flood_bytes=16384')):
        bg = kvmtest.Background([f'kernel={HOSTILE}', 'mem=128M', 'balloon=on',
                                 f'control={sock}', 'timeout=120',
                                 f'cmdline=hostile.flood=balloon {args}'.strip()], tag='flood')
        t = f'balloon flood ({what})'
        try:
            if bg.wait_for_line(r'hostile: balloon flood running', 60) is None:
                c.check(t, False, 'the flood did not start:\n' + bg.describe())
                continue
            time.sleep(1)
            t0 = time.monotonic()
            try:
                resp = kvmtest.ctl(sock, 'status', timeout=10)
            except OSError as e:
                resp = f'({e})'
            took = time.monotonic() - t0
            c.check(t + ': control socket', resp.startswith('ok ') and took < 1,
                    f'`status` answered in {took:.2f}s during the flood ({resp[:40]})')
            t0 = time.monotonic()
            os.kill(bg.pid, signal.SIGTERM)
            rc = bg.wait(30)
            took = time.monotonic() - t0
            ok = c.check(t + ': SIGTERM', rc == 143 and took < 1,
                         f'exit {rc} {took:.2f}s after SIGTERM (want 143 within 1 s)')
            if not ok:
                print(bg.describe())
        finally:
            bg.stop()


def main() -> int:
    kvmtest.require_kvm()
    if not os.path.exists(HOSTILE):
        print(f'FAIL: {HOSTILE} not built')
        return 1
    c = Checker()
    with tempfile.TemporaryDirectory(dir='/var/tmp') as d:
        test_balloon_flood(c, d)
        for transport in ('pci', 'mmio'):
            test_attacks(c, d, transport)
            test_registers(c, d, transport)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
