"""Boots the virtio test guests (tests/guest/blk, balloon, net) under QEMU,
which has the same devices as kvmrun, so that the guest drivers are known
good before a kvmrun test relies on them.

  blk      virtio-blk-pci (modern only) on a raw image in /var/tmp; the same
           read-only; virtio-blk-device on microvm (virtio-mmio v2, found
           through the ACPI DSDT), two queues; the crash-test loop, killed,
           then the image checked against the last acknowledged flush
  balloon  virtio-balloon-pci: selftest mode with stats polling (set over
           QMP) and free page reporting; host-driven mode with a target set
           by QMP 'balloon'
  net      virtio-net-pci on a tap in a new network namespace: ARP, ICMP
           echo (answered by the guest), a UDP burst to the host side
           (skipped with one line without root, ip(8) or /dev/net/tun)

Exit 77 with one line if QEMU is missing."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import Checker

TIMEOUT = 120
UDP_BURST = 200
CRASH_MAGIC = 0x48534152434d564b  # "KVMCRASH"


def make_image(path: str, mib: int) -> None:
    """A fully written image (no holes), so reads do real I/O."""
    with open(path, 'wb') as f:
        chunk = b'\0' * (1 << 20)
        for _ in range(mib):
            f.write(chunk)


class Qemu:
    """A QEMU process run in the background, with a QMP socket."""

    def __init__(self, kernel: str, extra: list[str], append: str, machine: str = 'pc',
                 prefix: list[str] | None = None, paused: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix='kvmrun-qmp-')
        self.qmp_path = os.path.join(self.dir, 'qmp.sock')
        self.accel = guestrun.qemu_accel()
        cmd = guestrun.qemu_cmd(kernel, extra + ['-qmp', f'unix:{self.qmp_path},server=on,wait=off']
                                + (['-S'] if paused else []), self.accel, append, machine)
        self.cmd = (prefix or []) + cmd
        self.start = time.monotonic()
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, start_new_session=True)
        self.sock: socket.socket | None = None
        self.buf = b''

    def qmp(self, cmd: str, **args) -> dict:
        if self.sock is None:
            deadline = time.monotonic() + 10
            while True:
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.qmp_path)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            s.settimeout(10)
            self.sock = s
            self._read()  # greeting
            self.qmp('qmp_capabilities')
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._read()
            if 'return' in r or 'error' in r:
                return r

    def _read(self) -> dict:
        while b'\n' not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError('QMP closed')
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def output(self) -> str:
        self.out.seek(0)
        return self.out.read().decode('utf-8', 'replace').replace('\r', '')

    def wait_line(self, pattern: str, timeout: float) -> re.Match | None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for l in self.output().splitlines():
                m = rx.fullmatch(l)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return None

    def finish(self, timeout: float, kill: bool = False) -> guestrun.Result:
        timed_out = False
        if kill:
            guestrun.kill_group(self.proc)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            guestrun.kill_group(self.proc)
            self.proc.wait()
            timed_out = True
        if self.sock:
            self.sock.close()
        self.err.seek(0)
        r = guestrun.Result(cmd=self.cmd, rc=None if timed_out or kill else self.proc.returncode,
                            out=self.output(), err=self.err.read().decode('utf-8', 'replace'),
                            wall=time.monotonic() - self.start, timed_out=timed_out, accel=self.accel)
        shutil.rmtree(self.dir, ignore_errors=True)
        return r


def test_blk(c: Checker, tmp: str) -> None:
    img = os.path.join(tmp, 'blk.img')
    make_image(img, 8)
    drive = f'file={img},if=none,format=raw,id=d0,discard=unmap,cache=none,aio=threads'

    # PCI, modern only.
    r = guestrun.run_qemu(guestrun.guest('blk'), [
        '-drive', drive, '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on,serial=kvmrun-blk0'],
        '', TIMEOUT)
    c.line('blk-pci', r, 'virtio: pci id=2 at pci 00:02.0') or c.check(
        'blk-pci', bool(r.find(r'virtio: pci id=2 at pci .*')), 'found on PCI', r)
    c.line('blk-pci', r, 'blk: capacity=16384 sectors blk_size=512 seg_max=254 num_queues=1')
    for l in ('blk: verify multi-descriptor sector=8 count=16 ok',
              'blk: verify split-header sector=24 count=4 ok',
              'blk: verify indirect sector=32 count=8 ok', 'blk: flush ok',
              'blk: write past end -> ioerr ok', 'blk: serial=kvmrun-blk0', 'blk: discard ok',
              'blk: write_zeroes read back zeroes ok', 'irq: queue 0 raised', 'blk: all ok'):
        c.line('blk-pci', r, l)
    c.status('blk-pci', r, (guestrun.STATUS_POWEROFF,), 'ACPI poweroff')

    # Read-only: writes fail with IOERR, RO offered.
    r = guestrun.run_qemu(guestrun.guest('blk'), [
        '-drive', f'file={img},if=none,format=raw,id=d0,readonly=on',
        '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on'], 'blk.expect_ro=1', TIMEOUT)
    for l in ('blk: read-only offered ok', 'blk: write to read-only disk -> ioerr ok', 'blk: all ok'):
        c.line('blk-ro', r, l)
    c.status('blk-ro', r, (guestrun.STATUS_POWEROFF,), 'ACPI poweroff')

    # microvm: virtio-mmio v2 (not QEMU's legacy default), found in the DSDT,
    # two queues (the second one used too), interrupt through the IOAPIC.
    r = guestrun.run_qemu(guestrun.guest('blk'), [
        '-global', 'virtio-mmio.force-legacy=false', '-drive', drive,
        '-device', 'virtio-blk-device,drive=d0,num-queues=2,serial=mmio0'],
        'transport=mmio', TIMEOUT, machine='microvm')
    c.check('blk-mmio', bool(r.find(r'virtio: mmio id=2 at mmio 0x[0-9a-f]+ \(acpi\)')),
            'found through the ACPI DSDT (LNRO0005)', r)
    for l in ('blk: verify queue1 sector=96 count=4 ok', 'blk: serial=mmio0',
              'irq: queue 0 raised', 'blk: all ok'):
        c.line('blk-mmio', r, l)
    c.status('blk-mmio', r, (guestrun.STATUS_POWEROFF, guestrun.STATUS_PASS), 'poweroff')

    # microvm without ACPI: QEMU puts virtio_mmio.device=... on the command line.
    r = guestrun.run_qemu(guestrun.guest('blk'), [
        '-global', 'virtio-mmio.force-legacy=false', '-drive', drive,
        '-device', 'virtio-blk-device,drive=d0'], 'transport=mmio', TIMEOUT, machine='microvm,acpi=off')
    c.check('blk-mmio-noacpi', bool(r.find(r'virtio: mmio id=2 at mmio 0x[0-9a-f]+ \(cmdline\)')),
            'found through virtio_mmio.device= on the command line', r)
    c.line('blk-mmio-noacpi', r, 'blk: all ok')

    # Crash test: kill QEMU mid-loop; every sector must hold a sequence
    # number at least as new as the last flush the guest saw acknowledged.
    nsect = 32
    q = Qemu(guestrun.guest('blk'), ['-drive', drive, '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on'],
             f'blk.mode=crashtest blk.sectors={nsect} blk.start=100')
    q.wait_line(r'blk: flushed seq=(\d+)', 30)
    time.sleep(1.0)
    r = q.finish(5, kill=True)
    seqs = [int(m[1]) for m in r.find(r'blk: flushed seq=(\d+)')]
    if c.check('blk-crash', bool(seqs), f'{len(seqs)} flushes acknowledged before the kill', r):
        last = seqs[-1]
        bad = []
        with open(img, 'rb') as f:
            f.seek(100 * 512)
            data = f.read(nsect * 512)
        for i in range(nsect):
            magic, sector, seq = struct.unpack_from('<QQQ', data, i * 512)
            if magic != CRASH_MAGIC or sector != 100 + i or seq < last:
                bad.append((100 + i, hex(magic), sector, seq))
        c.check('blk-crash', not bad, f'all {nsect} sectors hold seq >= {last}' +
                (f'; bad: {bad[:4]}' if bad else ''), r)


def test_balloon(c: Checker) -> None:
    # Selftest, with stats polling every second (a QOM property, set over
    # QMP before the guest starts) and free page reporting.
    q = Qemu(guestrun.guest('balloon'), ['-m', '256', '-device',
             'virtio-balloon-pci,id=bal0,disable-legacy=on,free-page-reporting=on'],
             'balloon.selftest=1 balloon.pages=4096 balloon.wait_ms=2500', paused=True)
    q.qmp('qom-set', path='/machine/peripheral/bal0', property='guest-stats-polling-interval', value=1)
    q.qmp('cont')
    q.wait_line(r'balloon: stats answered n=1 .*', 30)
    stats = q.qmp('qom-get', path='/machine/peripheral/bal0', property='guest-stats')
    r = q.finish(TIMEOUT)
    for l in ('balloon: features=0x100000022 stats=1 deflate_on_oom=0 reporting=1',
              'balloon: actual=4096 pages', 'balloon: actual=0 pages',
              'balloon: reported 4 ranges (16384 KiB)', 'balloon: done'):
        c.line('balloon-selftest', r, l)
    c.check('balloon-selftest', bool(r.find(r'balloon: stats answered n=\d+ memfree=\d+ memtot=\d+')),
            'answered a stats request', r)
    st = stats.get('return', {}).get('stats', {})
    c.check('balloon-selftest', st.get('stat-total-memory', 0) > 200 << 20,
            f'QEMU sees stat-total-memory={st.get("stat-total-memory")}', r)
    c.check('balloon-selftest', bool(r.find(r'irq: (queue 0 raised|not seen)')), 'reports the irq check', r)
    c.status('balloon-selftest', r, (guestrun.STATUS_POWEROFF,), 'ACPI poweroff')

    # Host-driven: QMP 'balloon' to 240 MiB of 256 -> 4096 pages in the balloon.
    q = Qemu(guestrun.guest('balloon'), ['-m', '256', '-device', 'virtio-balloon-pci,id=bal0,disable-legacy=on'],
             'balloon.rounds=2 balloon.seconds=60')
    q.wait_line(r'balloon: waiting for targets .*', 30)
    q.qmp('balloon', value=240 << 20)
    ok1 = q.wait_line(r'balloon: actual=4096 pages', 30)
    info = q.qmp('query-balloon')
    q.qmp('balloon', value=256 << 20)
    r = q.finish(TIMEOUT)
    c.check('balloon-host', bool(ok1), 'inflated to the QMP target (4096 pages)', r)
    c.check('balloon-host', info.get('return', {}).get('actual') == (240 << 20),
            f'QEMU reports actual={info.get("return", {}).get("actual")} bytes', r)
    for l in ('balloon: target=4096 pages', 'balloon: target=0 pages', 'balloon: actual=0 pages',
              'balloon: done'):
        c.line('balloon-host', r, l)
    c.status('balloon-host', r, (guestrun.STATUS_POWEROFF,), 'ACPI poweroff')


PING_SCRIPT = r'''
import socket, struct, sys, time
def cs(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(0.5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.0.2.2", 9)); u.settimeout(0.5)
# room for the whole burst while the pings run: it arrives whatever the pace
u.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
ok = 0; udp = 0; payload = bytes(range(56))
for seq in range(1, 9):
    p = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + payload
    p = struct.pack("!BBHHH", 8, 0, cs(p), 0x4242, seq) + payload
    s.sendto(p, ("10.0.2.15", 0)); t = time.time()
    while time.time() - t < 1:
        try: d, a = s.recvfrom(2000)
        except socket.timeout: break
        ic = d[(d[0] & 15) * 4:]
        if ic[0] == 0 and ic[4:8] == struct.pack("!HH", 0x4242, seq) and ic[8:] == payload and cs(ic) == 0:
            ok += 1; break
    if ok >= 3: break
t = time.time()
while udp < int(sys.argv[1]) and time.time() - t < 30:
    try: u.recvfrom(2000); udp += 1
    except socket.timeout: pass
print("ping-replies", ok, "udp-received", udp)
'''


def test_net(c: Checker) -> None:
    ip = shutil.which('ip')
    if os.geteuid() != 0 or not ip or not os.path.exists('/dev/net/tun'):
        print('SKIP net: needs root, ip(8) and /dev/net/tun for a tap in a network namespace')
        return
    ns = f'kvmrun-virtio-{os.getpid()}'
    try:
        for cmd in (['netns', 'add', ns], ['-n', ns, 'tuntap', 'add', 'tap0', 'mode', 'tap'],
                    ['-n', ns, 'addr', 'add', '10.0.2.2/24', 'dev', 'tap0'],
                    ['-n', ns, 'link', 'set', 'tap0', 'up'], ['-n', ns, 'link', 'set', 'lo', 'up']):
            p = subprocess.run([ip] + cmd, capture_output=True, text=True)
            if p.returncode:
                print(f'SKIP net: ip {" ".join(cmd)}: {p.stderr.strip()}')
                return
        # The guest sends its UDP burst 4 s in, after the pings.
        q = Qemu(guestrun.guest('net'), [
            '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
            '-device', 'virtio-net-pci,netdev=n0,disable-legacy=on,mac=52:54:00:12:34:56'],
            f'net.seconds=12 net.send={UDP_BURST} net.send_delay_ms=4000', prefix=[ip, 'netns', 'exec', ns])
        q.wait_line(r'net: sent gratuitous arp', 30)
        p = subprocess.run([ip, 'netns', 'exec', ns, sys.executable, '-c', PING_SCRIPT,
                            str(UDP_BURST)], capture_output=True, text=True, timeout=90)
        r = q.finish(TIMEOUT)
        m = re.search(r'ping-replies (\d+) udp-received (\d+)', p.stdout)
        for l in ('net: mac=52:54:00:12:34:56 mtu=1500 hdr_len=12 mrg_rxbuf=1', 'net: link up',
                  'net: ip=10.0.2.15', 'irq: queue 0 raised'):
            c.line('net', r, l)
        c.check('net', bool(r.find(r'net: arp reply to 10\.0\.2\.2')), 'answered ARP', r)
        c.check('net', bool(m) and int(m[1]) >= 3, f'host got {m[1] if m else 0} valid echo replies '
                f'(ping from the namespace) {p.stderr.strip()}', r)
        c.check('net', bool(r.find(rf'net: sent {UDP_BURST} udp frames to 10\.0\.2\.2 in \d+ ms')),
                'sent the UDP burst', r)
        # The receiver holds the whole burst and waits for it (up to 30 s),
        # so the count does not depend on how fast this host runs the guest.
        c.check('net', bool(m) and int(m[2]) == UDP_BURST,
                f'host received {m[2] if m else 0} of {UDP_BURST} UDP datagrams', r)
        c.check('net', bool(r.find(r'net: rx=\d+ tx=\d+ arp_replies=\d+ icmp_replies=[1-9]\d* dropped=0')),
                'final counters', r)
        c.status('net', r, (guestrun.STATUS_POWEROFF,), 'ACPI poweroff after net.seconds')
    finally:
        subprocess.run([ip, 'netns', 'del', ns], capture_output=True)


def main() -> int:
    kvmtest.require_qemu_guests(('blk', 'balloon', 'net'))
    c = Checker()
    with tempfile.TemporaryDirectory(prefix='kvmrun-virtio-', dir='/var/tmp') as tmp:
        test_blk(c, tmp)
    test_balloon(c)
    test_net(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
