"""Nothing acknowledged is lost: the blk guest writes rounds of patterns
and flushes; kvmrun is killed with SIGKILL right after a flush was
acknowledged; every sector in the image must hold that round or later."""
from __future__ import annotations

import os
import signal
import struct
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import Checker

MAGIC = 0x48534152434d564b  # "KVMCRASH"
START, SECTORS = 0, 64


def check_image(path: str, min_seq: int) -> tuple[bool, str]:
    with open(path, 'rb') as f:
        f.seek(START * 512)
        data = f.read(SECTORS * 512)
    for s in range(SECTORS):
        words = struct.unpack_from('<4Q', data, s * 512)
        sector = START + s
        if words[0] != MAGIC or words[1] != sector:
            return False, f'sector {sector}: no pattern (magic {words[0]:#x}, sector {words[1]})'
        if words[2] < min_seq:
            return False, f'sector {sector}: seq {words[2]} < acknowledged {min_seq}'
        want = (sector * 0x9E3779B97F4A7C15 & (2**64 - 1)) ^ words[2]
        if words[3] != want:
            return False, f'sector {sector}: payload mismatch'
    return True, f'all {SECTORS} sectors hold seq >= {min_seq}'


def crash_once(c: Checker, d: str, cache: str, io: str, rounds: int) -> None:
    path = os.path.join(d, f'crash-{cache}-{io}.img')
    with open(path, 'wb') as f:
        f.truncate(16 << 20)
    bg = kvmtest.Background([f'kernel={guestrun.guest("blk")}', f'disk0.path={path}',
                             f'disk0.cache={cache}', f'disk0.io={io}', 'timeout=120',
                             f'cmdline=blk.mode=crashtest blk.sectors={SECTORS} blk.start={START}'],
                            tag=f'crash-{cache}')
    name = f'crash cache={cache} io={io}'
    try:
        m = bg.wait_for_line(rf'blk: flushed seq=({rounds}\d*)', 90)
        if m is None:
            c.check(name, False, 'the guest never acknowledged a flush: ' + bg.errors())
            return
        # the last acknowledged round printed before the kill
        os.kill(bg.pid, signal.SIGKILL)
        bg.wait(10)
        seen = [int(x) for x in __import__('re').findall(r'blk: flushed seq=(\d+)', bg.output())]
        acked = max(seen)
        ok, detail = check_image(path, acked)
        c.check(name, ok, f'after SIGKILL following flush {acked}: {detail}')
    finally:
        bg.stop()
        os.unlink(path)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    with tempfile.TemporaryDirectory(dir='/var/tmp') as d:
        for cache, io, rounds in (('none', 'io_uring', 3), ('writeback', 'io_uring', 5),
                                  ('writeback', 'sync', 2), ('none', 'sync', 4)):
            crash_once(c, d, cache, io, rounds)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
