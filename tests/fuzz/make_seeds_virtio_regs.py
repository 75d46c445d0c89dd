#!/usr/bin/env python3
"""Writes seed inputs for fuzz_virtio_regs into corpus_virtio_regs/: a
driver bringing the device up by the book on each transport (features,
one queue in RAM, DRIVER_OK, a two-descriptor chain, a kick), the same on
PCI with MSI-X enabled (vectors routed and fired, masked and pending, a
route the platform refuses), the virtio PCI_CFG window onto BAR0, plus a
few PCI config-space walks. Input format: see fuzz_virtio_regs.c."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_virtio_regs')

PIO, BAR, VMMIO, RAW = 0, 1, 2, 3
W = {1: 0, 2: 1, 4: 2, 8: 3}


def op(target, a, v=0, width=4, read=False, ram=False, cfg=False):
    kind = target | (W[width] << 4) | (0x40 if read else 0) | (4 if ram else 0) | \
        (0x80 if cfg else 0)
    return struct.pack('<BIQ', kind, a & 0xffffffff, v & 0xffffffffffffffff)


CFG_ABS, CFG_MSIX, CFG_PCICFG = 0, 1, 2


def cfg(area, off, v=0, width=4, read=False):
    """A config-space access to the virtio function, @off within @area."""
    return op(PIO, area << 8 | off, v, width, read, cfg=True)


MSIX_TABLE = 0x4000
MSIX_PBA = 0x5000


def msix_entry(vec, addr=0xfee00000, data=0x4021, masked=False):
    e = MSIX_TABLE + 16 * vec
    return (op(BAR, e, addr) + op(BAR, e + 4, 0) + op(BAR, e + 8, data) +
            op(BAR, e + 12, 1 if masked else 0))


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


def pci_msix_seed(ctrl=0x8000, masked_entry=False, data=0x4021, unmask_after=None):
    """Bring-up with MSI-X: vectors 0 (config) and 1 (queue 0) programmed,
    MSI-X enabled with Message Control @ctrl, a chain and a kick, then
    optionally Message Control @unmask_after (delivering what is pending)."""
    s = bytes([0x08])
    c = lambda off, v, w=4: op(BAR, off, v, w)
    s += cfg(CFG_MSIX, 2, 0, 2, read=True)
    s += msix_entry(0, data=data) + msix_entry(1, data=data, masked=masked_entry)
    s += cfg(CFG_MSIX, 2, ctrl, 2)
    s += c(0x14, 1, 1) + c(0x14, 3, 1) + c(0x08, 1) + c(0x0c, 1) + c(0x14, 0xb, 1)
    s += c(0x10, 0, 2) + c(0x16, 0, 2) + c(0x18, 4, 2) + c(0x20, 0x1000) + c(0x28, 0x2000)
    s += c(0x30, 0x3000) + c(0x1a, 1, 2) + op(BAR, 0x1a, width=2, read=True)
    s += c(0x1c, 1, 2) + c(0x14, 0xf, 1)
    s += rings() + c(0x3000, 0, 2)
    s += op(BAR, MSIX_PBA, width=8, read=True)
    if unmask_after is not None:
        s += cfg(CFG_MSIX, 2, unmask_after, 2)
    if masked_entry:
        s += op(BAR, MSIX_TABLE + 16 + 12, 0)  # unmask the entry: pending goes out
    s += op(BAR, MSIX_TABLE + 16, width=8, read=True)
    return s


def pci_cfg_window_seed():
    """The virtio_pci_cfg_cap window (4.1.4.9): BAR0 accesses through config
    space, valid and not."""
    s = bytes([0x08])
    win = lambda bar, off, length: (cfg(CFG_PCICFG, 4, bar, 1) + cfg(CFG_PCICFG, 8, off) +
                                    cfg(CFG_PCICFG, 12, length))
    s += win(0, 0x14, 1) + cfg(CFG_PCICFG, 16, 1, 1) + cfg(CFG_PCICFG, 16, read=True)
    s += win(0, 0x14, 1) + cfg(CFG_PCICFG, 16, 3, 1) + cfg(CFG_PCICFG, 16, read=True)
    s += win(0, 0x00, 4) + cfg(CFG_PCICFG, 16, 1) + cfg(CFG_PCICFG, 16, read=True)
    s += win(0, 0x04, 4) + cfg(CFG_PCICFG, 16, read=True)
    s += win(0, 0x12, 2) + cfg(CFG_PCICFG, 16, read=True, width=2)
    s += win(0, MSIX_TABLE, 4) + cfg(CFG_PCICFG, 16, 0xfee00000)
    s += win(0, 0x14, 3) + cfg(CFG_PCICFG, 16, read=True)      # bad length
    s += win(0, 0x15, 2) + cfg(CFG_PCICFG, 16, read=True)      # misaligned
    s += win(1, 0x14, 1) + cfg(CFG_PCICFG, 16, read=True)      # not BAR0
    s += win(0, 0x7ffe, 4) + cfg(CFG_PCICFG, 16, read=True)    # past BAR0
    s += win(0, 0x7ffc, 4) + cfg(CFG_PCICFG, 16, read=True)    # its last dword
    s += cfg(CFG_PCICFG, 0, read=True) + cfg(CFG_ABS, 0x34, read=True, width=1)
    return s


def mmio_seed(cfg_byte):
    s = bytes([cfg_byte])
    r = lambda off, v: op(VMMIO, off, v, 4)
    s += r(0x70, 1) + r(0x70, 3) + r(0x24, 1) + r(0x20, 1) + r(0x70, 0xb)
    s += r(0x30, 0) + r(0x38, 4) + r(0x80, 0x1000) + r(0x90, 0x2000) + r(0xa0, 0x3000)
    s += r(0x44, 1) + r(0x70, 0xf) + rings() + r(0x50, 0) + op(VMMIO, 0x60, read=True)
    s += r(0x64, 1) + op(VMMIO, 0x100, width=2, read=True)
    return s


def mmio_walk_seed(cfg_byte):
    """Every virtio-mmio register read, odd widths, a config write, and the
    drivers' mistakes: FEATURES_OK without VERSION_1, DRIVER_OK without
    FEATURES_OK, a queue outside RAM, QueueReady cleared, a kick by hand."""
    s = bytes([cfg_byte])
    r = lambda off, v: op(VMMIO, off, v, 4)
    for off in range(0, 0x104, 4):
        s += op(VMMIO, off, read=True)
    s += op(VMMIO, 0x0, read=True, width=2) + op(VMMIO, 0x102, 0x4142, 2)
    s += r(0x14, 1) + op(VMMIO, 0x10, read=True) + r(0x14, 7) + op(VMMIO, 0x10, read=True)
    s += r(0x70, 3) + r(0x70, 0xb) + op(VMMIO, 0x70, read=True)      # no VERSION_1
    s += r(0x70, 0) + r(0x70, 3) + r(0x70, 7)                         # DRIVER_OK too early
    s += r(0x70, 0) + r(0x70, 3) + r(0x24, 1) + r(0x20, 1) + r(0x70, 0xb)
    s += r(0x30, 0) + r(0x38, 4) + r(0x80, 0xff000) + r(0x44, 1)      # outside RAM
    s += r(0x70, 0) + r(0x70, 3) + r(0x24, 1) + r(0x20, 1) + r(0x70, 0xb)
    s += r(0x30, 0) + r(0x38, 4) + r(0x80, 0x1000) + r(0x90, 0x2000) + r(0xa0, 0x3000)
    s += r(0x44, 1) + r(0x38, 8) + r(0x44, 0) + r(0x44, 1) + r(0x70, 0xf)
    s += rings() + op(VMMIO, 0x50, 0, 2) + r(0x50, 7) + r(0x64, 3) + r(0x30, 9) + r(0x38, 4)
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
        'pci-msix': pci_msix_seed(),
        'pci-msix-function-masked': pci_msix_seed(ctrl=0xc000, unmask_after=0x8000),
        'pci-msix-entry-masked': pci_msix_seed(masked_entry=True),
        'pci-msix-route-refused': pci_msix_seed(data=0x80004021),
        'pci-msix-disabled-again': pci_msix_seed(unmask_after=0x0000),
        'pci-cfg-window': pci_cfg_window_seed(),
        'mmio-walk': mmio_walk_seed(0x09),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds)} seeds in {OUT}')


if __name__ == '__main__':
    main()
