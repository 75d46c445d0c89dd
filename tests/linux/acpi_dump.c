/* Test-only tool: builds kvmrun's ACPI tables into a buffer-backed
 * guest_mem and writes each one to DIR/NAME.dat, for iasl -d
 * (tests/integration/test_acpi_tables.py).
 *
 *   acpi_dump DIR [CPUS [PCI(0|1) [VIRTIO_MMIO_SLOTS [APIC_ID_STRIDE]]]] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/acpi.h"
#include "mem/layout.h"
#include "vmm/board.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int dump(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "acpi_dump: %s: %s\n", path, strerror(errno));
		return -1;
	}
	printf("%s %zu\n", path, len);
	return 0;
}

static int dump_table(const struct guest_mem *m, const char *dir, uint64_t gpa)
{
	const uint8_t *t = gmem_ptr(m, gpa, 36);
	if (!t) {
		fprintf(stderr, "acpi_dump: table pointer %#llx outside RAM\n", (unsigned long long)gpa);
		return -1;
	}
	uint32_t len = rd32(t + 4);
	const uint8_t *all = gmem_ptr(m, gpa, len);
	if (!all) {
		fprintf(stderr, "acpi_dump: table at %#llx overruns RAM\n", (unsigned long long)gpa);
		return -1;
	}
	char name[5];
	memcpy(name, t, 4);
	name[4] = 0;
	return dump(dir, name, all, len);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: acpi_dump DIR [CPUS [PCI [VIRTIO_MMIO [APIC_ID_STRIDE]]]]\n");
		return 2;
	}
	const char *dir = argv[1];
	unsigned cpus = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 2;
	bool pci = argc > 3 ? atoi(argv[3]) != 0 : true;
	unsigned nvirtio = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 0) : 2;
	unsigned stride = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 0) : 1;
	if (cpus == 0 || cpus > ACPI_MAX_CPUS || nvirtio > ACPI_MAX_VIRTIO_MMIO || stride == 0) {
		fprintf(stderr, "acpi_dump: bad arguments\n");
		return 2;
	}

	size_t ram_size = LAYOUT_ACPI + LAYOUT_ACPI_MAX;
	uint8_t *ram = calloc(1, ram_size);
	uint32_t ids[ACPI_MAX_CPUS];
	struct guest_mem m = {0};
	if (!ram || gmem_add_region(&m, 0, ram_size, ram, -1, 0) != 0)
		return 1;
	/* the board a VM gets: every table byte as kvmrun writes it */
	struct acpi_params p = { .nr_cpus = cpus, .apic_ids = ids };
	board_describe(&(struct board_opts){ .pci = pci }, &p);
	for (unsigned i = 0; i < cpus; i++)
		ids[i] = i * stride;
	for (unsigned i = 0; i < nvirtio; i++)
		p.virtio_mmio[p.nr_virtio_mmio++] = (struct acpi_virtio_mmio){
			.base = LAYOUT_VIRTIO_MMIO + i * LAYOUT_VIRTIO_MMIO_SLOT,
			.size = LAYOUT_VIRTIO_MMIO_SLOT, .gsi = GSI_VIRTIO_BASE + (i % 8),
		};
	uint64_t rsdp_gpa;
	int rc = acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp_gpa);
	if (rc) {
		fprintf(stderr, "acpi_dump: acpi_build: %s\n", strerror(-rc));
		return 1;
	}
	const uint8_t *rsdp = gmem_ptr(&m, rsdp_gpa, 36);
	if (dump(dir, "RSDP", rsdp, 36) || dump_table(&m, dir, rd32(rsdp + 16)))
		return 1;
	uint64_t xsdt_gpa = rd32(rsdp + 24) | (uint64_t)rd32(rsdp + 28) << 32;
	if (dump_table(&m, dir, xsdt_gpa))
		return 1;
	const uint8_t *xsdt = gmem_ptr(&m, xsdt_gpa, 36);
	unsigned n = (rd32(xsdt + 4) - 36) / 8;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = gmem_ptr(&m, xsdt_gpa + 36 + 8 * i, 8);
		uint64_t gpa = rd32(e) | (uint64_t)rd32(e + 4) << 32;
		if (dump_table(&m, dir, gpa))
			return 1;
		const uint8_t *t = gmem_ptr(&m, gpa, 36);
		if (memcmp(t, "FACP", 4) == 0) {
			const uint8_t *fadt = gmem_ptr(&m, gpa, 48);
			const uint8_t *facs = gmem_ptr(&m, rd32(fadt + 36), 64);
			if (!facs || dump(dir, "FACS", facs, rd32(facs + 4)) ||
			    dump_table(&m, dir, rd32(fadt + 40)))
				return 1;
		}
	}
	free(ram);
	return 0;
}
