#!/usr/bin/env python3
"""Writes seed inputs for fuzz_elf into corpus_elf/: small ELF64 and ELF32
kernels as kvmrun loads them (a PVH guest with its Xen entry note, a
vmlinux-like image with text, data and bss, an i386 image), one whose
segment lands in the guest RAM gap, and images stopping at each check of
elf_parse(). Input format: the image itself."""
import os
import struct

from fdrv_seeds import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_elf')
PT_LOAD, PT_NOTE, PT_DYNAMIC = 1, 4, 2


def note(name, ntype, desc):
    n = name + b'\0' * (4 - len(name) % 4)
    d = desc + b'\0' * (-len(desc) % 4)
    return struct.pack('<III', len(name) + 1, len(desc), ntype) + n + d


def elf64(phdrs, payload, entry=0x100000, machine=62, etype=2, phentsize=56, phoff=64):
    """@phdrs: (type, offset, paddr, filesz, memsz); @payload follows the headers."""
    eh = b'\x7fELF' + bytes([2, 1, 1]) + b'\0' * 9
    eh += struct.pack('<HHIQQQIHHHHHH', etype, machine, 1, entry, phoff, 0, 0, 64,
                      phentsize, len(phdrs), 0, 0, 0)
    ph = b''.join(struct.pack('<IIQQQQQQ', t, 7, o, p, p, fs, ms, 0x1000) +
                  b'\0' * (phentsize - 56) for t, o, p, fs, ms in phdrs)
    return eh + ph + payload


def elf32(phdrs, payload, entry=0x100000):
    eh = b'\x7fELF' + bytes([1, 1, 1]) + b'\0' * 9
    eh += struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, entry, 52, 0, 0, 52, 32, len(phdrs), 0, 0, 0)
    ph = b''.join(struct.pack('<IIIIIIII', t, o, p, p, fs, ms, 7, 0x1000)
                  for t, o, p, fs, ms in phdrs)
    return eh + ph + payload


def main():
    hdr64 = 64 + 56 * 2
    xen = note(b'Xen', 18, struct.pack('<I', 0x100040))
    text = b'\x90' * 256
    s = {}
    s['pvh64'] = elf64([(PT_LOAD, hdr64 + len(xen), 0x100000, len(text), 0x400),
                        (PT_NOTE, hdr64, 0, len(xen), 0)], xen + text)
    notes = note(b'GNU', 3, b'\1' * 20) + note(b'Xen', 17, b'\0' * 8) + \
        note(b'Xen', 18, struct.pack('<Q', 0x1000c0))
    s['pvh64-many-notes'] = elf64([(PT_LOAD, hdr64 + len(notes), 0x100000, 16, 16),
                                   (PT_NOTE, hdr64, 0, len(notes), 0)], notes + b'\xcc' * 16)
    hdr3 = 64 + 56 * 3
    s['vmlinux-like'] = elf64([(PT_LOAD, hdr3, 0x100000, 128, 128),
                               (PT_LOAD, hdr3 + 128, 0x120000, 64, 0x2000),
                               (PT_DYNAMIC, 0xffffffff, 0, 0xffff, 0)], b'\x55' * 192)
    s['segment-in-gap'] = elf64([(PT_LOAD, hdr64, 0x200000, 16, 16),
                                 (PT_NOTE, hdr64, 0, 0, 0)], b'\x11' * 16)
    s['segment-across-regions'] = elf64([(PT_LOAD, 120, 0x13ff00, 16, 0x400000)], b'\x22' * 16)
    hdr32 = 52 + 32
    s['i386'] = elf32([(PT_LOAD, hdr32, 0x100000, 32, 0x100)], b'\x33' * 32)
    # each check of elf_parse, just failing
    good = s['pvh64']
    s['truncated-segment'] = good[:-1]
    s['truncated-header'] = good[:63]
    s['truncated-phdrs'] = elf64([(PT_LOAD, 0, 0x100000, 16, 16),
                                  (PT_LOAD, 0, 0x100000, 16, 16)], b'')[:64 + 56 + 10]
    s['truncated-note'] = elf64([(PT_LOAD, 0, 0x100000, 16, 16),
                                 (PT_NOTE, hdr64, 0, len(xen) - 4, 0)], xen)
    s['not-x86'] = elf64([(PT_LOAD, 120, 0x100000, 0, 0)], b'', machine=183)
    s['not-exec'] = elf64([(PT_LOAD, 120, 0x100000, 0, 0)], b'', etype=3)
    s['small-phentsize'] = elf64([(PT_LOAD, 120, 0x100000, 0, 0)], b'', phentsize=56)[:58] + \
        struct.pack('<H', 32) + elf64([(PT_LOAD, 120, 0x100000, 0, 0)], b'')[60:]
    s['big-phentsize'] = elf64([(PT_LOAD, 128, 0x100000, 8, 8)], b'\x44' * 8, phentsize=64)
    s['no-phdrs'] = elf64([], b'')
    s['nothing-to-load'] = elf64([(PT_NOTE, 120, 0, len(xen), 0)], xen)
    s['memsz-below-filesz'] = elf64([(PT_LOAD, 120, 0x100000, 8, 4)], b'\x55' * 8)
    s['paddr-wraps'] = elf64([(PT_LOAD, 120, 0xfffffffffffff000, 8, 0x2000)], b'\x55' * 8)
    s['big-endian'] = good[:5] + b'\x02' + good[6:]
    s['bad-class'] = good[:4] + b'\x03' + good[5:]
    s['magic-only'] = b'\x7fELF'
    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
