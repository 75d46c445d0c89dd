#include "io.h"
#include "pci.h"

#define PCI_CONF_ADDR 0xCF8
#define PCI_CONF_DATA 0xCFC
#define PCI_CAP_MAX 48 /* a looping capability list stops here */

static uint32_t pci_conf_addr(struct pci_addr a, uint8_t off)
{
	return 0x80000000u | (uint32_t)a.bus << 16 | (uint32_t)(a.dev & 31) << 11 |
	       (uint32_t)(a.fn & 7) << 8 | (off & 0xFCu);
}

uint32_t pci_read32(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(a, off));
	return inl(PCI_CONF_DATA);
}

uint16_t pci_read16(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(a, off));
	return inw((uint16_t)(PCI_CONF_DATA + (off & 2)));
}

uint8_t pci_read8(struct pci_addr a, uint8_t off)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(a, off));
	return inb((uint16_t)(PCI_CONF_DATA + (off & 3)));
}

void pci_write32(struct pci_addr a, uint8_t off, uint32_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(a, off));
	outl(PCI_CONF_DATA, v);
}

void pci_write16(struct pci_addr a, uint8_t off, uint16_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(a, off));
	outw((uint16_t)(PCI_CONF_DATA + (off & 2)), v);
}

bool pci_present(void)
{
	struct pci_addr a = { 0, 0, 0 };

	for (a.dev = 0; a.dev < 32; a.dev++)
		if (pci_read16(a, PCI_VENDOR_ID) != 0xFFFF)
			return true;
	return false;
}

bool pci_find(uint16_t vendor, uint16_t device, unsigned n, struct pci_addr *out)
{
	struct pci_addr a = { 0, 0, 0 };

	for (a.dev = 0; a.dev < 32; a.dev++) {
		unsigned nfn = 1;

		for (a.fn = 0; a.fn < nfn; a.fn++) {
			uint32_t id = pci_read32(a, PCI_VENDOR_ID);

			if ((id & 0xFFFF) == 0xFFFF)
				continue;
			if (a.fn == 0 && (pci_read8(a, PCI_HEADER_TYPE) & 0x80))
				nfn = 8;
			if ((id & 0xFFFF) == vendor && (id >> 16) == device && n-- == 0) {
				*out = a;
				return true;
			}
		}
		a.fn = 0;
	}
	return false;
}

uint8_t pci_find_cap(struct pci_addr a, uint8_t id, uint8_t after)
{
	uint8_t off;

	if (!(pci_read16(a, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	off = after ? pci_read8(a, (uint8_t)(after + 1)) : pci_read8(a, PCI_CAP_PTR);
	for (int i = 0; i < PCI_CAP_MAX && off >= 0x40; i++) {
		off &= 0xFC;
		if (pci_read8(a, off) == id)
			return off;
		off = pci_read8(a, (uint8_t)(off + 1));
	}
	return 0;
}

uint64_t pci_bar_addr(struct pci_addr a, unsigned bar)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * bar);
	uint32_t lo;
	uint64_t addr;

	if (bar > 5)
		return 0;
	lo = pci_read32(a, off);
	if (lo & 1)
		return 0; /* I/O BAR */
	addr = lo & ~0xFull;
	if (((lo >> 1) & 3) == 2) {
		if (bar == 5)
			return 0;
		addr |= (uint64_t)pci_read32(a, (uint8_t)(off + 4)) << 32;
	}
	return addr;
}
