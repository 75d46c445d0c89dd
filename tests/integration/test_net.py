"""virtio-net end to end: the test guest `net` (tests/guest/net) answers
ARP and ICMP echo for 10.0.2.15; the host side of its tap pings it.

Everything runs in a network namespace the test creates and always deletes
(`kvmrun-test-PID-TAG`): kvmrun runs in it through `ip netns exec` and
creates tap0 there, the tap gets 10.0.2.2/24, and the pings (iputils ping
when installed, else a raw ICMP socket in Python, both in the namespace)
check loss, round-trip time and that the payload pattern came back. No
traffic leaves the namespace.

Cases: net0.vhost=auto (vhost-net where /dev/vhost-net exists, else the
userspace backend, and it says which and why); the userspace backend
(net0.vhost=off); two queue pairs on a multi-queue
tap with MTU 9000; the virtio-mmio transport; the tap deleted under a running guest (reported, link
down, kvmrun keeps running); net0.vhost=on without /dev/vhost-net (a clear
error); vhost-net itself where the host has it (else one SKIP line).

Helpers here are shared with test_caps.py (import test_net).
"""
from __future__ import annotations

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

GUEST_IP = '10.0.2.15'
HOST_IP = '10.0.2.2'


def usable() -> str | None:
    """Why namespaces with taps cannot be used here, or None."""
    if shutil.which('ip') is None:
        return 'the ip command (iproute2) is missing'
    if not os.path.exists('/dev/net/tun'):
        return '/dev/net/tun is missing'
    if os.geteuid() != 0:
        return 'creating network namespaces needs root'
    return None


def require_usable() -> None:
    """Skips the whole test where KVM, network namespaces with taps or the
    net test guest are missing."""
    kvmtest.require_kvm()
    why = usable()
    if why:
        kvmtest.skip(why)
    kvmtest.require_guest('net')


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class Vm(kvmtest.Background):
    """kvmrun running in the background inside the namespace; output in files."""

    def __init__(self, cmd: list[str], tag: str) -> None:
        super().__init__([], tag=f'net-{tag}', cmd=cmd)
        # ip netns exec execs kvmrun: self.pid is kvmrun's

    def wait_for(self, pattern: str, timeout: float, stderr: bool = False) -> re.Match | None:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = rx.search(self.errors() if stderr else self.output(complete=True))
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.errors() if stderr else self.output(complete=True))
                return m
            time.sleep(0.05)
        return None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.wait(20)
        if rc is None:
            self.proc.kill()
            rc = self.wait(5)
        return rc

    def close(self) -> None:
        self.stop()
        super().close()


class Namespace:
    def __init__(self, tag: str) -> None:
        self.name = f'kvmrun-test-{os.getpid()}-{tag}'
        self.vms: list[Vm] = []

    def __enter__(self) -> 'Namespace':
        run('ip', 'netns', 'add', self.name)
        run('ip', '-n', self.name, 'link', 'set', 'lo', 'up')
        return self

    def __exit__(self, *exc) -> None:
        for vm in self.vms:
            vm.close()
        run('ip', 'netns', 'del', self.name, check=False)

    def exec_cmd(self, cmd: list[str]) -> list[str]:
        return ['ip', 'netns', 'exec', self.name] + cmd

    def start_kvmrun(self, args: list[str], tag: str = 'vm', prefix: list[str] = ()) -> Vm:
        vm = Vm(self.exec_cmd(list(prefix) + [kvmtest.kvmrun_binary()] + args), tag)
        self.vms.append(vm)
        return vm

    def has_link(self, dev: str) -> bool:
        return run('ip', '-n', self.name, 'link', 'show', dev, check=False).returncode == 0

    def wait_tap(self, dev: str, timeout: float = 20) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.has_link(dev):
                return True
            time.sleep(0.05)
        return False

    def host_side(self, dev: str) -> None:
        run('ip', '-n', self.name, 'addr', 'add', f'{HOST_IP}/24', 'dev', dev)
        run('ip', '-n', self.name, 'link', 'set', dev, 'up')

    def ping(self, dst: str, count: int, interval: float, size: int, pattern: str) -> dict:
        """sent, received, loss (%), bad (payload mismatches), rtt min/avg/max
        (ms), and the tool used: iputils ping when installed, else a raw
        ICMP socket in Python, run inside the namespace."""
        if shutil.which('ping'):
            r = run(*self.exec_cmd(['ping', '-c', str(count), '-i', str(interval), '-s',
                                    str(size), '-p', pattern, '-W', '2', dst]), check=False)
            out = r.stdout + r.stderr
            m = re.search(r'(\d+) packets transmitted, (\d+) received', out)
            rtt = re.search(r'= ([\d.]+)/([\d.]+)/([\d.]+)/', out)
            sent, got = (int(m.group(1)), int(m.group(2))) if m else (count, 0)
            return {'tool': 'ping', 'sent': sent, 'received': got,
                    'loss': 100.0 * (sent - got) / max(sent, 1),
                    'bad': out.count('wrong data byte'),
                    'rtt_min': float(rtt.group(1)) if rtt else 0.0,
                    'rtt_avg': float(rtt.group(2)) if rtt else 0.0,
                    'rtt_max': float(rtt.group(3)) if rtt else 0.0, 'output': out}
        r = run(*self.exec_cmd([sys.executable, os.path.abspath(__file__), 'ping', dst,
                                str(count), str(interval), str(size), pattern]), check=False)
        d = {'tool': 'python raw socket', 'output': r.stdout + r.stderr}
        for k, v in re.findall(r'(\w+)=([\d.]+)', r.stdout):
            d[k] = float(v) if '.' in v else int(v)
        d.setdefault('sent', count)
        d.setdefault('received', 0)
        d.setdefault('bad', 0)
        d['loss'] = 100.0 * (d['sent'] - d['received']) / max(d['sent'], 1)
        return d


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack(f'!{len(b) // 2}H', b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def _ping_main(dst: str, count: int, interval: float, size: int, pattern: str) -> None:
    """ICMP echo over a raw socket (needs CAP_NET_RAW: the test runs as root)."""
    pat = bytes.fromhex(pattern)
    payload = (pat * (size // len(pat) + 1))[:size]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    got = bad = 0
    rtts = []
    for seq in range(1, count + 1):
        h = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
        pkt = struct.pack('!BBHHH', 8, 0, _csum(h + payload), ident, seq) + payload
        t0 = time.monotonic()
        s.sendto(pkt, (dst, 0))
        deadline = t0 + 2.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                break
            icmp = data[(data[0] & 15) * 4:]
            typ, _, _, rid, rseq = struct.unpack('!BBHHH', icmp[:8])
            if typ == 0 and rid == ident and rseq == seq:
                rtts.append((time.monotonic() - t0) * 1000)
                got += 1
                bad += icmp[8:] != payload
                break
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    print(f'sent={count} received={got} bad={bad} '
          f'rtt_min={min(rtts, default=0):.3f} '
          f'rtt_avg={(sum(rtts) / len(rtts)) if rtts else 0:.3f} '
          f'rtt_max={max(rtts, default=0):.3f}')


PATTERN = 'a5c3'


def guest_args(seconds: int, extra: list[str] = ()) -> list[str]:
    """kvmrun arguments for the net guest. net.seconds is guest time (its
    TSC calibration), which can run several times faster than the host's
    clock: give it room, the namespace's exit stops the VM anyway."""
    return ['kernel=' + guestrun.guest('net'), 'log_level=info', 'serial=stdio',
            f'cmdline=net.ip={GUEST_IP} net.seconds={seconds}', f'timeout={seconds + 60}',
            'net0.tap=tap0'] + list(extra)


def ping_check(c: kvmtest.Checker, name: str, ns: Namespace, vm: Vm, count: int = 20,
               size: int = 1000) -> dict:
    """Pings the guest: 0% loss, every payload back intact, sane round trips."""
    r = ns.ping(GUEST_IP, count=count, interval=0.2, size=size, pattern=PATTERN)
    detail = (f"{r['received']}/{r['sent']} replies ({r['loss']:.0f}% loss), "
              f"{r['bad']} bad payloads, rtt min/avg/max "
              f"{r.get('rtt_min', 0):.2f}/{r.get('rtt_avg', 0):.2f}/{r.get('rtt_max', 0):.2f} ms "
              f"({r['tool']}, -s {size} -p {PATTERN})")
    ok = r['loss'] == 0 and r['bad'] == 0 and 0 < r.get('rtt_avg', 0) < 2000
    if not c.check(name, ok, detail):
        print(r['output'])
        print(vm.describe())
    return r


def boot(c: kvmtest.Checker, ns: Namespace, args: list[str], tag: str) -> Vm | None:
    vm = ns.start_kvmrun(args, tag)
    up = ns.wait_tap('tap0') and vm.wait_for(r'net: ip=10\.0\.2\.15', 120) is not None
    if not c.check(f'{tag}: guest up', up, 'tap0 exists and the guest printed its ip'):
        print(vm.describe())
        return None
    try:
        ns.host_side('tap0')
    except subprocess.CalledProcessError as e:
        # the tap goes away with kvmrun: say what became of it
        c.check(f'{tag}: host side of tap0', False, f'{" ".join(e.cmd)}: {e.stderr.strip()}')
        print(vm.describe())
        return None
    return vm


def test_auto(c: kvmtest.Checker) -> None:
    """net0.vhost=auto (the default) picks vhost-net where /dev/vhost-net
    exists, else the userspace backend, and says why."""
    have = os.path.exists('/dev/vhost-net')
    with Namespace('auto') as ns:
        vm = boot(c, ns, guest_args(30), 'auto')
        if not vm:
            return
        err = vm.errors()
        want = ('vhost-net backend on tap0' if have else
                'userspace backend on tap0')
        c.check('auto: backend logged', want in err and (have or 'vhost-net unavailable' in err),
                f'/dev/vhost-net {"exists" if have else "is missing"}: "{want}" and why')
        ping_check(c, 'auto: ping', ns, vm, count=5)


def test_userspace(c: kvmtest.Checker) -> None:
    with Namespace('us') as ns, tempfile.TemporaryDirectory(prefix='kvmrun-net-') as tmp:
        sock = os.path.join(tmp, 'ctl.sock')
        vm = boot(c, ns, guest_args(60, ['net0.vhost=off', f'control={sock}']), 'userspace')
        if not vm:
            return
        err = vm.errors()
        c.check('userspace: backend logged', 'userspace backend on tap0' in err,
                'net0.vhost=off: kvmrun says the userspace backend runs')
        m = re.search(r'net: mac=(\S+) mtu=(\d+) hdr_len=12 mrg_rxbuf=1', vm.output())
        c.check('userspace: features', m is not None and m.group(2) == '1500',
                'MAC, MTU 1500, 12-byte header, merged receive buffers negotiated')
        c.check('userspace: link up', 'net: link up' in vm.output(), 'VIRTIO_NET_S_LINK_UP')
        r = ping_check(c, 'userspace: ping', ns, vm)
        m = kvmtest.fields(kvmtest.ctl(sock, 'metrics'))
        got = {k: int(m.get(f'net0.{k}', -1)) for k in
               ('rx_packets', 'tx_packets', 'q0.rx_packets', 'q0.tx_packets', 'q0.rx_bytes')}
        c.check('userspace: metrics per queue', m.get('net0.source') == 'device' and
                got['q0.rx_packets'] == got['rx_packets'] >= r['received'] and
                got['q0.tx_packets'] == got['tx_packets'] >= r['received'] and
                got['q0.rx_bytes'] > 0 and 'net0.q1.rx_packets' not in m,
                f'one queue pair: its counters are the device\'s, at least the pings ({got})')
        # the tap goes away under the running guest
        run('ip', '-n', ns.name, 'link', 'del', 'tap0')
        gone = vm.wait_for(r'tap tap0 went away', 10, stderr=True) is not None
        down = vm.wait_for(r'net: link down', 30) is not None
        c.check('tap removed: reported, link down', gone and down and vm.proc.poll() is None,
                'kvmrun logs it, the guest sees the link go down, the VM keeps running')
        rc = vm.wait(150)
        c.check('tap removed: clean end', rc == 0, f'guest powered off at net.seconds (exit {rc})')
        if rc != 0:
            print(vm.describe())


def test_multiqueue_mtu(c: kvmtest.Checker) -> None:
    with Namespace('mq') as ns:
        vm = boot(c, ns, guest_args(120, ['net0.queues=2', 'net0.mtu=9000',
                                         'net0.mac=52:54:00:12:34:56']), 'mq')
        if not vm:
            return
        link = run('ip', '-n', ns.name, '-d', 'link', 'show', 'tap0').stdout
        c.check('mq: multi-queue tap with MTU 9000', 'multi_queue' in link and 'mtu 9000' in link,
                ' '.join(link.split()[:12]))
        c.check('mq: MAC and MTU offered',
                'net: mac=52:54:00:12:34:56 mtu=9000' in vm.output(), 'config space')
        ping_check(c, 'mq: ping', ns, vm, count=10)


def test_mmio(c: kvmtest.Checker) -> None:
    with Namespace('mmio') as ns:
        args = guest_args(120, ['transport=mmio'])
        args[3] = f'cmdline=transport=mmio net.ip={GUEST_IP} net.seconds=120'
        vm = boot(c, ns, args, 'mmio')
        if not vm:
            return
        c.check('mmio: found on virtio-mmio', 'virtio: mmio id=1' in vm.output(), 'transport')
        ping_check(c, 'mmio: ping', ns, vm, count=10)


def test_vhost(c: kvmtest.Checker) -> None:
    if not os.path.exists('/dev/vhost-net'):
        with Namespace('von') as ns:
            vm = ns.start_kvmrun(guest_args(10, ['net0.vhost=on']), 'vhost-on')
            rc = vm.wait(60)
            err = vm.errors()
            c.check('vhost=on without /dev/vhost-net: clear error',
                    rc == 1 and 'net0.vhost=on' in err and '/dev/vhost-net' in err and
                    not ns.has_link('tap0'),
                    f'exit {rc}: ' + (err.strip().splitlines() or [''])[-1])
        print('SKIP: vhost-net: /dev/vhost-net is missing on this host')
        return
    with Namespace('vh') as ns:
        vm = boot(c, ns, guest_args(120, ['net0.vhost=on']), 'vhost')
        if not vm:
            return
        c.check('vhost: backend logged', 'vhost-net backend on tap0' in vm.errors(), 'log line')
        ping_check(c, 'vhost: ping', ns, vm)


def main() -> int:
    require_usable()
    c = kvmtest.Checker()
    test_auto(c)
    test_userspace(c)
    test_multiqueue_mtu(c)
    test_mmio(c)
    test_vhost(c)
    return c.done()


if __name__ == '__main__':
    if len(sys.argv) == 7 and sys.argv[1] == 'ping':
        _ping_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
        sys.exit(0)
    sys.exit(main())
