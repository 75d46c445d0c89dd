"""Rate limits and metrics under Linux's own virtio_blk driver: fio in a
Debian guest on three raw disks, one unlimited, one with diskN.iops, one
with diskN.bandwidth. The capped disks give fio within 10% of their limit
(and the unlimited one shows the guest could go well past it, so the cap
is ours); the `metrics` control command's disk counters move by exactly
the requests and bytes fio reports. Where network namespaces with taps
and iperf3 exist, the same guest has a NIC (userspace backend) with
net0.bandwidth, and iperf3 each way stays within 10% of it.

Needs hardware virtualisation (the nested lane on our hosts) and the
kernel, initramfs and tools disk from scripts/fetch-linux-kernel.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys

import kvmtest
import linuxguest
import netpeer
from kvmtest import Checker, MiB, ctl, fields
from linuxguest import VM
from netpeer import GUEST_IP, PEER_IP, Peer

# The nested lane is slow and shared (an unlimited disk gave 44-140 IOPS
# and 1.2 MB/s there, the NIC 0.6 Mbit/s): limits well below that. The
# bursts are the default, one second's worth: over a RUNTIME-second run the
# first burst adds 1/RUNTIME, and a bucket that small against the lane's
# wake-up delays would lose tokens to them.
RAW_SIZE = 32 * MiB
IOPS = 15
BANDWIDTH = 192 * 1024        # bytes a second
NET_BANDWIDTH = 16 * 1024     # bytes a second, each way
RUNTIME = 20
FREE_RATE = '2M'              # bits a second on the unlimited NIC
LIMITED_MAC, FREE_MAC = '52:54:00:00:00:10', '52:54:00:00:00:11'
FREE_PEER_IP, FREE_GUEST_IP = '10.0.3.1', '10.0.3.15'
FREE_TAP = 'ltap1'
HELPERS = ('dev() { for s in /sys/block/vd*/serial; do [ "$(cat $s)" = "$1" ] && '
           '{ d=${s%/serial}; echo /dev/${d##*/}; }; done; }')


def fio(vm: VM, serial: str, rw: str, bs: str, qd: int) -> tuple[float, float, int] | None:
    """(IOPS, KiB/s, KiB read) of a time-based fio run, or None."""
    rc, out = vm.sh(f'fio --name={serial} --filename=$(dev {serial}) --direct=1 --rw={rw} '
                    f'--bs={bs} --iodepth={qd} --ioengine=libaio --runtime={RUNTIME} '
                    f'--time_based --minimal', timeout=RUNTIME * 10 + 120)
    line = next((l for l in out if l.startswith('3;fio-')), '')
    f = line.split(';')
    if rc != 0 or len(f) < 40 or f[4] != '0':
        print(f'fio on {serial}: exit {rc}: {out[-5:]}')
        return None
    return float(f[7]), float(f[6]), int(f[5])


def disk_metrics(sock: str, n: int) -> dict[str, int]:
    resp = ctl(sock, 'metrics')
    p = f'disk{n}.'
    return {k[len(p):]: int(v) for k, v in fields(resp).items() if k.startswith(p)}


def within(got: float, want: float) -> bool:
    return 0.9 * want <= got <= 1.1 * want


def ours(c: Checker, name: str, free: float, limit: float, shown: str) -> None:
    """The unlimited device must go well past the limit for the cap to be
    kvmrun's; a lane too loaded to show that says so instead of failing."""
    if free > 1.5 * limit:
        c.check(name, True, f'the same run on the unlimited device: {shown}')
    elif free > 0:
        c.skip(name, f'the lane is too slow to tell: the unlimited device gave only {shown}')
    else:
        c.check(name, False, 'the run on the unlimited device worked')


def iperf(vm: VM, reverse: bool, peer_ip: str = PEER_IP, rate: str = '') -> float | None:
    """Mbit/s the receiver counted over RUNTIME s, one TCP stream, at most
    @rate (iperf3 prints Kbit/s: Mbit/s has too few digits at these rates)."""
    r = (' -R' if reverse else '') + (f' -b {rate}' if rate else '')
    rc, out = vm.sh(f'iperf3 -c {peer_ip} -p {netpeer.IPERF_PORTS[0]} -t {RUNTIME} -f k{r}',
                    timeout=RUNTIME * 10 + 120)
    rates = [float(m.group(1)) / 1000 for m in (re.search(r' ([\d.]+) Kbits/sec\s+receiver', l)
                                                for l in out) if m]
    return rates[-1] if rc == 0 and rates else None


def test_net(c: Checker, vm: VM, sock: str) -> None:
    ifname = ('ifname() { for i in /sys/class/net/*; do [ "$(cat $i/address)" = "$1" ] && '
              'echo ${i##*/}; done; }')
    rc, out = vm.sh(f'{ifname}; a=$(ifname {LIMITED_MAC}); b=$(ifname {FREE_MAC}); '
                    f'ip link set $a up && ip addr add {GUEST_IP}/24 dev $a && '
                    f'ip link set $b up && ip addr add {FREE_GUEST_IP}/24 dev $b && echo "$a $b"')
    if not c.check('net set-up', rc == 0, f'the limited and the unlimited NIC: {out[-1:]}'):
        return
    limit = NET_BANDWIDTH * 8 / 1e6
    for reverse, what in ((False, 'guest to peer (tx)'), (True, 'peer to guest (rx)')):
        # paced: 15 times the limit shows the cap is ours; flat out (200
        # Mbit/s) the nested lane's guest triple-faulted in one run of three,
        # as it did under QEMU in the same L1 (README, "The nested lane")
        free = iperf(vm, reverse, FREE_PEER_IP, FREE_RATE)
        print(f'unlimited net1, iperf3 {what}: {free:.3f} Mbit/s' if free else
              f'unlimited net1, iperf3 {what}: failed')
        if not free or free <= 1.5 * limit:
            c.skip(f'net bandwidth cap {what}', f'the lane is too slow to tell: the unlimited '
                   f'NIC moved {free} Mbit/s against a limit of {limit:.2f}')
            continue
        mbit = iperf(vm, reverse)
        print(f'net0.bandwidth={NET_BANDWIDTH >> 10}K ({limit:.3f} Mbit/s of frames), '
              f'iperf3 {what}: {mbit or 0:.3f} Mbit/s of TCP payload')
        # frames carry ~4% of headers (66 of 1514 bytes) that TCP's payload does not count
        c.check(f'net bandwidth cap {what}', mbit is not None and within(mbit, limit),
                f'iperf3 {mbit or 0:.3f} Mbit/s against the limit\'s {limit:.3f} Mbit/s '
                f'({(mbit or 0) / limit * 100:.1f}%)')
        ours(c, f'net bandwidth cap {what} is ours', free, limit, f'{free} Mbit/s')
    resp = ctl(sock, 'metrics')
    m = fields(resp)
    c.check('net metrics', m.get('net0.source') == 'device'
            and int(m.get('net0.tx_throttled', 0)) > 0 and int(m.get('net0.rx_throttled', 0)) > 0
            and int(m.get('net0.rx_bytes', 0)) > NET_BANDWIDTH,
            f'net0 counters from the userspace device, both directions throttled '
            f'(rx_throttled={m.get("net0.rx_throttled")} tx_throttled={m.get("net0.tx_throttled")} '
            f'rx_bytes={m.get("net0.rx_bytes")} tx_bytes={m.get("net0.tx_bytes")})')


def main() -> int:
    linuxguest.require_linux()
    f = linuxguest.files()
    c = Checker()
    d = linuxguest.scratch_dir('limits')
    sock = os.path.join(d, 'ctl.sock')
    imgs = {s: linuxguest.image(os.path.join(d, f'{s}.img'), RAW_SIZE, fill=True)
            for s in ('free', 'iops', 'bw')}
    why = netpeer.usable() or (None if shutil.which('iperf3') else 'iperf3 is not installed')
    with contextlib.ExitStack() as stack:
        peer = None if why else stack.enter_context(Peer('llim'))
        return run(c, f, d, sock, imgs, peer, why)


def run(c: Checker, f: linuxguest.Files, d: str, sock: str, imgs: dict[str, str],
        peer: Peer | None, why: str | None) -> int:
    net = [f'net0.tap={Peer.TAP}', 'net0.vhost=auto', f'net0.mac={LIMITED_MAC}',
           f'net0.bandwidth={NET_BANDWIDTH >> 10}K',
           f'net1.tap={FREE_TAP}', 'net1.vhost=off', f'net1.mac={FREE_MAC}'] if peer else []
    vm = VM(linuxguest.kvmrun_cmd(f, net + [
        'mem=512M', 'cpus=2', f'control={sock}',
        f'disk1.path={imgs["free"]}', 'disk1.serial=free',
        f'disk2.path={imgs["iops"]}', 'disk2.serial=iops', f'disk2.iops={IOPS}',
        f'disk3.path={imgs["bw"]}', 'disk3.serial=bw', f'disk3.bandwidth={BANDWIDTH >> 10}K']), 'limits', netns=peer.ns if peer else None)
    try:
        serving = True
        if peer:
            serving = peer.wait_dev(Peer.TAP) and peer.wait_dev(FREE_TAP)
            if serving:
                peer.up(Peer.TAP)
                netpeer.run('ip', '-n', peer.ns, 'addr', 'add', f'{FREE_PEER_IP}/24', 'dev',
                            FREE_TAP)
                peer.link(FREE_TAP, 'up')
                serving = peer.serve(http=False)
        if not c.check('boot', vm.ready() and serving,
                       f'the agent runs after {vm.t_ready or 0:.1f}s'
                       + ('; the peer\'s iperf3 servers listen' if peer else '')):
            print(vm.describe())
            return c.done()
        vm.sh(HELPERS)
        free = fio(vm, 'free', 'randread', '4k', 8)
        free_bw = fio(vm, 'free', 'read', '64k', 4)
        m0 = disk_metrics(sock, 2)
        capped = fio(vm, 'iops', 'randread', '4k', 8)
        m1 = disk_metrics(sock, 2)
        bw = fio(vm, 'bw', 'read', '64k', 4)
        if free and capped:
            print(f'unlimited disk: {free[0]:.0f} IOPS; disk2.iops={IOPS}: {capped[0]:.0f} IOPS')
            c.check('iops cap', within(capped[0], IOPS),
                    f'fio 4k randread QD8 on disk2.iops={IOPS}: {capped[0]:.0f} IOPS '
                    f'({capped[0] / IOPS * 100:.1f}% of the limit)')
            ours(c, 'iops cap is ours', free[0], IOPS, f'{free[0]:.0f} IOPS')
            reads = m1.get('reads', 0) - m0.get('reads', 0)
            rbytes = m1.get('read_bytes', 0) - m0.get('read_bytes', 0)
            c.check('metrics match fio', rbytes == capped[2] * 1024 and reads == capped[2] // 4
                    and m1.get('throttled', 0) > m0.get('throttled', 0),
                    f'disk2.read_bytes +{rbytes}, reads +{reads}, throttled '
                    f'+{m1.get("throttled", 0) - m0.get("throttled", 0)}; fio read {capped[2]} KiB')
        else:
            c.check('iops fio', False, 'fio ran on the unlimited and the iops-capped disks')
        if bw:
            kib = BANDWIDTH / 1024
            print(f'disk3.bandwidth={BANDWIDTH >> 10}K: {bw[1]:.0f} KiB/s')
            c.check('bandwidth cap', within(bw[1], kib),
                    f'fio 64k read QD4 on disk3.bandwidth={BANDWIDTH >> 10}K: {bw[1]:.0f} KiB/s '
                    f'({bw[1] / kib * 100:.1f}% of the limit)')
            ours(c, 'bandwidth cap is ours', free_bw[1] if free_bw else 0, kib,
                 f'{free_bw[1] if free_bw else 0:.0f} KiB/s')
        else:
            c.check('bandwidth fio', False, 'fio ran on the bandwidth-capped disk')
        if peer:
            test_net(c, vm, sock)
        else:
            c.skip('net bandwidth', f'no network namespace with a tap: {why}')
        rc = vm.finish()
        linuxguest.guest_ok(c, 'power-off', vm, rc, 'the guest powered off')
        linuxguest.check_io_errors(c, 'limits', vm)
    finally:
        vm.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
