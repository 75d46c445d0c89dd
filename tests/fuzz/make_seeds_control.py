#!/usr/bin/env python3
"""Writes seed inputs for fuzz_control into corpus_control/: every command
with and without a balloon, their argument errors, lines split across
writes and several lines in one, CRLF, NUL and control bytes, a line over
the limit, EOF in the middle of a line, and a client that does not read
its answers over small socket buffers. Input format: see fuzz_control.c."""
import os

from fdrv_seeds import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_control')

SMALL, BALLOON, SET_FAILS, MEM_FAILS, NO_READ, LISTEN, CROWD = 1, 2, 4, 8, 16, 32, 64


def seed(flags, records, numbers=b'\x10\x00\x08\x00\x01\x00\x00\x00'):
    out = bytes([flags]) + numbers
    for r in records:
        if r is None:
            out += b'\xff'
            continue
        while len(r) > 254:
            out += bytes([254]) + r[:254]
            r = r[254:]
        out += bytes([len(r)]) + r
    return out


def main():
    cmds = [b'status\n', b'memory\n', b'balloon\n', b'balloon target=128M\n',
            b'balloon-stats\n', b'help\n', b'stop\n']
    s = {
        'all-commands-balloon': seed(BALLOON, cmds),
        'all-commands-no-balloon': seed(0, cmds),
        'balloon-set-fails': seed(BALLOON | SET_FAILS, [b'balloon target=1M\n']),
        'memory-fails': seed(BALLOON | MEM_FAILS, [b'memory\n', b'status\n']),
        'balloon-too-big': seed(BALLOON, [b'balloon target=1T\n', b'balloon target=4097\n']),
        'stats-none': seed(BALLOON, [b'balloon-stats\n'], numbers=b'\x10\x00\x08\x00\x00\x00\x00\x00'),
        'arg-errors': seed(BALLOON, [
            b'bogus\n', b'status x=1\n', b'balloon target=12Q\n', b'balloon foo\n',
            b'balloon =1\n', b'balloon target=1M target=2M\n',
            b'help a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9\n', b'\n', b' \t \n',
            b'balloon target=' + b'9' * 100 + b'\n']),
        'framing': seed(BALLOON, [b'sta', b'tus\r\n', b'help\nmemory\nballoon-stats\n',
                                  b'stat\x00us\n', b'he\x01lp\n', b'\x7fhelp\n', b'\r\n']),
        'long-line': seed(0, [b'a' * 5000, b'\nhelp\n']),
        'line-at-limit': seed(0, [b'help ' + b'x' * 4091 + b'\n', b'help\n']),
        'eof-mid-line': seed(0, [b'status', None]),
        'eof-after-stop': seed(0, [b'stop\nstatus\n', None]),
        'no-reader': seed(SMALL | NO_READ | BALLOON, [b'status\n' * 36] * 40),
        'listening': seed(LISTEN | BALLOON, cmds),
        'listening-crowded': seed(LISTEN | CROWD, [b'help\n', b'status\n']),
        'listening-no-reader': seed(LISTEN | SMALL | NO_READ, [b'help\n' * 50] * 40),
    }
    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
