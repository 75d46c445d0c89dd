#!/usr/bin/env python3
"""Writes seed inputs for fuzz_balloon into corpus_balloon/: inflate and
deflate with 4 KiB and 2 MiB backing pages (whole backing pages, partial
ones, page numbers in the RAM gap and past the end, twice, split across
descriptors, a length that is not whole page numbers), a stats buffer
(good and torn), free page reports, targets above and below RAM, failing
discards and a reset. Input format: see fuzz_balloon.c and fuzz_driver.h."""
import os
import struct

from fdrv_seeds import (BUF, DEV_A, DEV_B, DEV_C, RAM_B, RESET, Ring, header, op, raw_bytes,
                        raw_run, write_corpus)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_balloon')

STATS_VQ, DEFLATE_ON_OOM, REPORTING = 1 << 1, 1 << 2, 1 << 5
HUGE, STATS, OOM, REPORT, FAIL = 2, 4, 8, 16, 32  # header() cfg bits


def pfns(*nums):
    return struct.pack('<%dI' % len(nums), *nums)


def main():
    s = {}
    gap = (0x200000 >> 12) + 5          # inside the gap between the regions
    past = (0x600000 >> 12) + 1         # past the end of RAM
    in_b = RAM_B >> 12

    inf, dfl = Ring(0), Ring(1)
    body = op(DEV_A, length=64) + raw_bytes(BUF, pfns(*range(0x100, 0x110)))
    body += inf.chain([(BUF, 64, False)]) + inf.kick() + op(DEV_B)
    body += raw_bytes(BUF + 0x100, pfns(0x100, 0x100, gap, past, in_b, in_b + 1))
    body += inf.chain([(BUF + 0x100, 24, False)]) + inf.kick()
    body += raw_bytes(BUF + 0x200, pfns(0x100, 0x101, 0x200, gap))
    body += dfl.chain([(BUF + 0x200, 16, False)]) + dfl.kick() + op(DEV_B)
    body += inf.chain([(BUF + 0x300, 7, False)]) + inf.kick()        # not whole PFNs
    body += inf.chain([(BUF, 6, False), (BUF + 6, 10, False)]) + inf.kick()  # split PFNs
    body += op(DEV_C, length=64) + op(DEV_A, length=0x7fffffff) + op(DEV_B)
    s['inflate-deflate-4k'] = header() + body

    inf, dfl = Ring(0), Ring(1)
    body = raw_run(BUF, 0, 512) + inf.chain([(BUF, 2048, False)]) + inf.kick()
    body += raw_run(BUF + 0x1000, in_b, 511) + inf.chain([(BUF + 0x1000, 2044, False)])
    body += inf.kick() + op(DEV_B)
    body += raw_bytes(BUF + 0x2000, pfns(3, 4, in_b + 7))
    body += dfl.chain([(BUF + 0x2000, 12, False)]) + dfl.kick() + op(DEV_B) + op(DEV_C, flags=1)
    s['inflate-2m-pages'] = header(HUGE) + body

    st = Ring(2)
    stats = b''.join(struct.pack('<HQ', t, v) for t, v in
                     [(0, 1), (1, 2), (4, 1 << 20), (5, 4 << 20), (6, 3 << 20), (42, 7)])
    body = raw_bytes(BUF, stats) + st.chain([(BUF, len(stats), False)]) + st.kick() + op(DEV_B)
    body += st.chain([(BUF, 25, False)]) + st.kick() + op(DEV_B)           # torn entry
    body += st.chain([(BUF, 5, False), (BUF + 5, 15, False)]) + st.kick()  # split entries
    s['stats'] = header(STATS) + body

    rep = Ring(2)
    body = rep.chain([(0x100000, 0x100000, True)]) + rep.chain([(RAM_B + 0x1000, 0x3000, True)])
    body += rep.chain([(0x1ff000, 0x2000, True)]) + rep.kick() + op(DEV_B)
    s['free-page-reporting'] = header(REPORT) + body
    rep = Ring(3)
    s['reporting-2m-stats'] = header(REPORT | STATS | HUGE) + rep.chain(
        [(0, 0x200000, True), (RAM_B, 0x200000, True)]) + rep.kick() + op(DEV_B)

    inf = Ring(0)
    body = raw_bytes(BUF, pfns(*range(0x180, 0x190))) + inf.chain([(BUF, 64, False)])
    body += inf.kick() + op(RESET) + op(DEV_B)
    inf = Ring(0)
    body += inf.chain([(BUF, 64, False)]) + inf.kick() + op(DEV_B)
    s['failing-discards-reset'] = header(FAIL | OOM) + body

    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
