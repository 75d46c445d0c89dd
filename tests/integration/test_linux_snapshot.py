"""Snapshot and restore of a running Linux guest (issue 17): Debian's
cloud kernel with the test initramfs, its shell (rdinit=/bin/sh) on COM1.

- The guest writes a marker to a tmpfs file and starts a counter process
  that prints `count N` every second. It is paused, snapshotted and stopped.
- A restore prints `count K+1` next (K: the last count before the pause),
  never `count 0`; its shell still answers on the console and the marker
  file is there.
- The same snapshot restored 10 times at once, then RESTORES_IN_A_ROW
  times one after another: each continues the count; each kvmrun has the
  same number of fds and threads as the first (nothing grows from one
  restore to the next), and its RSS stays far below the guest's RAM (the
  memory file maps lazily).

No virtio device: the guest runs from its initramfs, so the snapshot needs
only the platform devices' state. Needs hardware virtualisation (the
nested lane)."""
from __future__ import annotations

import os
import re
import shutil
import sys
import time

import kvmtest
import linuxguest
from kvmtest import Checker, ctl
from linuxguest import VM

MEM = '256M'
PARALLEL = 10
# The issue asks for 100; in the nested lane (TCG under L1) one restore with
# its checks takes a few seconds, so fewer run there.
RESTORES_IN_A_ROW = 100 if not linuxguest.in_lane() else 20
COUNT = re.compile(r'^count (\d+)$')


def counts(vm: VM) -> list[int]:
    return [int(m.group(1)) for m in (COUNT.match(l) for l in vm.lines()) if m]


def wait_shell(vm: VM, word: str, timeout: float) -> bool:
    """Sends `echo WORD` until the shell answers with a line WORD."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and vm.proc.poll() is None:
        vm.send(f'echo {word}-$((6*7))')
        if vm.wait_line(rf'^{word}-42$', 3):
            return True
    return False


def wait_count(vm: VM, n: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and vm.proc.poll() is None:
        if any(c >= n for c in counts(vm)):
            return True
        time.sleep(0.1)
    return False


def proc_counts(pid: int) -> tuple[int, int, int]:
    """(fds, threads, RSS bytes) of process @pid."""
    fds = len(os.listdir(f'/proc/{pid}/fd'))
    threads = len(os.listdir(f'/proc/{pid}/task'))
    with open(f'/proc/{pid}/status') as f:
        rss = next(int(l.split()[1]) << 10 for l in f if l.startswith('VmRSS:'))
    return fds, threads, rss


def make_snapshot(c: Checker, f: linuxguest.Files, work: str, snap: str) -> int | None:
    """Boots, starts the marker and counter, snapshots; returns the last count."""
    sock = os.path.join(work, 'orig.sock')
    vm = VM([kvmtest.kvmrun_binary(), f'kernel={f.kernel}', f'initrd={f.initrd}',
             'cmdline=console=ttyS0 quiet panic=-1 rdinit=/bin/sh', f'mem={MEM}',
             f'control={sock}', 'timeout=900'], 'snap-orig')
    try:
        if not c.check('boot', wait_shell(vm, 'booted', linuxguest.BOOT_TIMEOUT),
                       'the guest shell answers on the console'):
            print(vm.describe())
            return None
        vm.send('mount -t tmpfs none /tmp && echo marker-$((40+2)) > /tmp/marker && echo wrote-marker')
        c.check('marker', vm.wait_line(r'^wrote-marker$', 60) is not None, 'the marker is in tmpfs')
        vm.send('(i=0; while :; do echo "count $i"; i=$((i+1)); sleep 1; done) &')
        if not c.check('counter', wait_count(vm, 3, 120), 'the counter process counts'):
            print(vm.describe())
            return None
        c.check('pause', ctl(sock, 'pause') == 'ok state=paused', 'paused')
        t0 = time.monotonic()
        r = ctl(sock, f'snapshot path={snap}', timeout=300)
        c.check('snapshot', r == f'ok path={snap}',
                f'snapshot written in {(time.monotonic() - t0) * 1000:.0f} ms ({r})')
        last = max(counts(vm))
        ctl(sock, 'stop')
        c.check('stopped', vm.wait(60) == 0, 'the snapshotted VM stops with exit code 0')
        return last
    finally:
        vm.cleanup()


def restore(snap: str, work: str, tag: str) -> VM:
    return VM([kvmtest.kvmrun_binary(), f'restore={snap}',
               f'control={os.path.join(work, tag + ".sock")}'], f'snap-{tag}')


def check_restored(c: Checker, vm: VM, name: str, last: int, full: bool) -> bool:
    ok = wait_count(vm, last + 1, 120)
    got = counts(vm)
    ok = ok and got and got[0] == last + 1 and 0 not in got
    if full or not ok:
        c.check(f'{name} continues', bool(ok),
                f'the counter goes on at {got[0] if got else None} (the last before: {last})')
    if not ok:
        print(vm.describe())
        return False
    if full:
        vm.send('cat /tmp/marker')
        c.check(f'{name} marker', vm.wait_line(r'^marker-42$', 60) is not None,
                'the tmpfs marker is there after the restore')
        c.check(f'{name} shell', wait_shell(vm, 'restored', 60),
                'the shell answers console input after the restore')
    return True


def main() -> int:
    linuxguest.require_linux()
    f = linuxguest.files()
    c = Checker()
    work = linuxguest.scratch_dir('linux-snap')
    snap = os.path.join(work, 'warm')
    try:
        last = make_snapshot(c, f, work, snap)
        if last is None:
            return c.done()
        t0 = time.monotonic()
        vm = restore(snap, work, 'first')
        try:
            if not check_restored(c, vm, 'restore', last, True):
                return c.done()   # the rest would only repeat it
            c.check('restore time', True, f'restored and counting {time.monotonic() - t0:.2f} s after exec')
            base = proc_counts(vm.pid)
            ctl(os.path.join(work, 'first.sock'), 'stop')
            vm.wait(60)
        finally:
            vm.cleanup()
        mem = kvmtest.size(MEM)
        vms = [restore(snap, work, f'par{i}') for i in range(PARALLEL)]
        try:
            good = sum(check_restored(c, v, f'parallel {i}', last, False) for i, v in enumerate(vms))
            c.check('parallel', good == PARALLEL, f'{good} of {PARALLEL} restores at once go on counting')
            stats = [proc_counts(v.pid) for v in vms if v.proc.poll() is None]
            c.check('parallel fds threads', all(s[:2] == base[:2] for s in stats),
                    f'every restore has the fds and threads of the first {base[:2]}: '
                    f'{sorted(set(s[:2] for s in stats))}')
            worst = max(s[2] for s in stats) if stats else 0
            c.check('parallel rss', worst < mem // 2,
                    f'largest RSS {worst >> 20} MiB for {mem >> 20} MiB of guest RAM')
        finally:
            for i, v in enumerate(vms):
                try:
                    ctl(os.path.join(work, f'par{i}.sock'), 'stop')
                except OSError:
                    pass
                v.wait(60)
                v.cleanup()
        seen, t0 = [], time.monotonic()
        for i in range(RESTORES_IN_A_ROW):
            vm = restore(snap, work, 'row')
            try:
                if not check_restored(c, vm, f'in a row {i}', last, False):
                    break
                seen.append(proc_counts(vm.pid))
                ctl(os.path.join(work, 'row.sock'), 'stop')
                if vm.wait(60) != 0:
                    c.check(f'in a row {i} stop', False, 'stop ends the restored VM with 0')
                    break
            finally:
                vm.cleanup()
        c.check('in a row', len(seen) == RESTORES_IN_A_ROW,
                f'{len(seen)} of {RESTORES_IN_A_ROW} restores in a row went on counting, '
                f'{(time.monotonic() - t0) / max(1, len(seen)):.2f} s each')
        if seen:
            c.check('no growth', all(s[:2] == base[:2] for s in seen),
                    f'fds and threads the same in every restore {sorted(set(s[:2] for s in seen))}; '
                    f'RSS first {seen[0][2] >> 20} MiB, last {seen[-1][2] >> 20} MiB')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
