"""virtio-blk end to end: the blk test guest's polling driver on both
transports, both engines and both cache modes; read-only disks; the disk
serial; multiqueue; the image lock against a second writer."""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

BLK = guestrun.guest('blk')


def image(d: str, size: int = 64 << 20) -> str:
    path = os.path.join(d, 'disk.img')
    with open(path, 'wb') as f:
        f.truncate(size)
    return path


def digest(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def boot(args: list[str], cmdline: str = '') -> guestrun.Result:
    return run_kvmrun([f'kernel={BLK}', 'debug_exit=on', 'timeout=120',
                       f'cmdline={cmdline}'] + args, timeout=180)


def test_matrix(c: Checker, d: str) -> None:
    for transport in ('pci', 'mmio'):
        for io, cache in (('io_uring', 'none'), ('sync', 'writeback'), ('io_uring', 'writeback')):
            path = image(d)
            r = boot([f'disk0.path={path}', f'transport={transport}', f'disk0.io={io}',
                      f'disk0.cache={cache}'], f'transport={transport}')
            name = f'blk {transport} io={io} cache={cache}'
            c.check(name, r.rc == 0 and r.has_line('blk: all ok'),
                    'writes, flush, read-back, get-id, discard, write-zeroes all pass', r)
            c.check(name + ' data on disk', digest(path) != hashlib.sha256(bytes(64 << 20)).hexdigest(),
                    'the guest\'s writes reached the image file')
            if transport == 'pci' and io == 'io_uring' and cache == 'none':
                c.check('blk interrupt', r.has_line('irq: queue 0 raised'),
                        'the device raised its queue interrupt (seen in the LAPIC IRR)', r)


def test_readonly(c: Checker, d: str) -> None:
    path = image(d)
    with open(path, 'r+b') as f:
        f.write(b'precious' * 512)
    before = digest(path)
    r = boot([f'disk0.path={path}', 'disk0.readonly=on'], 'blk.expect_ro=1')
    c.check('blk read-only', r.rc == 0 and r.has_line('blk: all ok'),
            'RO is offered and a write fails with IOERR', r)
    c.check('blk read-only untouched', digest(path) == before, 'the image is unchanged')


def test_serial_and_queues(c: Checker, d: str) -> None:
    path = image(d)
    r = boot([f'disk0.path={path}', 'disk0.serial=ci-job-42', 'cpus=2'])
    c.check('blk serial', r.has_line('blk: serial=ci-job-42'), 'GET_ID returns disk0.serial', r)
    c.check('blk multiqueue', any(l.startswith('blk: write queue1') and l.endswith('ok')
                                  for l in r.lines()) and r.rc == 0,
            'one queue per vCPU by default; queue 1 serves requests', r)


def test_submit_batch(c: Checker, d: str) -> None:
    for batch in ('1', '256'):
        path = image(d)
        r = boot([f'disk0.path={path}', f'disk0.submit_batch={batch}', 'log_level=debug'])
        c.check(f'blk submit_batch={batch}', r.rc == 0 and r.has_line('blk: all ok')
                and f'submit batch {batch}' in r.err,
                'the engine takes diskN.submit_batch and the guest\'s I/O all passes', r)


def test_lock(c: Checker, d: str) -> None:
    path = image(d)
    bg = kvmtest.Background([f'kernel={BLK}', f'disk0.path={path}', 'cmdline=blk.mode=crashtest',
                             'timeout=60'], tag='lock')
    try:
        if bg.wait_for_line(r'blk: flushed seq=', 60) is None:
            c.check('blk lock', False, 'first VM did not start: ' + bg.errors())
            return
        r = boot([f'disk0.path={path}'])
        c.check('blk lock', r.rc == 1 and 'another process holds a lock' in r.err and path in r.err,
                'a second VM cannot open the same image for writing', r)
        r = boot([f'disk0.path={path}', 'disk0.readonly=on'], 'blk.expect_ro=1')
        c.check('blk lock read-only', r.rc == 1, 'nor read it while a writer holds it', r)
    finally:
        bg.stop()


def test_back_to_back(c: Checker, d: str) -> None:
    """The image lock is gone the moment kvmrun exits, even though an
    io_uring that registered the file is torn down asynchronously."""
    path = image(d)
    codes = [run_kvmrun([f'kernel={guestrun.guest("hello")}', f'disk0.path={path}',
                         'serial=none']).rc for _ in range(10)]
    c.check('blk back-to-back', codes == [0] * 10,
            f'10 VMs in a row on one image all start (exit codes {codes})')


def test_missing_image(c: Checker) -> None:
    r = boot(['disk0.path=/nonexistent/disk.img'])
    c.check('blk missing image', r.rc == 1 and '/nonexistent/disk.img' in r.err
            and 'No such file' in r.err, 'a missing image is an error naming it', r)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    with tempfile.TemporaryDirectory(dir='/var/tmp') as d:  # not tmpfs: O_DIRECT
        test_matrix(c, d)
        test_readonly(c, d)
        test_serial_and_queues(c, d)
        test_submit_batch(c, d)
        test_lock(c, d)
        test_back_to_back(c, d)
    test_missing_image(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
