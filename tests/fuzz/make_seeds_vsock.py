#!/usr/bin/env python3
"""Writes seed inputs for fuzz_vsock into corpus_vsock/: a guest connection
with data both ways and a shutdown, a host connection through the
handshake, credit flow control, a refused port, and packets that stop at
each of the parser's checks. Input format: see fuzz_vsock.c."""
import os
import struct

from fdrv_seeds import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_vsock')

TX, RX, HCONN, HWRITE, HCLOSE, HREAD, PUMP = range(7)
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
GUEST, HOST = 3, 2
HOST_PORT = 1 << 30


def hdr(src_port, dst_port, op, length=0, flags=0, buf_alloc=1 << 20, fwd_cnt=0,
        src_cid=GUEST, dst_cid=HOST, typ=1):
    return struct.pack('<QQIIIHHIII', src_cid, dst_cid, src_port, dst_port, length, typ, op,
                       flags, buf_alloc, fwd_cnt)


def tx(*segs, writable=0, force=False):
    """A tx chain of the segments @segs (bytes)."""
    flags = writable | (0x80 if force else 0)
    out = bytes([TX, len(segs) - 1, flags])
    out += b''.join(struct.pack('<H', len(s)) for s in segs)
    return out + b''.join(segs)


def pkt(src_port, dst_port, op, payload=b'', **kw):
    """Header and payload in two descriptors, as Linux sends them."""
    h = hdr(src_port, dst_port, op, len(payload), **kw)
    return tx(h, payload) if payload else tx(h)


def rx(n=1, size=1000, readable=0):
    return bytes([RX, n - 1, readable]) + struct.pack('<H', size) * n


def hconn(port):
    return bytes([HCONN]) + struct.pack('<I', port)


def hwrite(i, n):
    return bytes([HWRITE, i]) + struct.pack('<H', n)


def main():
    s = {}
    s['guest-connect'] = (pkt(1000, 5, REQUEST) + rx() + pkt(1000, 5, RW, b'hello') +
                          bytes([HREAD, 0]) + hwrite(0, 300) + bytes([PUMP]) + rx(2, 200) +
                          pkt(1000, 5, CREDIT_REQUEST) + rx() +
                          pkt(1000, 5, SHUTDOWN, flags=3) + rx())
    s['host-connect'] = (hconn(77) + rx() + pkt(77, HOST_PORT, RESPONSE) + hwrite(0, 900) +
                         bytes([PUMP]) + rx(1, 1000) + pkt(77, HOST_PORT, RW, b'x' * 100) +
                         bytes([HREAD, 0, HCLOSE, 0, PUMP]) + rx() + rx() +
                         pkt(77, HOST_PORT, SHUTDOWN, flags=3) + rx())
    s['host-refused'] = hconn(78) + rx() + pkt(78, HOST_PORT, RST) + bytes([PUMP])
    s['credit'] = (pkt(1001, 6, REQUEST, buf_alloc=500) + rx() + hwrite(0, 2000) +
                   bytes([PUMP]) + rx(1, 1000) + rx(1, 1000) +
                   pkt(1001, 6, CREDIT_UPDATE, buf_alloc=500, fwd_cnt=500) + rx(1, 1000) +
                   pkt(1001, 6, CREDIT_UPDATE, buf_alloc=10, fwd_cnt=99999) + rx(1, 1000))
    s['half-close'] = (pkt(1002, 7, REQUEST) + rx() + pkt(1002, 7, SHUTDOWN, flags=2) +
                       hwrite(0, 50) + bytes([HCLOSE, 0, PUMP]) + rx() + rx() + rx())
    s['refused-port'] = pkt(1003, 8, REQUEST) + rx() + pkt(1003, 9, RW, b'z') + rx()
    s['malformed'] = (tx(hdr(1, 5, RW)[:20]) +
                      tx(hdr(1, 5, RW, 100), b'abc') +
                      tx(hdr(1, 5, RW, 70000), b'abc') +
                      tx(hdr(1, 5, RW, 3), b'abc', writable=2) +
                      pkt(1, 5, RW, b'abc', src_cid=9) +
                      pkt(1, 5, RW, b'abc', typ=2) +
                      pkt(1004, 5, REQUEST) + pkt(1004, 5, 99) + rx() + rx() +
                      rx(1, 44) + rx(1, 20) + rx(1, 100, readable=1))
    s['split-header'] = tx(hdr(1005, 5, REQUEST)[:10], hdr(1005, 5, REQUEST)[10:]) + rx()
    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
