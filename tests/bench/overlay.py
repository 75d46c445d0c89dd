#!/usr/bin/env python3
"""A disk overlay against its raw base, in one Linux guest, side by side.

    python3 tests/bench/overlay.py [--rounds 3] [--seconds 5]

One kvmrun VM (Debian's cloud kernel with the test initramfs and tools
disk, 2 vCPUs, 1 GiB) gets three disks over the same 256 MiB of data, all
io_uring with O_DIRECT (cache=none):

  base     the base image itself, readonly=on (the baseline for reads);
  copy     a writable copy of it (the baseline for writes);
  overlay  the base image again, under disk.overlay=memory.

fio (libaio, O_DIRECT, 4 KiB) runs on each in turn, interleaved within each
round: random reads at QD1 and QD32 (the overlay still empty: every read
goes through it to the base), then random writes at QD1 and QD32 (into the
overlay's memory), then random reads again on the overlay, now mostly
served from the blocks written. Printed: the median IOPS of each disk and
the ratio overlay / baseline. The target for reads is >= 0.9.

Needs hardware virtualisation; where there is none, run it in the nested
lane, where only the ratios mean anything:

    tests/nested/l1 --timeout 1800 -- /usr/bin/python3 tests/bench/overlay.py
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys

import benchlib  # noqa: F401  (puts tests/integration on sys.path)

import kvmtest
import linuxguest
from kvmtest import MiB
from linuxguest import VM

SIZE = 256 * MiB
HELPERS = ('dev() { for s in /sys/block/vd*/serial; do [ "$(cat $s)" = "$1" ] && '
           '{ d=${s%/serial}; echo /dev/${d##*/}; }; done; }')


def fio(vm: VM, disk: str, rw: str, qd: int, secs: int) -> float | None:
    ro = ' --readonly' if rw == 'randread' else ''
    rc, out = vm.sh(f'fio --name={rw}{qd} --filename=$(dev {disk}) --direct=1 --rw={rw} '
                    f'--bs=4k --iodepth={qd} --ioengine=libaio --runtime={secs} --time_based '
                    f'--randrepeat=0 --minimal{ro}', timeout=secs + 120)
    line = next((l for l in out if l.startswith('3;fio-')), '')
    x = line.split(';')
    if rc != 0 or len(x) < 82 or x[4] != '0':
        print(f'fio {rw} QD{qd} on {disk} failed: {out[-3:]}', flush=True)
        return None
    iops = float(x[7]) if rw == 'randread' else float(x[48])
    print(f'  {rw} QD{qd} {disk}: {iops:.0f} IOPS', flush=True)
    return iops


def median(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--seconds', type=int, default=5)
    args = ap.parse_args()
    f = linuxguest.files()
    kvmtest.require_kvm()
    kind, why = kvmtest.host_kvm()
    lane = os.environ.get('KVMRUN_LANE') == 'nested'
    d = linuxguest.scratch_dir('bench-overlay')
    try:
        base = linuxguest.image(os.path.join(d, 'base.img'), SIZE, fill=True)
        copy = os.path.join(d, 'copy.img')
        shutil.copyfile(base, copy)
        disks = [f'disk1.path={base}', 'disk1.readonly=on', 'disk1.serial=base',
                 f'disk2.path={copy}', 'disk2.serial=copy',
                 f'disk3.path={base}', 'disk3.overlay=memory', 'disk3.serial=overlay']
        vm = VM(linuxguest.kvmrun_cmd(f, ['mem=1G', 'cpus=2'] + disks, timeout=7200), 'bench-overlay')
        try:
            if not vm.ready():
                print('the guest did not boot:\n' + vm.describe())
                return 1
            vm.sh(HELPERS)
            plan = [('randread', qd, ('base', 'overlay')) for qd in (1, 32)]
            plan += [('randwrite', qd, ('copy', 'overlay')) for qd in (1, 32)]
            res: dict[tuple[str, int, str], list[float | None]] = {}
            for rw, qd, pair in plan:
                for rnd in range(args.rounds):
                    for disk in pair:
                        res.setdefault((rw, qd, disk), []).append(fio(vm, disk, rw, qd, args.seconds))
            # reads again, the overlay now holding written blocks
            for qd in (1, 32):
                for rnd in range(args.rounds):
                    for disk in ('base', 'overlay'):
                        res.setdefault(('randread after writes', qd, disk), []).append(
                            fio(vm, disk, 'randread', qd, args.seconds))
            rc = vm.finish()
        finally:
            vm.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f'guest: {os.path.basename(f.kernel)}, 2 vCPUs, 1 GiB; disks of {SIZE >> 20} MiB, '
          f'io_uring, cache=none; fio 4k libaio O_DIRECT, {args.seconds} s a run, median of '
          f'{args.rounds} interleaved rounds')
    print('lane: NESTED (QEMU/TCG outer VM): only the ratios mean anything' if lane
          else f'host: native KVM ({kind}: {why})')
    print(f'{"workload":<30}{"baseline IOPS":>15}{"overlay IOPS":>15}{"ratio":>8}')
    ok = True
    for (rw, qd) in [('randread', 1), ('randread', 32), ('randwrite', 1), ('randwrite', 32),
                     ('randread after writes', 1), ('randread after writes', 32)]:
        base_disk = 'copy' if rw == 'randwrite' else 'base'
        b = median(res[(rw, qd, base_disk)])
        o = median(res[(rw, qd, 'overlay')])
        ratio = o / b if b and o else None
        label = f'{rw} QD{qd} ({"vs copy" if rw == "randwrite" else "vs base"})'
        print(f'{label:<30}{b or 0:>15.0f}{o or 0:>15.0f}{ratio if ratio else 0:>8.2f}')
        ok = ok and ratio is not None
    print(f'kvmrun exit {rc}')
    return 0 if ok and rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
