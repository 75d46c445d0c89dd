/* Where kvmrun puts things in guest-physical memory. One table, so the boot
 * paths, the e820 map and the test guests agree (tests/guest/README.md).
 * It lives in mem/, the lowest layer that needs it (RAM is split around
 * the MMIO hole), so cpu/, virtio/ and vmm/ all include it downward.
 *
 *   0x00000-0x004ff  left alone (real-mode IVT and BDA area)
 *   0x00500-0x005ff  boot GDT
 *   0x01000-0x06fff  boot page tables (64-bit Linux entry: PML4, PDPT, 4 PDs
 *                    identity-mapping the first 4 GiB with 2 MiB pages)
 *   0x07000-0x07fff  Linux zero page (boot_params), or PVH start_info + memmap
 *   0x08000-0x1ffff  free: guests' AP trampolines live here
 *   0x20000-0x2ffff  kernel command line
 *   0x9fc00-0xfffff  reserved in e820: ACPI tables at 0xe0000
 *   0x100000-        kernel image, then initrd near the top of low RAM
 *   0xc0000000-0xffffffff  32-bit MMIO hole: PCI BARs, virtio-mmio, IOAPIC,
 *                    LAPIC; RAM beyond 3 GiB continues at 4 GiB */
#ifndef KVMRUN_LAYOUT_H
#define KVMRUN_LAYOUT_H

#define LAYOUT_GDT           0x00500ull
#define LAYOUT_PML4          0x01000ull
#define LAYOUT_PDPT          0x02000ull
#define LAYOUT_PD            0x03000ull /* 4 pages */
#define LAYOUT_ZERO_PAGE     0x07000ull
#define LAYOUT_START_INFO    0x07000ull
#define LAYOUT_CMDLINE       0x20000ull
#define LAYOUT_CMDLINE_MAX   0x10000ull
#define LAYOUT_EBDA          0x9fc00ull
#define LAYOUT_ACPI          0xe0000ull
#define LAYOUT_ACPI_MAX      0x20000ull
#define LAYOUT_HIGH_MEM      0x100000ull
#define LAYOUT_KERNEL        0x100000ull

#define LAYOUT_MMIO_HOLE     0xc0000000ull
#define LAYOUT_4G            0x100000000ull

/* Inside the MMIO hole */
#define LAYOUT_PCI_MMIO      0xc0000000ull  /* 32-bit BARs */
#define LAYOUT_PCI_MMIO_SIZE 0x20000000ull
#define LAYOUT_VIRTIO_MMIO   0xe0000000ull  /* virtio-mmio slots, 4 KiB each */
#define LAYOUT_VIRTIO_MMIO_SLOT 0x1000ull
#define LAYOUT_IOAPIC        0xfec00000ull
#define LAYOUT_LAPIC         0xfee00000ull

/* GSIs of the virtio-mmio slots (the board's own devices and their
 * ports: vmm/board.h) */
#define GSI_VIRTIO_BASE      16      /* virtio-mmio slot i gets GSI 16+i */
#define GSI_VIRTIO_SLOTS     8       /* ... up to the IOAPIC's last pin, 23 */

#endif
