"""virtio-net under Linux's own virtio_net driver (Debian's cloud kernel),
with vhost=on (the host kernel's vhost-net moves the packets) and with
vhost=off (kvmrun's userspace backend), one boot each, both with
queues=2, mtu=9000 and 2 vCPUs, on a tap kvmrun creates in a network
namespace the test made (peer 10.0.2.1, guest 10.0.2.15):

- the guest sees MTU 9000 and two queue pairs (/sys/class/net/eth0/queues,
  ethtool -l);
- 100 pings to the peer, 0% loss;
- 8000-byte pings cross unfragmented (the peer's tap counts whole frames);
- 64 MiB over TCP each way (HTTP from the peer, then the same bytes back),
  with the same sha256 on both sides;
- iperf3 in each direction from both vCPUs at once (4 streams each), the
  throughput reported, and traffic on both queue pairs in both directions
  (the driver's per-queue counters, ethtool -S);
- the tap taken down on the host: the guest's carrier goes down; brought
  up again: the carrier comes back and pings get through;
- the tap deleted on the host: the carrier goes down; a tap of the same
  name made again: kvmrun re-attaches it, the carrier comes back and pings
  get through.

Needs hardware virtualisation (tests/run runs it in the nested lane, which
has /dev/vhost-net) and network namespaces with taps; iperf3 on the host.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time

import kvmtest
import linuxguest
import netpeer
from kvmtest import Checker
from linuxguest import VM
from netpeer import GUEST_IP, PEER_IP, Peer

QUEUES = 2
MTU = 9000


def ping(vm: VM, args: str, timeout: float = 120) -> tuple[int, int, float | None, list[str]]:
    """(sent, received, average RTT ms or None, output) of busybox ping."""
    rc, out = vm.sh(f'ping {args} {PEER_IP}', timeout)
    text = '\n'.join(out)
    m = re.search(r'(\d+) packets transmitted, (\d+) packets received', text)
    rtt = re.search(r'min/avg/max = [\d.]+/([\d.]+)/', text)
    return (int(m.group(1)) if m else 0, int(m.group(2)) if m else 0,
            float(rtt.group(1)) if rtt else None, out)


def queue_counters(vm: VM) -> dict[str, int]:
    rc, out = vm.sh('ethtool -S eth0')
    got = {}
    for l in out:
        m = re.match(r'^\s*([rt]x_queue_\d+_packets): (\d+)$', l)
        if m:
            got[m.group(1)] = int(m.group(2))
    return got


def iperf(vm: VM, reverse: bool) -> float | None:
    """Mbit/s of two iperf3 clients at once, one per vCPU, 4 streams each."""
    r = ' -R' if reverse else ''
    cmd = ' & '.join(f'taskset -c {i} iperf3 -c {PEER_IP} -p {port} -t 3 -P 4 -f m{r} > /tmp/i{i}'
                     for i, port in enumerate(netpeer.IPERF_PORTS))
    rc, out = vm.sh(f'{cmd}; wait; cat /tmp/i0 /tmp/i1', timeout=120)
    rates = [float(m.group(1)) for m in (re.search(r'\[SUM\].* ([\d.]+) Mbits/sec\s+receiver', l)
                                         for l in out) if m]
    return sum(rates) if rc == 0 and len(rates) == 2 else None


def carrier_after(vm: VM, want: str) -> tuple[str | None, float]:
    """Polls the guest's carrier for up to ~15 s until it reads @want
    (`read` is a shell builtin: no fork per look, which costs a lot in
    the nested lane)."""
    t = time.monotonic()
    v = vm.value('i=0; while read c < /sys/class/net/eth0/carrier && [ "$c" != ' + want +
                 ' ] && [ $i -lt 60 ]; do sleep 0.25; i=$((i+1)); done; echo $c', timeout=90)
    return v, time.monotonic() - t


def answered(vm: VM, secs: int = 20) -> float | None:
    """Seconds until the peer answers a ping (one a second at most), or
    None: after a link change the guest first resolves the peer's address
    again."""
    t = time.monotonic()
    v = vm.value(f'i=0; until ping -c 1 -W 1 {PEER_IP} >/dev/null 2>&1; do i=$((i+1)); '
                 f'[ $i -ge {secs} ] && break; done; echo $i', timeout=secs * 3 + 30)
    return time.monotonic() - t if v is not None and v.isdigit() and int(v) < secs else None


def run_one(c: Checker, f: linuxguest.Files, vhost: str) -> None:
    w = f'vhost={vhost}'
    with Peer('lnet') as p:
        vm = VM(linuxguest.kvmrun_cmd(f, ['mem=512M', 'cpus=2', 'log_level=info',
                                          f'net0.tap={Peer.TAP}', f'net0.vhost={vhost}',
                                          f'net0.queues={QUEUES}', f'net0.mtu={MTU}']),
                f'net-{vhost}', netns=p.ns)
        try:
            if not c.check(f'{w}: tap', p.wait_dev(Peer.TAP), f'kvmrun created {Peer.TAP}'):
                print(vm.describe())
                return
            p.up(Peer.TAP)
            serving = p.serve()  # while the guest boots
            if not c.check(f'{w}: boot', vm.ready() and serving,
                           f'the agent runs after {vm.t_ready or 0:.1f}s; the peer\'s servers listen'):
                print(vm.describe())
                return
            backend = 'vhost-net' if vhost == 'on' else 'userspace'
            c.check(f'{w}: backend', f'{backend} backend on {Peer.TAP}' in vm.errors(),
                    f'kvmrun logs the {backend} backend')
            rc, out = vm.sh(f'ip link set eth0 up && ip addr add {GUEST_IP}/24 dev eth0 && '
                            'cat /sys/class/net/eth0/mtu && ls /sys/class/net/eth0/queues && '
                            'ethtool -l eth0')
            text = ' '.join(out)
            cur = re.search(r'Current hardware settings:.*?Combined:\s+(\d+)', text)
            c.check(f'{w}: mtu={MTU}', rc == 0 and str(MTU) in out,
                    f'the guest\'s eth0 has MTU {MTU} ({out[:1]})')
            c.check(f'{w}: queues={QUEUES}',
                    all(f'{d}-{i}' in text.split() for d in ('rx', 'tx') for i in range(QUEUES)) and
                    cur is not None and int(cur.group(1)) == QUEUES,
                    f'{QUEUES} rx and tx queues in sysfs, ethtool -l says {QUEUES} combined '
                    f'channels in use ({text[-200:]})')

            sent, got, rtt, out = ping(vm, '-c 100 -i 0.01 -q')
            c.check(f'{w}: 100 pings', sent == 100 and got == 100,
                    f'{got} of {sent} answered, 0% loss, average RTT {rtt} ms')

            pk, by = p.stat(Peer.TAP, 'rx_packets'), p.stat(Peer.TAP, 'rx_bytes')
            sent, got, _, out = ping(vm, '-c 5 -s 8000 -i 0.05')
            dpk = p.stat(Peer.TAP, 'rx_packets') - pk
            dby = p.stat(Peer.TAP, 'rx_bytes') - by
            c.check(f'{w}: 8000-byte pings', sent == 5 and got == 5 and dpk < 10 and dby >= 5 * 8000,
                    f'{got} of {sent} answered; the peer\'s tap received them as {dpk} frames, '
                    f'{dby} bytes (unfragmented: fewer than 10 frames)')

            want = p.blob_sha()
            url = f'http://{PEER_IP}:{netpeer.HTTP_PORT}'
            rc, out = vm.sh(f'wget -q -O /tmp/blob {url}/blob && sha256sum /tmp/blob', timeout=300)
            got_sha = out[-1].split()[0] if rc == 0 and out else None
            c.check(f'{w}: 64 MiB peer to guest', got_sha == want,
                    f'TCP, the guest\'s sha256 is the peer\'s ({got_sha} vs {want})')
            # the same bytes back: the peer hashes what it receives
            rc, out = vm.sh(f'wget -q -O - --post-file /tmp/blob {url}/upload; rm -f /tmp/blob',
                            timeout=300)
            ups = p.uploads()
            c.check(f'{w}: 64 MiB guest to peer',
                    rc == 0 and got_sha is not None and ups == [(netpeer.BLOB_SIZE, got_sha)]
                    and got_sha in out[-1],
                    f'TCP, the peer received {ups[-1][0] if ups else 0} bytes with the sha256 '
                    f'the guest computed before sending them ({ups[-1][1] if ups else None})')

            before = queue_counters(vm)
            tx = iperf(vm, reverse=False)
            rx = iperf(vm, reverse=True)
            after = queue_counters(vm)
            c.check(f'{w}: iperf3', tx is not None and rx is not None and tx > 0 and rx > 0,
                    f'guest to peer {tx} Mbit/s, peer to guest {rx} Mbit/s '
                    f'(2 clients x 4 streams, 3 s each)')
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            busy = [k for k, v in delta.items() if v >= 100]
            c.check(f'{w}: traffic on both queue pairs',
                    all(f'{d}_queue_{i}_packets' in busy for d in ('rx', 'tx') for i in range(QUEUES)),
                    f'each queue moved at least 100 packets during iperf3 ({delta})')

            v, _ = carrier_after(vm, '1')
            p.link(Peer.TAP, 'down')
            down, t_down = carrier_after(vm, '0')
            c.check(f'{w}: tap down', v == '1' and down == '0',
                    f'the guest\'s carrier goes from {v} to {down} within {t_down:.1f}s of '
                    f'`ip link set {Peer.TAP} down`')
            p.link(Peer.TAP, 'up')
            up, t_up = carrier_after(vm, '1')
            t_ping = answered(vm)
            sent, got, _, out = ping(vm, '-c 5 -i 0.2 -W 5')
            c.check(f'{w}: tap up again', up == '1' and t_ping is not None and got >= 4,
                    f'the carrier is back within {t_up:.1f}s of `ip link set {Peer.TAP} up`, the '
                    f'peer answers {t_ping or 0:.1f}s later, then {got} of {sent} pings')

            # deleted on the host, then made again: re-attached
            p.delete(Peer.TAP)
            down, t_down = carrier_after(vm, '0')
            p.make_tap(Peer.TAP, QUEUES, MTU)
            up, t_up = carrier_after(vm, '1')
            t_ping = answered(vm)
            sent, got, _, out = ping(vm, '-c 5 -i 0.2 -W 5')
            c.check(f'{w}: tap deleted and made again',
                    down == '0' and up == '1' and t_ping is not None and got >= 4,
                    f'the carrier goes down when the tap is deleted ({t_down:.1f}s), comes back '
                    f'when a tap of that name is made and set up ({t_up:.1f}s), the peer '
                    f'answers {t_ping or 0:.1f}s later, then {got} of {sent} pings')
            c.check(f'{w}: re-attach logged', f'tap {Peer.TAP} is back: re-attached' in vm.errors(),
                    'kvmrun says it re-attached the tap')
            rc = vm.finish()
            linuxguest.guest_ok(c, f'{w}: power-off', vm, rc, 'the guest powered off')
        finally:
            vm.cleanup()


def main() -> int:
    linuxguest.require_linux()
    why = netpeer.usable()
    if why:
        kvmtest.skip(f'network namespaces with taps: {why}')
    if not shutil.which('iperf3'):
        kvmtest.skip('iperf3 is not installed on the host (scripts/install-deps)')
    f = linuxguest.files()
    t0 = time.monotonic()
    c = Checker()
    if os.path.exists('/dev/vhost-net'):
        run_one(c, f, 'on')
    else:
        c.skip('vhost=on', '/dev/vhost-net is missing (modprobe vhost_net); vhost=off only')
    run_one(c, f, 'off')
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
