/* PCI configuration space through mechanism #1 (ports 0xCF8/0xCFC), bus 0
 * only (what kvmrun and QEMU's pc machine put virtio devices on). */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_HEADER_TYPE 0x0E
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_LINE 0x3C
#define PCI_INTERRUPT_PIN 0x3D

#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09

struct pci_addr {
	uint8_t bus, dev, fn;
};

uint32_t pci_read32(struct pci_addr a, uint8_t off);
uint16_t pci_read16(struct pci_addr a, uint8_t off);
uint8_t pci_read8(struct pci_addr a, uint8_t off);
void pci_write32(struct pci_addr a, uint8_t off, uint32_t v);
void pci_write16(struct pci_addr a, uint8_t off, uint16_t v);

/* True if anything answers at 0xCF8 (some function on bus 0 exists). */
bool pci_present(void);
/* The n-th (from 0) function on bus 0 with this vendor and device ID, in
 * slot/function order. Returns false if there is none. */
bool pci_find(uint16_t vendor, uint16_t device, unsigned n, struct pci_addr *out);
/* Offset of the first capability with this ID at or after the one that
 * follows `after` (0: from the start of the list); 0 if none. Bounded. */
uint8_t pci_find_cap(struct pci_addr a, uint8_t id, uint8_t after);
/* Physical address of BAR i (32- or 64-bit memory BAR); 0 if it is an I/O
 * BAR, unassigned or out of range. */
uint64_t pci_bar_addr(struct pci_addr a, unsigned bar);

#endif
