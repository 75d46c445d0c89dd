#!/usr/bin/env python3
"""Writes seed inputs for fuzz_net into corpus_net/: receive buffers posted
and frames delivered into them (one buffer per frame, merged buffers, too
small, readable by mistake), transmit chains (one or several descriptors,
indirect, writable by mistake, longer than 64 KiB), the control queue
(VQ_PAIRS_SET good and bad, no ack byte), a tap that goes away, and a reset
with buffers in flight. Input format: see fuzz_net.c and fuzz_driver.h."""
import os
import struct

from fdrv_seeds import ALL, BUF, DEV_A, DEV_B, DEV_C, PUMP, RAM_B, RESET, Ring, indirect_table
from fdrv_seeds import header as fdrv_header, op, raw_bytes, write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_net')

MRG, CTRL_VQ, MQ = 1 << 15, 1 << 17, 1 << 22


def header(features=ALL, pairs=1, mtu9000=False):
    return fdrv_header(((pairs - 1) << 1) | (8 if mtu9000 else 0), features)


def frame(length, pair=0, gso=False):
    return op(DEV_A, pair, aux=1 if gso else 0, addr=0x41, length=length)


def drain(pair=0):
    return op(DEV_B, pair)


def net_hdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack('<BBHHHHH', flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def main():
    s = {}

    rx = Ring(0)
    body = b''.join(rx.chain([(BUF + i * 0x1000, 2048, True)]) for i in range(4))
    body += rx.kick() + frame(60) + frame(1514) + frame(100) + frame(4000) + frame(5)
    s['rx-one-buffer-each'] = header(ALL & ~MRG) + body

    rx = Ring(0)
    body = b''.join(rx.chain([(BUF + i * 0x100, 256, True)]) for i in range(12))
    body += rx.kick() + frame(1514) + frame(64) + frame(3000)
    s['rx-merged'] = header() + body

    rx = Ring(0)
    body = rx.chain([(BUF, 8, True)]) + rx.chain([(BUF, 64, False), (BUF + 64, 2048, True)])
    body += rx.chain([(BUF + 0x1000, 12, True), (RAM_B, 4096, True)])
    body += rx.kick() + frame(1000) + frame(70000, gso=True)
    s['rx-bad-buffers'] = header() + body

    rx = Ring(0)
    body = b''.join(rx.chain([(BUF + i * 0x10000, 0x10000, True)]) for i in range(2))
    body += rx.kick() + frame(65550 + 12, gso=True) + frame(65550 + 13, gso=True)
    s['rx-gso'] = header(ALL, mtu9000=True) + body

    tx = Ring(1)
    pkt = net_hdr() + bytes(range(64))
    body = raw_bytes(BUF, pkt) + tx.chain([(BUF, len(pkt), False)])
    body += tx.chain([(BUF, 12, False), (BUF + 12, 30, False), (BUF + 42, 34, False)])
    body += tx.kick() + drain()
    body += tx.chain([(BUF, 12, False), (BUF + 12, 100, True)])          # writable part
    body += tx.chain([(BUF, 8, False)])                                  # shorter than the header
    body += tx.chain([(BUF, 12, False), (BUF, 0x12000, False)])          # 64 KiB + more
    body += tx.kick() + drain()
    s['tx'] = header() + body

    tx = Ring(1)
    body = raw_bytes(BUF, net_hdr(1, 1, 54, 1448, 34, 16) + b'\x45' * 200)
    body += indirect_table(BUF + 0x1000, [(BUF, 12, False), (BUF + 12, 200, False)])
    body += tx.chain([(BUF + 0x1000, 32, False, True)]) + tx.kick() + drain()
    s['tx-indirect'] = header() + body

    tx = Ring(1)
    body = b''.join(tx.chain([(BUF, 60, False)]) for _ in range(16)) + tx.kick() + drain()
    body += op(DEV_C, 0, flags=1) + tx.chain([(BUF, 60, False)]) + tx.kick()
    s['tap-gone'] = header() + body

    # control queue with two pairs: queue 4 (2 * max_pairs)
    ctrl = Ring(4)
    body = raw_bytes(BUF, bytes([4, 0, 2, 0])) + raw_bytes(BUF + 0x100, bytes([4, 0, 5, 0]))
    body += raw_bytes(BUF + 0x200, bytes([4, 0, 0, 0])) + raw_bytes(BUF + 0x300, bytes([9, 9]))
    body += ctrl.chain([(BUF, 4, False), (BUF + 0x800, 1, True)])
    body += ctrl.chain([(BUF + 0x100, 4, False), (BUF + 0x801, 1, True)])
    body += ctrl.chain([(BUF + 0x200, 4, False), (BUF + 0x802, 1, True)])
    body += ctrl.chain([(BUF + 0x300, 2, False), (BUF + 0x803, 1, True)])
    body += ctrl.chain([(BUF, 4, False)])                                # no ack byte
    body += ctrl.chain([(BUF, 1, False), (BUF + 0x804, 1, True)])        # no header
    body += ctrl.kick()
    rx1 = Ring(2)
    tx1 = Ring(3)
    body += rx1.chain([(BUF + 0x4000, 2048, True)]) + rx1.kick() + frame(200, pair=1)
    body += raw_bytes(BUF + 0x5000, net_hdr() + b'\x01' * 60)
    body += tx1.chain([(BUF + 0x5000, 72, False)]) + tx1.kick() + drain(1)
    s['ctrl-mq'] = header(ALL, pairs=2) + body

    rx = Ring(0)
    body = b''.join(rx.chain([(BUF + i * 0x1000, 2048, True)]) for i in range(3))
    body += rx.kick() + frame(100) + op(RESET) + frame(100) + op(PUMP)
    rx = Ring(0)
    body += rx.chain([(BUF, 2048, True)]) + rx.kick() + frame(100)
    s['reset-in-flight'] = header() + body

    s['features-refused'] = header(ALL, pairs=2)[:8] + bytes([1 | 2]) + Ring(1).chain(
        [(BUF, 60, False)]) + op(DEV_C, 0)

    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
