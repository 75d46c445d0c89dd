"""Pause, resume, snapshot and restore on the counter test guest (issue 17).

The counter guest prints `tick N clock_ms=M mem=ok|bad` every 20 ms of
kvm-clock time and checks a RAM pattern as it goes. Checked here:
- pause parks the guest (no ticks), status says paused, the guest's clock
  does not jump across the pause, resume carries on;
- snapshot is refused while running, writes a sparse memory file, the
  state file and a versioned header;
- restore=DIR carries on from the tick after the last one printed, with
  the RAM pattern intact and kvm-clock continuing, with no new boot; two
  restores of one snapshot at once; a snapshot of a restored VM restores;
- keys that cannot change across a restore are refused;
- in the jail (landlock=on) a snapshot goes only below snapshot_dir=, and
  one written there restores;
- hostile snapshots (corrupt, truncated, wrong version, wrong size) end in
  exit 1 and a message saying what is wrong."""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time

import kvmtest
from kvmtest import Checker, ctl, fields, run_kvmrun

TICK = re.compile(r'^tick (\d+) clock_ms=(\d+) mem=(ok|bad)$')


def ticks(text: str) -> list[tuple[int, int, str]]:
    return [(int(m.group(1)), int(m.group(2)), m.group(3))
            for m in (TICK.match(l) for l in text.splitlines()) if m]


class Counter:
    """kvmrun on the counter guest (or a restore) with a control socket."""

    def __init__(self, work: str, tag: str, args: list[str]) -> None:
        self.sock = os.path.join(work, f'{tag}.sock')
        self.bg = kvmtest.Background(args + [f'control={self.sock}', 'timeout=600'], tag=tag)

    def wait_ticks(self, n: int, timeout: float = 120) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(ticks(self.bg.output(complete=True))) >= n:
                return True
            if self.bg.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def ctl(self, line: str) -> str:
        end = time.monotonic() + 30
        while True:
            try:
                return ctl(self.sock, line, timeout=30)
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def stop(self) -> int | None:
        try:
            self.ctl('stop')
        except OSError:
            pass
        rc = self.bg.wait(30)
        self.bg.stop()
        return rc


def test_pause_snapshot(c: Checker, work: str, guest: str, snap: str) -> str:
    """Boots, pauses, resumes, pauses again and snapshots; returns the
    console up to the snapshot."""
    vm = Counter(work, 'orig', [f'kernel={guest}', 'mem=128M'])
    try:
        if not c.check('boot', vm.wait_ticks(10), 'the counter guest ticks', None):
            print(vm.bg.describe())
            return ''
        r = vm.ctl(f'snapshot path={snap}')
        c.check('snapshot running', r.startswith('error snapshot: the VM is not paused'),
                f'snapshot of a running VM is refused ({r})')
        c.check('resume running', vm.ctl('resume').startswith('error resume: the VM is not paused'),
                'resume of a running VM is refused')
        r = vm.ctl('pause')
        c.check('pause', r == 'ok state=paused', f'pause answers ok state=paused ({r})')
        st = fields(vm.ctl('status'))
        c.check('status paused', st.get('state') == 'paused', f'status says state=paused ({st.get("state")})')
        c.check('pause twice', vm.ctl('pause').startswith('error pause: the VM is already paused'),
                'a second pause is refused')
        n0 = len(ticks(vm.bg.output()))
        t0 = time.monotonic()
        time.sleep(1.5)
        n1 = len(ticks(vm.bg.output()))
        c.check('parked', n1 == n0, f'no tick while paused ({n0} before, {n1} after 1.5 s)')
        r = vm.ctl('resume')
        c.check('resume', r == 'ok state=running', f'resume answers ok state=running ({r})')
        c.check('ticks again', vm.wait_ticks(n1 + 5), 'the guest ticks again after resume')
        gap = time.monotonic() - t0
        t = ticks(vm.bg.output(complete=True))
        jump = t[n1][1] - t[n1 - 1][1] if len(t) > n1 else -1
        c.check('clock held', 0 <= jump < 500,
                f'kvm-clock advanced {jump} ms across a pause of {gap * 1000:.0f} ms '
                '(held while paused)')
        c.check('status running', fields(vm.ctl('status')).get('state') == 'running',
                'status says running again')
        c.check('pause 2', vm.ctl('pause') == 'ok state=paused', 'paused again')
        time.sleep(0.2)
        t0 = time.monotonic()
        r = vm.ctl(f'snapshot path={snap}')
        c.check('snapshot', r == f'ok path={snap}', f'snapshot answers ok ({r}) in '
                f'{(time.monotonic() - t0) * 1000:.0f} ms')
        before = vm.bg.output()
        c.check('stop', vm.stop() == 0, 'the paused VM stops with exit code 0')
        return before
    finally:
        vm.bg.stop()


def test_files(c: Checker, snap: str) -> None:
    names = sorted(os.listdir(snap))
    c.check('files', names == ['config', 'memory', 'snapshot', 'state'],
            f'the snapshot holds config, memory, snapshot, state ({names})')
    st = os.stat(os.path.join(snap, 'memory'))
    c.check('memory size', st.st_size == 128 << 20, f'the memory file is mem= long ({st.st_size})')
    c.check('sparse', st.st_blocks * 512 < 32 << 20,
            f'the memory file is sparse: {st.st_blocks * 512 >> 20} MiB allocated of 128')
    with open(os.path.join(snap, 'snapshot')) as f:
        hdr = f.read()
    c.check('header', hdr.startswith('format=kvmrun-snapshot\nversion=1\nmem=134217728\ncpus=1\n'),
            f'the header is versioned and names mem and cpus ({hdr.splitlines()[:4]})')
    with open(os.path.join(snap, 'config')) as f:
        cfg = f.read()
    c.check('config', 'mem=128M' in cfg and 'kernel=' in cfg and 'restore=' not in cfg,
            'the config is the printed configuration, without restore=')


def check_continues(c: Checker, name: str, before_text: str, after_text: str) -> None:
    """The restored console must continue the snapshotted one: a line the
    pause cut in two is finished by the restore, so the two outputs joined
    hold each tick once, in order."""
    before, joined = ticks(before_text), ticks(before_text + after_text)
    last, last_ms = before[-1][0], before[-1][1]
    after = joined[len(before):]
    c.check(f'{name} no boot', 'counter: start' not in after_text,
            'the restored guest did not boot again')
    c.check(f'{name} continues', bool(after) and after[0][0] == last + 1,
            f'the first tick after the restore is {after[0][0] if after else None}, '
            f'the last before {last}')
    nums = [t[0] for t in joined]
    c.check(f'{name} in order', nums == list(range(nums[0], nums[0] + len(nums))),
            'the ticks before and after go on one by one')
    c.check(f'{name} memory', all(t[2] == 'ok' for t in after),
            'the guest RAM pattern is intact after the restore')
    if after:
        c.check(f'{name} clock', 0 <= after[0][1] - last_ms < 1000,
                f'kvm-clock goes on from {last_ms} ms to {after[0][1]} ms')


def test_restore(c: Checker, work: str, snap: str, before: str, snap2: str) -> None:
    vm = Counter(work, 'rest', [f'restore={snap}'])
    try:
        ok = vm.wait_ticks(10)
        c.check('restore runs', ok, 'the restored guest ticks')
        if not ok:
            print(vm.bg.describe())
            return
        check_continues(c, 'restore', before, vm.bg.output(complete=True))
        rss = kvmtest.ram_rss(vm.bg.pid, 128 << 20)
        c.check('lazy rss', rss < 64 << 20, f'RAM resident after the restore: {rss >> 20} MiB of 128')
        c.check('pause restored', vm.ctl('pause') == 'ok state=paused', 'the restored VM pauses')
        r = vm.ctl(f'snapshot path={snap2}')
        c.check('snapshot restored', r == f'ok path={snap2}', f'and snapshots ({r})')
        before2 = before + vm.bg.output()
        vm.stop()
    finally:
        vm.bg.stop()
    restore_continues(c, work, 'rest2', snap2, before2, 'restore of a restore',
                      'a snapshot of a restored VM restores', 'second generation')


def restore_continues(c: Checker, work: str, tag: str, snap: str, before: str, name: str,
                      detail: str, cont_name: str) -> None:
    """Restores @snap and checks it goes on from @before's last tick."""
    vm = Counter(work, tag, [f'restore={snap}'])
    try:
        ok = vm.wait_ticks(5)
        c.check(name, ok, detail)
        if ok:
            check_continues(c, cont_name, before, vm.bg.output(complete=True))
        else:
            print(vm.bg.describe())
        vm.stop()
    finally:
        vm.bg.stop()


def test_parallel(c: Checker, work: str, snap: str, before: str) -> None:
    vms = [Counter(work, f'par{i}', [f'restore={snap}', 'restore.prefault=on' if i else 'log_level=info'])
           for i in range(2)]
    try:
        for i, vm in enumerate(vms):
            ok = vm.wait_ticks(5)
            c.check(f'parallel {i}', ok, f'restore {i} of 2 at once ticks')
            if ok:
                check_continues(c, f'parallel {i}', before, vm.bg.output(complete=True))
            else:
                print(vm.bg.describe())
    finally:
        for vm in vms:
            vm.stop()


def test_jailed(c: Checker, work: str, guest: str) -> None:
    """landlock=on: Landlock opens snapshot_dir= (and nothing else) for
    snapshots; kvmrun refuses a path outside it before the kernel would."""
    jail = os.path.join(work, 'jail')
    os.mkdir(jail)
    vm = Counter(work, 'jailed', [f'kernel={guest}', 'mem=128M', 'landlock=on',
                                  f'snapshot_dir={jail}', 'log_level=info'])
    inside = os.path.join(jail, 'warm')
    try:
        if not c.check('jailed boot', vm.wait_ticks(5), 'the counter guest ticks with landlock=on'):
            print(vm.bg.describe())
            return
        c.check('jailed pause', vm.ctl('pause') == 'ok state=paused', 'paused')
        for bad in (os.path.join(work, 'outside'), os.path.join(jail, '..', 'outside')):
            r = vm.ctl(f'snapshot path={bad}')
            c.check(f'jailed refuses {bad[len(work) + 1:]}',
                    r.startswith(f'error snapshot: path={bad} is outside snapshot_dir={jail}') and
                    not os.path.exists(os.path.join(work, 'outside')), r)
        r = vm.ctl(f'snapshot path={inside}')
        c.check('jailed snapshot', r == f'ok path={inside}' and
                os.path.exists(os.path.join(inside, 'snapshot')),
                f'below snapshot_dir ({r}); Landlock: '
                f'{"on" if "file system restricted" in vm.bg.errors() else "not in this kernel"}')
        before = vm.bg.output()
        vm.stop()
    finally:
        vm.bg.stop()
    restore_continues(c, work, 'jailed-rest', inside, before, 'jailed restore',
                      'the snapshot written in the jail restores', 'jailed restore')
    vm = Counter(work, 'jailed-nodir', [f'kernel={guest}', 'mem=128M', 'landlock=on'])
    try:
        if vm.wait_ticks(2) and vm.ctl('pause') == 'ok state=paused':
            r = vm.ctl(f'snapshot path={os.path.join(jail, "x")}')
            c.check('jailed without snapshot_dir', 'start it with snapshot_dir=DIR' in r, r)
        else:
            c.check('jailed without snapshot_dir', False, vm.bg.describe())
        vm.stop()
    finally:
        vm.bg.stop()


def copy_snapshot(snap: str, dst: str) -> str:
    """A copy whose files may be changed: the memory file hard-linked."""
    os.mkdir(dst)
    for n in os.listdir(snap):
        if n == 'memory':
            os.link(os.path.join(snap, n), os.path.join(dst, n))
        else:
            shutil.copy(os.path.join(snap, n), os.path.join(dst, n))
    return dst


def edit(path: str, fn) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(fn(data))


def test_hostile(c: Checker, work: str, snap: str) -> None:
    def case(name: str, change, want: str, extra: list[str] | None = None) -> None:
        d = copy_snapshot(snap, os.path.join(work, f'h-{name}'))
        change(d)
        r = run_kvmrun([f'restore={d}'] + (extra or []), timeout=60)
        c.check(f'hostile {name}', r.rc == 1 and want in r.err,
                f'exit 1 and "{want}" (exit {r.rc}: {r.err.strip().splitlines()[-1:] if r.err else ""})', r)
        shutil.rmtree(d, ignore_errors=True)

    st = lambda d: os.path.join(d, 'state')
    hd = lambda d: os.path.join(d, 'snapshot')
    case('corrupt state', lambda d: edit(st(d), lambda b: b[:100] + bytes([b[100] ^ 0x40]) + b[101:]),
         'checksum mismatch')
    case('truncated state', lambda d: edit(st(d), lambda b: b[:len(b) // 2]), 'truncated')
    case('empty state', lambda d: edit(st(d), lambda b: b''), 'state file')
    case('wrong version', lambda d: edit(hd(d), lambda b: b.replace(b'version=1', b'version=7')),
         'snapshot version 7 is newer than this kvmrun reads (1)')
    case('state version', lambda d: edit(st(d), lambda b: b[:8] + b'\x09' + b[9:]), 'state file')
    case('header garbage', lambda d: edit(hd(d), lambda b: b'\x00\xff' * 100), 'header')
    case('header truncated', lambda d: edit(hd(d), lambda b: b[:33]), 'mem= is missing')

    def short_memory(d: str) -> None:
        os.unlink(os.path.join(d, 'memory'))
        with open(os.path.join(d, 'memory'), 'wb') as f:
            f.truncate(64 << 20)
    case('short memory', short_memory, 'memory file')
    case('no header', lambda d: os.unlink(hd(d)), 'not a snapshot directory')
    case('mem changed', lambda d: None, 'mem: cannot change across a restore', ['mem=256M'])
    case('cpus changed', lambda d: None, 'cpus: cannot change across a restore', ['cpus=2'])
    conf = os.path.join(work, 'restore.conf')
    with open(conf, 'w') as f:
        f.write(f'restore={snap}\n')
    r = run_kvmrun([conf], timeout=60)
    c.check('restore in a file', r.rc == 1 and 'restore= is a command-line key' in r.err,
            'restore= in a config file: exit 1 and why', r)
    r = run_kvmrun([f'restore={os.path.join(work, "nonexistent")}'], timeout=60)
    c.check('hostile missing dir', r.rc == 1 and 'snapshot' in r.err,
            f'a missing directory: exit 1 and a message ({r.err.strip()[:120]})', r)


def main() -> int:
    kvmtest.require_kvm()
    guest = kvmtest.require_guest('counter')
    c = Checker()
    work = tempfile.mkdtemp(prefix='kvmrun-snap-')
    try:
        snap, snap2 = os.path.join(work, 'warm'), os.path.join(work, 'warm2')
        before = test_pause_snapshot(c, work, guest, snap)
        if not ticks(before) or not os.path.exists(os.path.join(snap, 'snapshot')):
            c.check('snapshot written', False, 'no snapshot to restore')
            return c.done()
        test_files(c, snap)
        test_restore(c, work, snap, before, snap2)
        test_parallel(c, work, snap, before)
        test_hostile(c, work, snap)
        test_jailed(c, work, guest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
