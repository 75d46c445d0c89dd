"""Disk overlays end to end on the blk test guest: the guest's whole I/O
test (writes, flush, discard, write-zeroes) over overlay=memory and a file
overlay, with the base read-only and byte-for-byte unchanged; two VMs on one
base at once; overlay_max giving the guest an I/O error and one log line;
a kept overlay that survives a SIGKILL right after an acknowledged flush
(merged onto a copy of the base with `kvmrun overlay-merge`); and the
configurations that make no sense, refused naming the key."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import stat
import sys
import tempfile

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun
from test_blk_crash import SECTORS, START, check_image

BLK = guestrun.guest('blk')
SIZE = 64 << 20


def base_image(d: str, name: str = 'base.img') -> str:
    """A base full of a pattern, read-only to everyone, as a shared one is."""
    path = os.path.join(d, name)
    block = hashlib.sha256(b'base').digest() * 128  # 4 KiB
    with open(path, 'wb') as f:
        for _ in range(SIZE // len(block)):
            f.write(block)
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return path


def digest(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def boot(args: list[str], cmdline: str = '') -> guestrun.Result:
    return run_kvmrun([f'kernel={BLK}', 'debug_exit=on', 'timeout=120',
                       f'cmdline={cmdline}'] + args, timeout=180)


def test_guest_io(c: Checker, d: str) -> None:
    base = base_image(d)
    before = digest(base)
    ov = os.path.join(d, 'scratch.ovl')
    for overlay, io, cache in (('memory', 'io_uring', 'none'), ('memory', 'sync', 'writeback'),
                               (ov, 'io_uring', 'writeback'), (ov, 'sync', 'none')):
        kind = 'memory' if overlay == 'memory' else 'file'
        r = boot([f'disk0.path={base}', f'disk0.overlay={overlay}', f'disk0.io={io}',
                  f'disk0.cache={cache}'])
        name = f'overlay {kind} io={io} cache={cache}'
        c.check(name, r.rc == 0 and r.has_line('blk: all ok'),
                'the guest\'s writes, flush, read-back, discard and write-zeroes all pass', r)
        c.check(name + ' base unchanged', digest(base) == before,
                'the read-only base image is byte-for-byte what it was')
        c.check(name + ' nothing left', not os.path.exists(ov),
                'an overlay file without overlay_keep is gone after the run')


def test_shared_base(c: Checker, d: str) -> None:
    base = base_image(d, 'shared.img')
    bgs = [kvmtest.Background([f'kernel={BLK}', f'disk0.path={base}', 'disk0.overlay=memory',
                               'cmdline=blk.mode=crashtest', 'timeout=60'], tag=f'shared{i}')
           for i in range(2)]
    try:
        up = [bg.wait_for_line(r'blk: flushed seq=2', 60) is not None for bg in bgs]
        c.check('overlay shared base', all(up),
                'two VMs write to overlays over one base at once: ' +
                '; '.join(bg.errors() for bg in bgs if bg.errors()))
        r = boot([f'disk0.path={base}', 'disk0.readonly=off'])
        c.check('overlay base not writable', r.rc == 1 and 'disk0.path' in r.err,
                'a VM without an overlay cannot open the shared base for writing', r)
    finally:
        for bg in bgs:
            bg.stop()


def test_overlay_max(c: Checker, d: str) -> None:
    base = base_image(d, 'max.img')
    r = boot([f'disk0.path={base}', 'disk0.overlay=memory', 'disk0.overlay_max=16K'])
    full = r.err.count('overlay_max')
    c.check('overlay_max', r.rc not in (0, 1) and r.rc >= 0 and full == 1
            and 'disk0.overlay_max=16K is full' in r.err
            and any('status 1' in l or 'ioerr' in l.lower() for l in r.lines() if 'FAIL' in l),
            f'writes past 16K fail in the guest with VIRTIO_BLK_S_IOERR (1), logged {full} '
            'time(s), and kvmrun exits with the guest\'s own status', r)


def test_kept_crash(c: Checker, d: str) -> None:
    base = os.path.join(d, 'crash-base.img')
    with open(base, 'wb') as f:
        f.truncate(16 << 20)
    os.chmod(base, 0o444)
    before = digest(base)
    ov = os.path.join(d, 'crash.ovl')
    bg = kvmtest.Background([f'kernel={BLK}', f'disk0.path={base}', f'disk0.overlay={ov}',
                             'disk0.overlay_keep=on', 'timeout=120',
                             f'cmdline=blk.mode=crashtest blk.sectors={SECTORS} blk.start={START}'],
                            tag='ovcrash')
    try:
        if bg.wait_for_line(r'blk: flushed seq=(4\d*)', 90) is None:
            c.check('overlay kept crash', False, 'no flush acknowledged: ' + bg.errors())
            return
        os.kill(bg.pid, signal.SIGKILL)
        bg.wait(10)
        acked = max(int(x) for x in re.findall(r'blk: flushed seq=(\d+)', bg.output()))
    finally:
        bg.stop()
    target = os.path.join(d, 'crash-merged.img')
    shutil.copyfile(base, target)
    os.chmod(target, 0o644)
    m = guestrun.run([kvmtest.kvmrun_binary(), 'overlay-merge', ov, target], timeout=60)
    ok, detail = check_image(target, acked)
    c.check('overlay kept crash', m.rc == 0 and ok,
            f'after SIGKILL following flush {acked}, the kept overlay merged onto a copy of '
            f'the base: {detail} ({m.out.strip()})', m)
    c.check('overlay kept crash base', digest(base) == before, 'the base is unchanged')
    # the next run reopens the kept overlay, with the blocks the first wrote
    r = boot([f'disk0.path={base}', f'disk0.overlay={ov}', 'disk0.overlay_keep=on',
              'log_level=info'])
    m = re.search(r'overlay \S+ \(kept\): (\d+) blocks written', r.err)
    c.check('overlay kept reopen', r.rc == 0 and r.has_line('blk: all ok') and m is not None
            and int(m.group(1)) > 0, 'the next run reopens the kept overlay (its blocks are '
            'there) and the guest\'s I/O all passes over it', r)
    c.check('overlay kept file stays', os.path.exists(ov), 'overlay_keep=on leaves the file')


def test_refused(c: Checker, d: str) -> None:
    base = base_image(d, 'refused.img')
    for args, key, words in (
            (['disk0.readonly=on', 'disk0.overlay=memory'], 'disk0.overlay', 'readonly'),
            (['disk0.overlay=memory', 'disk0.overlay_keep=on'], 'disk0.overlay_keep', 'PATH'),
            (['disk0.overlay_max=1G'], 'disk0.overlay_max', 'not set')):
        r = run_kvmrun(['--check', f'kernel={BLK}', f'disk0.path={base}'] + args)
        c.check(f'overlay refused {key}', r.rc != 0 and key in r.err and words in r.err,
                f'{" ".join(args)} is refused naming {key}', r)
    ov = os.path.join(d, 'exists.ovl')
    with open(ov, 'wb') as f:
        f.write(b'user data')
    r = boot([f'disk0.path={base}', f'disk0.overlay={ov}'])
    with open(ov, 'rb') as f:
        kept = f.read() == b'user data'
    c.check('overlay existing file', r.rc == 1 and 'disk0.overlay=' in r.err and kept,
            'an existing file is not taken (nor removed) as a throwaway overlay', r)
    r = boot([f'disk0.path={base}', f'disk0.overlay={ov}', 'disk0.overlay_keep=on'])
    c.check('overlay foreign file', r.rc == 1 and 'not a kvmrun overlay' in r.err,
            'nor as a kept one: it has no overlay header', r)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    tmp = os.environ.get('TMPDIR', '/var/tmp')
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        test_refused(c, d)
        test_guest_io(c, d)
        test_shared_base(c, d)
        test_overlay_max(c, d)
        test_kept_crash(c, d)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
