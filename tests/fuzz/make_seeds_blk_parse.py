#!/usr/bin/env python3
"""Writes seed inputs for fuzz_blk_parse into corpus_blk_parse/: one well-
formed request of each type (read, write, flush, get-id, discard,
write-zeroes), split in the ways a driver splits them, and requests that
stop at each of the parser's checks, so every seed reaches past the status
byte. Input format: see fuzz_blk_parse.c (header, every segment length,
then every segment's bytes)."""
import os
import struct

from fdrv_seeds import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_blk_parse')

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13
CAP = 1 << 20  # sectors


def req_hdr(t, sector=0):
    return struct.pack('<IIQ', t, 0, sector)


def dwz(sector, n, flags=0):
    return struct.pack('<QII', sector, n, flags)


def seed(readable, writable, iov_cap=64, limits=3, max_dwz_segs=16, capacity=CAP,
         max_discard=0x3fffff, max_wz=0x3fffff):
    """@readable, @writable: lists of segment contents (bytes)."""
    segs = list(readable) + list(writable)
    h = struct.pack('<BBBBBQBII', len(segs) - 1, len(readable), iov_cap - 1, limits,
                    max_dwz_segs, capacity, 0, max_discard, max_wz)
    assert len(h) == 22
    return h + b''.join(struct.pack('<H', len(s)) for s in segs) + b''.join(segs)


def main():
    st = b'\xff'
    s = {
        'read_4k': seed([req_hdr(T_IN, 8)], [b'\0' * 4096, st]),
        'read_split': seed([req_hdr(T_IN, 8)], [b'\0' * 512, b'\0' * 3584, b'', st]),
        'status_in_big_seg': seed([req_hdr(T_IN, 8)], [b'\0' * 4096 + st]),
        'read_past_capacity': seed([req_hdr(T_IN, CAP - 1)], [b'\0' * 1024, st]),
        'read_odd_length': seed([req_hdr(T_IN)], [b'\0' * 513, st]),
        'read_iov_cap': seed([req_hdr(T_IN)], [b'\0' * 512] * 3 + [st], iov_cap=2),
        'write_4k': seed([req_hdr(T_OUT, 16), b'\x5a' * 4096], [st]),
        'write_hdr_data_one_seg': seed([req_hdr(T_OUT, 2) + b'\x11' * 1024], [st]),
        'write_wrong_direction': seed([req_hdr(T_OUT)], [b'\0' * 512, st]),
        'short_header': seed([req_hdr(T_IN)[:12]], [st]),
        'header_split': seed([req_hdr(T_OUT, 1)[:5], req_hdr(T_OUT, 1)[5:], b'\1' * 512], [st]),
        'flush': seed([req_hdr(T_FLUSH)], [st]),
        'get_id': seed([req_hdr(T_GET_ID)], [b'\0' * 20, st]),
        'get_id_short': seed([req_hdr(T_GET_ID)], [b'\0' * 19, st]),
        'get_id_split': seed([req_hdr(T_GET_ID)], [b'\0' * 10, b'\0' * 10, st], iov_cap=1),
        'get_id_readable_data': seed([req_hdr(T_GET_ID), b'\0' * 20], [b'\0' * 20, st]),
        'read_readable_data': seed([req_hdr(T_IN), b'\0' * 512], [b'\0' * 512, st]),
        'no_status': seed([req_hdr(T_FLUSH)], []),
        'unknown_type': seed([req_hdr(99)], [st]),
        'discard_2': seed([req_hdr(T_DISCARD), dwz(0, 8), dwz(64, 8)], [st]),
        'discard_unmap_flag': seed([req_hdr(T_DISCARD), dwz(0, 8, 1)], [st]),
        'discard_not_offered': seed([req_hdr(T_DISCARD), dwz(0, 8)], [st], limits=2),
        'discard_split_range': seed([req_hdr(T_DISCARD) + dwz(0, 8)[:7], dwz(0, 8)[7:]], [st]),
        'write_zeroes_unmap': seed([req_hdr(T_WZ), dwz(8, 16, 1)], [st]),
        'write_zeroes_past_capacity': seed([req_hdr(T_WZ), dwz(CAP - 4, 8)], [st]),
        'write_zeroes_too_long': seed([req_hdr(T_WZ), dwz(0, 9)], [st], max_wz=8),
        'write_zeroes_zero_sectors': seed([req_hdr(T_WZ), dwz(0, 0)], [st]),
        'write_zeroes_bad_flags': seed([req_hdr(T_WZ), dwz(0, 8, 2)], [st]),
        'write_zeroes_too_many': seed([req_hdr(T_WZ)] + [dwz(i * 8, 8) for i in range(3)], [st],
                                      max_dwz_segs=2),
        'write_zeroes_partial': seed([req_hdr(T_WZ), dwz(0, 8)[:15]], [st]),
        'write_zeroes_empty': seed([req_hdr(T_WZ)], [st]),
        'write_zeroes_writable_data': seed([req_hdr(T_WZ), dwz(0, 8)], [b'\0' * 16, st]),
    }
    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
