#!/usr/bin/env python3
"""Writes seed inputs for fuzz_virtio_regs into corpus_virtio_regs/: a
driver bringing the device up by the book on each transport (features,
one queue in RAM, DRIVER_OK, a two-descriptor chain, a kick), plus a few
PCI config-space walks. Input format: see fuzz_virtio_regs.c."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_virtio_regs')

PIO, BAR, VMMIO, RAW = 0, 1, 2, 3
W = {1: 0, 2: 1, 4: 2, 8: 3}


def op(target, a, v=0, width=4, read=False, ram=False):
    kind = target | (W[width] << 4) | (0x40 if read else 0) | (4 if ram else 0)
    return struct.pack('<BIQ', kind, a & 0xffffffff, v & 0xffffffffffffffff)


def ram(gpa, v):
    return op(RAW, gpa, v, 8, ram=True)


def rings():
    """desc at 0x1000, avail 0x2000, used 0x3000; a header + status chain."""
    return b''.join([
        ram(0x1000, 0x4000), ram(0x1008, 16 | 1 << 32 | 1 << 48),   # NEXT -> 1
        ram(0x1010, 0x5000), ram(0x1018, 1 | 2 << 32),              # WRITE
        ram(0x2000, 1 << 16),                                       # idx 1, ring[0] = 0
    ])


def pci_seed(cfg_byte, nq=1):
    s = bytes([cfg_byte])
    c = lambda off, v, w=4: op(BAR, off, v, w)
    s += c(0x14, 1, 1) + c(0x14, 3, 1) + c(0x08, 1) + c(0x0c, 1) + c(0x14, 0xb, 1)
    s += c(0x16, 0, 2) + c(0x18, 4, 2) + c(0x20, 0x1000) + c(0x28, 0x2000) + c(0x30, 0x3000)
    s += c(0x1a, 1, 2) + c(0x1c, 1, 2) + c(0x14, 0xf, 1)
    s += rings() + c(0x3000, 0, 2) + op(BAR, 0x1000, width=1, read=True)
    s += op(BAR, 0x2000, read=True)
    return s


def mmio_seed(cfg_byte):
    s = bytes([cfg_byte])
    r = lambda off, v: op(VMMIO, off, v, 4)
    s += r(0x70, 1) + r(0x70, 3) + r(0x24, 1) + r(0x20, 1) + r(0x70, 0xb)
    s += r(0x30, 0) + r(0x38, 4) + r(0x80, 0x1000) + r(0x90, 0x2000) + r(0xa0, 0x3000)
    s += r(0x44, 1) + r(0x70, 0xf) + rings() + r(0x50, 0) + op(VMMIO, 0x60, read=True)
    s += r(0x64, 1) + op(VMMIO, 0x100, width=2, read=True)
    return s


def pci_config_seed():
    s = bytes([0x08])
    for dev in (0, 1, 2):
        for reg in (0x00, 0x04, 0x10, 0x34, 0x3c, 0x40, 0x50, 0x60, 0x70, 0x80):
            s += op(PIO, 0, 0x80000000 | dev << 11 | reg, 4)
            s += op(PIO, 4, 0, 4, read=True) + op(PIO, 4, 0xffffffff, 4)
    # MSI-X on, then the table
    s += op(PIO, 0, 0x80000800 | 0x04, 4) + op(PIO, 4, 0x6, 2)
    s += op(BAR, 0x4010, 0xfee00000) + op(BAR, 0x401c, 0) + op(BAR, 0x18, 1, 2)
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        'pci-bringup': pci_seed(0x08),
        'pci-bringup-2q': pci_seed(0x0a),
        'mmio-bringup': mmio_seed(0x09),
        'mmio-bringup-4q-nocfg': mmio_seed(0x07),
        'pci-config-walk': pci_config_seed(),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds)} seeds in {OUT}')


if __name__ == '__main__':
    main()
