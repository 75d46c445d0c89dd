#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_queue into corpus_queue/ (format: see the
comment at the top of fuzz_queue.c). Re-run after changing the format."""
import os
import struct
import sys

DESC, AVAIL, USED, TABLE, DATA = 0x100, 0x300, 0x400, 0x500, 0x600
NEXT, WRITE, INDIRECT = 1, 2, 4
POP, PUSH, NOTIFY, WRITE16, RESET = range(5)
EVENT_IDX, F_INDIRECT = 2, 1


class Seed:
    def __init__(self, size_log2=3, features=0, cap=0, rings=(DESC, AVAIL, USED)):
        self.size = 1 << size_log2
        self.hdr = [size_log2, features, cap]
        self.rings = rings
        self.img = bytearray(max(0x700, rings[2] + 8 + 8 * self.size))
        self.ops = []
        self.avail_idx = 0

    def desc(self, i, addr, length, flags=0, nxt=0, table=None):
        table = self.rings[0] if table is None else table
        struct.pack_into('<QIHH', self.img, table + 16 * i, addr, length, flags, nxt)

    def avail(self, head):
        avail = self.rings[1]
        struct.pack_into('<H', self.img, avail + 4 + 2 * (self.avail_idx % self.size), head)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into('<H', self.img, avail + 2, self.avail_idx)

    def op(self, kind, a=0, v=0):
        self.ops.append(struct.pack('<BHH', kind, a, v))

    def bytes(self):
        return (bytes(self.hdr) + struct.pack('<HHHB', *self.rings, len(self.ops))
                + b''.join(self.ops) + bytes(self.img))


def seeds():
    s = Seed()                                 # a block-like chain, then two more
    s.desc(0, DATA, 16, NEXT, 1)
    s.desc(1, DATA + 0x20, 512, NEXT | WRITE, 2)
    s.desc(2, DATA + 0x10, 1, WRITE)
    s.desc(3, DATA, 64)
    s.desc(4, DATA, 64, WRITE)
    for h in (0, 3, 4):
        s.avail(h)
    yield 'simple', s

    s = Seed(features=EVENT_IDX)               # event idx, pops and pushes
    for i in range(8):
        s.desc(i, DATA + 8 * i, 8, WRITE if i & 1 else 0)
    for h in range(5):
        s.avail(h)
    struct.pack_into('<H', s.img, AVAIL + 4 + 2 * s.size, 2)   # used_event
    for _ in range(3):
        s.op(POP); s.op(PUSH, 0, 8); s.op(NOTIFY)
    s.op(WRITE16, AVAIL + 4 + 2 * s.size, 4)
    s.op(POP); s.op(POP); s.op(PUSH, 0, 1); s.op(PUSH, 0, 2); s.op(NOTIFY)
    s.op(WRITE16, AVAIL + 4 + 2 * 5, 6); s.op(WRITE16, AVAIL + 2, 6)
    s.op(POP); s.op(PUSH); s.op(NOTIFY); s.op(POP)
    yield 'event_idx', s

    s = Seed(features=F_INDIRECT | EVENT_IDX)  # direct header + indirect table
    s.desc(0, DATA, 16, NEXT, 1)
    s.desc(1, TABLE, 48, INDIRECT)
    s.desc(0, DATA + 0x10, 32, NEXT, 2, table=TABLE)
    s.desc(2, DATA + 0x40, 64, NEXT | WRITE, 1, table=TABLE)
    s.desc(1, DATA + 0x80, 1, WRITE, table=TABLE)
    s.desc(2, TABLE + 0x40, 16, INDIRECT)
    s.desc(0, 0x8000, 0x1000, WRITE, table=TABLE + 0x40)
    s.avail(0)
    s.avail(2)
    yield 'indirect', s

    s = Seed(size_log2=4, cap=4)               # region edges, zero length
    s.desc(0, 0x3ff0, 0x20, NEXT, 1)           # crosses A into B
    s.desc(1, 0x5000, 0, NEXT, 2)              # zero length at B's end
    s.desc(2, 0x8000, 0x1000, WRITE)           # all of C
    s.desc(3, 0x4ff0, 0x20, WRITE)             # into the hole: malformed
    s.avail(0)
    s.avail(3)
    yield 'regions', s

    s = Seed()                                 # a cycle
    s.desc(0, DATA, 8, NEXT, 1)
    s.desc(1, DATA, 8, NEXT, 0)
    s.avail(0)
    s.op(POP); s.op(POP); s.op(RESET, 1); s.op(WRITE16, DESC + 12, 0)
    s.op(WRITE16, AVAIL + 2, 1); s.op(POP); s.op(PUSH, 0, 3); s.op(NOTIFY)
    yield 'cycle_reset', s

    s = Seed(size_log2=8, features=F_INDIRECT,  # big queue, nested indirect
             rings=(0x1000, 0x2000, 0x2400))
    s.desc(0, TABLE, 32, INDIRECT)
    s.desc(0, DATA, 8, NEXT, 1, table=TABLE)
    s.desc(1, TABLE + 0x20, 16, INDIRECT, table=TABLE)
    s.avail(0)
    yield 'nested_indirect', s


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus_queue')
    os.makedirs(out, exist_ok=True)
    for name, s in seeds():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(s.bytes())
    return 0


if __name__ == '__main__':
    sys.exit(main())
