#!/usr/bin/env python3
"""Writes seed inputs for fuzz_snapshot into corpus_snapshot/: headers
(a good one, each key wrong in turn, a newer version, a truncated one) and
state files (lib/state.h's format) with a vCPU section and the kvm.vm
section, whole and with each length, count or value wrong in turn. The
KVM structures' sizes are those of the x86-64 kernel ABI. Input format:
see fuzz_snapshot.c."""
import os
import struct
import zlib

from fdrv_seeds import write_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_snapshot')

REGS, SREGS, XCRS, LAPIC, EVENTS, DREGS, CPUID, CHIP, PIT, XSAVE = (
    144, 312, 392, 1024, 64, 128, 40, 512, 112, 4096)

GOOD_HEADER = (b'format=kvmrun-snapshot\nversion=1\nmem=134217728\ncpus=1\n'
               b'state_size=9000\nstate_crc=deadbeef\ndisk0_size=1048576\n')


def state_file(sections, version=1, bom=0x01020304):
    body = b''
    for name, ver, payload in sections:
        body += struct.pack('<H', len(name)) + name + struct.pack('<IQ', ver, len(payload)) + payload
    data = b'KVMRUNST' + struct.pack('<III', version, bom, len(sections)) + body
    return data + struct.pack('<I', zlib.crc32(data))


def blob(n, fill=0):
    return struct.pack('<I', n) + bytes([fill]) * n


def vcpu(index=0, regs=REGS, xsave=XSAVE, mp=0, msrs=((0x10, 1234), (0xc0000080, 0xd01)),
         cpuid_n=2, nmsr=None):
    p = struct.pack('<II', index, index)
    p += blob(regs, 1) + blob(SREGS, 2) + blob(xsave) + blob(XCRS) + blob(LAPIC, 3)
    p += blob(EVENTS) + blob(DREGS) + struct.pack('<I', mp)
    p += struct.pack('<I', len(msrs) if nmsr is None else nmsr)
    for i, d in msrs:
        p += struct.pack('<IQ', i, d)
    p += blob(CPUID * cpuid_n, 7) + struct.pack('<I', 2000000)
    return p


def vm(pit_mode=2, chip=CHIP):
    p = blob(chip) * 3
    ch = struct.pack('<IHBBBBBBBBBBq', 0x10000, 0, 0, 0, 3, 0, 0, 0, pit_mode, 0, 0, 0, 0)
    ch = ch.ljust(24, b'\0')
    pit = (ch * 3 + b'\0' * (PIT - 72))
    p += struct.pack('<I', PIT) + pit + struct.pack('<Q', 123456789)
    return p


def main():
    s = {
        'header-good': b'\0' + GOOD_HEADER,
        'header-newer': b'\0' + GOOD_HEADER.replace(b'version=1', b'version=2'),
        'header-truncated': b'\0' + GOOD_HEADER[:40],
        'header-no-format': b'\0' + GOOD_HEADER[23:],
        'header-bad-mem': b'\0' + GOOD_HEADER.replace(b'mem=134217728', b'mem=12x'),
        'header-zero-cpus': b'\0' + GOOD_HEADER.replace(b'cpus=1', b'cpus=0'),
        'header-repeat': b'\0' + GOOD_HEADER + b'cpus=2\n',
        'header-unknown': b'\0' + GOOD_HEADER + b'colour=blue\n',
        'header-bad-crc': b'\0' + GOOD_HEADER.replace(b'deadbeef', b'xyz'),
        'header-comment': b'\0# a comment\n\n' + GOOD_HEADER,
        'state-good': b'\1' + state_file([(b'vcpu.0', 1, vcpu()), (b'kvm.vm', 1, vm())]),
        'state-two-vcpus': b'\1' + state_file([(b'vcpu.0', 1, vcpu(0)), (b'vcpu.1', 1, vcpu(1)),
                                               (b'kvm.vm', 1, vm())]),
        'state-xsave2': b'\1' + state_file([(b'vcpu.0', 1, vcpu(xsave=XSAVE + 1024))]),
        'state-short-regs': b'\1' + state_file([(b'vcpu.0', 1, vcpu(regs=100))]),
        'state-small-xsave': b'\1' + state_file([(b'vcpu.0', 1, vcpu(xsave=64))]),
        'state-bad-mp': b'\1' + state_file([(b'vcpu.0', 1, vcpu(mp=77))]),
        'state-many-msrs': b'\1' + state_file([(b'vcpu.0', 1, vcpu(nmsr=100000))]),
        'state-odd-cpuid': b'\1' + state_file([(b'vcpu.0', 1, vcpu()[:-50])]),
        'state-newer-section': b'\1' + state_file([(b'vcpu.0', 2, vcpu())]),
        'state-bad-pit': b'\1' + state_file([(b'kvm.vm', 1, vm(pit_mode=9))]),
        'state-short-chip': b'\1' + state_file([(b'kvm.vm', 1, vm(chip=500))]),
        'state-trailing': b'\1' + state_file([(b'kvm.vm', 1, vm() + b'xx')]),
        'state-wrong-bom': b'\1' + state_file([(b'kvm.vm', 1, vm())], bom=0x04030201),
        'state-bad-crc': b'\1' + state_file([(b'kvm.vm', 1, vm())])[:-1] + b'\0',
    }
    write_corpus(OUT, s)


if __name__ == '__main__':
    main()
