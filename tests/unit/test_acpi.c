/* ACPI tables (cpu/acpi.c), parsed back from guest memory, and the PM
 * device (devices/acpi_pm.c) driven through the port bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/acpi.h"
#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/pci_host.h"
#include "unit.h"

#define RAM_SIZE (LAYOUT_ACPI + LAYOUT_ACPI_MAX)

static uint8_t ram[RAM_SIZE];

static void mem_setup(struct guest_mem *m)
{
	memset(m, 0, sizeof(*m));
	memset(ram, 0xcc, sizeof(ram));
	CHECK_EQ(gmem_add_region(m, 0, sizeof(ram), ram, -1, 0), 0);
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* A table at @gpa inside the ACPI window with a valid header; NULL if not. */
static const uint8_t *table_at(const struct guest_mem *m, uint64_t gpa, const char *sig)
{
	const uint8_t *t = gmem_ptr(m, gpa, 36);
	CHECK(t != NULL);
	if (!t)
		return NULL;
	uint32_t len = le32(t + 4);
	CHECK(gpa >= LAYOUT_ACPI && gpa + len <= LAYOUT_ACPI + LAYOUT_ACPI_MAX);
	CHECK(len >= 36);
	CHECK(gmem_ptr(m, gpa, len) != NULL);
	if (sig) {
		CHECK(memcmp(t, sig, 4) == 0);
		if (memcmp(t, sig, 4) != 0)
			fprintf(stderr, "  table at %#" PRIx64 " is %.4s, wanted %s\n", gpa, (const char *)t, sig);
	}
	CHECK_EQ(sum(t, len), 0);
	CHECK(memcmp(t + 10, "KVMRUN", 6) == 0);
	return t;
}

/* ---- a walker for the AML subset the builder emits --------------------- */

struct aml_walk {
	unsigned devices, names, packages;
	bool bad;
	uint64_t s5_typ;
	bool s5_seen;
	const uint8_t *prt, *prt_end; /* Name(_PRT, ...): its data object */
	char hids[512][9];
	unsigned nr_hids;
};

static size_t pkglen(const uint8_t *p, const uint8_t *end, size_t *len)
{
	if (p >= end)
		return 0;
	unsigned n = (p[0] >> 6) + 1;
	if (p + n > end)
		return 0;
	size_t v = n == 1 ? (p[0] & 0x3f) : (p[0] & 0x0f);
	for (unsigned i = 1; i < n; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	if (n > 1)
		CHECK((p[0] & 0x30) == 0);
	*len = v;
	return n;
}

static const uint8_t *namestring(const uint8_t *p, const uint8_t *end, char *out)
{
	unsigned segs = 1;
	out[0] = 0;
	if (p < end && *p == 0x5c) {
		strcat(out, "\\");
		p++;
	}
	if (p < end && *p == 0x2e) {
		segs = 2;
		p++;
	} else if (p + 1 < end && *p == 0x2f) {
		segs = p[1];
		p += 2;
	}
	for (unsigned i = 0; i < segs; i++) {
		if (p + 4 > end)
			return NULL;
		if (i)
			strcat(out, ".");
		strncat(out, (const char *)p, 4);
		p += 4;
	}
	return p;
}

static const uint8_t *data_object(struct aml_walk *w, const uint8_t *p, const uint8_t *end,
				  uint64_t *ival, char *sval);

static const uint8_t *package(struct aml_walk *w, const uint8_t *p, const uint8_t *end,
			      uint64_t *first)
{
	size_t len, n = pkglen(p, end, &len);
	if (!n || p + len > end)
		return NULL;
	const uint8_t *pend = p + len;
	p += n;
	unsigned count = *p++;
	for (unsigned i = 0; i < count; i++) {
		uint64_t v = 0;
		p = data_object(w, p, pend, &v, NULL);
		if (!p)
			return NULL;
		if (i == 0 && first)
			*first = v;
	}
	w->packages++;
	return p == pend ? pend : NULL;
}

static const uint8_t *data_object(struct aml_walk *w, const uint8_t *p, const uint8_t *end,
				  uint64_t *ival, char *sval)
{
	if (p >= end)
		return NULL;
	uint8_t op = *p++;
	switch (op) {
	case 0x00: *ival = 0; return p;
	case 0x01: *ival = 1; return p;
	case 0x0a: if (p + 1 > end) return NULL; *ival = p[0]; return p + 1;
	case 0x0b: if (p + 2 > end) return NULL; *ival = le16(p); return p + 2;
	case 0x0c: if (p + 4 > end) return NULL; *ival = le32(p); return p + 4;
	case 0x0e: if (p + 8 > end) return NULL; *ival = le64(p); return p + 8;
	case 0x0d: {
		const uint8_t *z = memchr(p, 0, (size_t)(end - p));
		if (!z)
			return NULL;
		if (sval)
			snprintf(sval, 9, "%s", (const char *)p);
		return z + 1;
	}
	case 0x11: { /* Buffer: check the resource template ends with an end tag */
		size_t len, n = pkglen(p, end, &len);
		if (!n || p + len > end)
			return NULL;
		const uint8_t *bend = p + len, *q = p + n;
		uint64_t size = 0;
		q = data_object(w, q, bend, &size, NULL);
		if (!q || (uint64_t)(bend - q) != size)
			return NULL;
		CHECK(size >= 2 && bend[-2] == 0x79);
		return bend;
	}
	case 0x12:
		return package(w, p, end, ival);
	default:
		fprintf(stderr, "  unexpected AML data opcode %#x\n", op);
		return NULL;
	}
}

static bool term_list(struct aml_walk *w, const uint8_t *p, const uint8_t *end)
{
	char name[64];
	while (p < end) {
		uint8_t op = *p++;
		if (op == 0x08) { /* Name */
			p = namestring(p, end, name);
			if (!p)
				return false;
			uint64_t v = 0;
			char s[9] = "";
			const uint8_t *obj = p;
			p = data_object(w, p, end, &v, s);
			if (!p)
				return false;
			w->names++;
			if (strcmp(name, "_PRT") == 0) {
				w->prt = obj;
				w->prt_end = p;
			}
			if (strcmp(name, "\\_S5_") == 0) {
				w->s5_seen = true;
				w->s5_typ = v;
			}
			if (strcmp(name, "_HID") == 0 && w->nr_hids < 512) {
				if (s[0])
					snprintf(w->hids[w->nr_hids++], 9, "%s", s);
				else
					snprintf(w->hids[w->nr_hids++], 9, "%08x", (unsigned)v);
			}
		} else if (op == 0x10 || (op == 0x5b && p < end && *p == 0x82)) {
			if (op == 0x5b) {
				p++;
				w->devices++;
			}
			size_t len, n = pkglen(p, end, &len);
			if (!n || p + len > end)
				return false;
			const uint8_t *body_end = p + len;
			const uint8_t *q = namestring(p + n, body_end, name);
			if (!q || !term_list(w, q, body_end))
				return false;
			p = body_end;
		} else {
			fprintf(stderr, "  unexpected AML opcode %#x\n", op);
			return false;
		}
	}
	return p == end;
}

/* The PCI routing table (ACPI 6.2.13): one package per slot 1..31,
 * {0xSSSSFFFF, pin 0 (INTA#), source 0 (GSI), pci_host_slot_gsi(slot)}. */
static void check_prt(const struct aml_walk *w)
{
	const uint8_t *p = w->prt, *end = w->prt_end;
	CHECK(p && *p == 0x12);
	if (!p || *p != 0x12)
		return;
	size_t len, n = pkglen(p + 1, end, &len);
	CHECK(n);
	if (!n)
		return;
	p += 1 + n;
	unsigned count = *p++;
	CHECK_EQ(count, PCI_HOST_SLOTS - 1);
	for (unsigned i = 0; i < count && p < end; i++) {
		struct aml_walk scratch = {0};
		uint64_t f[4] = {0};
		CHECK_EQ(*p, 0x12);
		size_t elen, en = pkglen(p + 1, end, &elen);
		CHECK(en);
		if (!en)
			return;
		const uint8_t *q = p + 1 + en, *eend = p + 1 + elen;
		CHECK_EQ(*q, 4);
		q++;
		for (unsigned k = 0; k < 4 && q; k++)
			q = data_object(&scratch, q, eend, &f[k], NULL);
		CHECK(q == eend);
		unsigned slot = i + 1;
		CHECK_EQ(f[0], ((uint64_t)slot << 16) | 0xffff);
		CHECK_EQ(f[1], 0);
		CHECK_EQ(f[2], 0);
		CHECK_EQ(f[3], pci_host_slot_gsi(slot));
		p = eend;
	}
	CHECK(p == end);
}

static unsigned count_hid(const struct aml_walk *w, const char *hid)
{
	unsigned n = 0;
	for (unsigned i = 0; i < w->nr_hids; i++)
		n += strcmp(w->hids[i], hid) == 0;
	return n;
}

/* ---- the tables ---------------------------------------------------------- */

static void check_tables(unsigned nr_cpus, bool pci, unsigned nr_virtio, bool sparse_ids)
{
	struct guest_mem m;
	mem_setup(&m);
	uint32_t ids[ACPI_MAX_CPUS];
	for (unsigned i = 0; i < nr_cpus; i++)
		ids[i] = sparse_ids ? i * 8 : i;
	struct acpi_params p = { .nr_cpus = nr_cpus, .apic_ids = ids };
	board_describe(&(struct board_opts){ .pci = pci }, &p);
	for (unsigned i = 0; i < nr_virtio; i++)
		p.virtio_mmio[p.nr_virtio_mmio++] = (struct acpi_virtio_mmio){
			.base = LAYOUT_VIRTIO_MMIO + i * LAYOUT_VIRTIO_MMIO_SLOT,
			.size = LAYOUT_VIRTIO_MMIO_SLOT, .gsi = GSI_VIRTIO_BASE + i,
		};
	uint64_t rsdp_gpa = 0;
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp_gpa), 0);
	CHECK_EQ(rsdp_gpa, LAYOUT_ACPI);

	const uint8_t *rsdp = gmem_ptr(&m, rsdp_gpa, 36);
	CHECK(memcmp(rsdp, "RSD PTR ", 8) == 0);
	CHECK_EQ(sum(rsdp, 20), 0);
	CHECK_EQ(sum(rsdp, 36), 0);
	CHECK_EQ(rsdp[15], 2);
	CHECK_EQ(le32(rsdp + 20), 36);

	const uint8_t *rsdt = table_at(&m, le32(rsdp + 16), "RSDT");
	const uint8_t *xsdt = table_at(&m, le64(rsdp + 24), "XSDT");
	if (!rsdt || !xsdt)
		return;
	unsigned n = (le32(xsdt + 4) - 36) / 8;
	CHECK_EQ(n, 2);
	CHECK_EQ((le32(rsdt + 4) - 36) / 4, n);

	const uint8_t *fadt = NULL, *madt = NULL;
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = le64(xsdt + 36 + 8 * i);
		CHECK_EQ(le32(rsdt + 36 + 4 * i), a);
		const uint8_t *t = table_at(&m, a, NULL);
		if (t && memcmp(t, "FACP", 4) == 0)
			fadt = t;
		else if (t && memcmp(t, "APIC", 4) == 0)
			madt = t;
	}
	CHECK(fadt && madt);
	if (!fadt || !madt)
		return;

	/* FADT */
	CHECK_EQ(le32(fadt + 4), 276);
	CHECK_EQ(le16(fadt + 46), GSI_ACPI_SCI);
	CHECK_EQ(le32(fadt + 48), 0);                  /* SMI_CMD */
	CHECK_EQ(le32(fadt + 56), PORT_ACPI_PM1A_EVT);
	CHECK_EQ(le32(fadt + 64), PORT_ACPI_PM1A_CNT);
	CHECK_EQ(fadt[88], 4);
	CHECK_EQ(fadt[89], 2);
	uint16_t boot_arch = le16(fadt + 109);
	CHECK(boot_arch & 2);                          /* 8042 */
	CHECK(!(boot_arch & (1 << 5)));                /* CMOS RTC present */
	uint32_t flags = le32(fadt + 112);
	CHECK(flags & (1u << 10));                     /* RESET_REG_SUP */
	CHECK(!(flags & (1u << 20)));                  /* not HW_REDUCED */
	CHECK_EQ(fadt[116], 1);                        /* RESET_REG: system I/O */
	CHECK_EQ(fadt[117], 8);
	CHECK_EQ(le64(fadt + 120), PORT_ACPI_RESET);
	CHECK_EQ(fadt[128], ACPI_PM_RESET_VALUE);
	CHECK_EQ(fadt[148], 1);
	CHECK_EQ(le64(fadt + 152), PORT_ACPI_PM1A_EVT);
	CHECK_EQ(fadt[149], 32);
	CHECK_EQ(le64(fadt + 176), PORT_ACPI_PM1A_CNT);
	CHECK_EQ(fadt[173], 16);
	CHECK_EQ(le64(fadt + 140), le32(fadt + 40));   /* X_DSDT == DSDT */
	CHECK_EQ(le64(fadt + 132), 0);   /* X_FIRMWARE_CTRL: only one FACS pointer may be set */
	CHECK(le32(fadt + 36) != 0);     /* FIRMWARE_CTRL */

	const uint8_t *facs = gmem_ptr(&m, le32(fadt + 36), 64);
	CHECK(facs && memcmp(facs, "FACS", 4) == 0 && le32(facs + 4) == 64);
	CHECK_EQ(le32(fadt + 36) % 64, 0);

	/* DSDT */
	const uint8_t *dsdt = table_at(&m, le32(fadt + 40), "DSDT");
	if (dsdt) {
		struct aml_walk w = {0};
		CHECK(term_list(&w, dsdt + 36, dsdt + le32(dsdt + 4)));
		CHECK(w.s5_seen);
		CHECK_EQ(w.s5_typ, ACPI_PM_SLP_TYP_S5);
		CHECK_EQ(w.devices, nr_cpus + 4 + (pci ? 1 : 0) + nr_virtio);
		CHECK_EQ(count_hid(&w, "030ad041"), pci ? 1 : 0);  /* PNP0A03 */
		CHECK_EQ(count_hid(&w, "0105d041"), 1);            /* PNP0501 */
		CHECK_EQ(count_hid(&w, "0303d041"), 1);            /* PNP0303 */
		CHECK_EQ(count_hid(&w, "LNRO0005"), nr_virtio);
		CHECK_EQ(count_hid(&w, "ACPI0007"), nr_cpus);
		CHECK_EQ(count_hid(&w, "QEMU0001"), 1);            /* pvpanic */
		if (pci)
			check_prt(&w);
		else
			CHECK(w.prt == NULL);
	}

	/* MADT */
	CHECK_EQ(le32(madt + 36), LAYOUT_LAPIC);
	unsigned lapics = 0, ioapics = 0, isos = 0;
	bool irq0 = false, sci = false;
	const uint8_t *e = madt + 44, *end = madt + le32(madt + 4);
	while (e + 2 <= end && e[1] >= 2 && e + e[1] <= end) {
		switch (e[0]) {
		case 0:
			CHECK_EQ(e[1], 8);
			CHECK(e[2] < nr_cpus);
			CHECK_EQ(e[3], ids[e[2]]);
			CHECK(le32(e + 4) & 1);
			lapics++;
			break;
		case 9:
			CHECK_EQ(e[1], 16);
			CHECK(le32(e + 12) < nr_cpus);
			CHECK_EQ(le32(e + 4), ids[le32(e + 12)]);
			CHECK(ids[le32(e + 12)] > 254);
			lapics++;
			break;
		case 1:
			CHECK_EQ(le32(e + 4), LAYOUT_IOAPIC);
			CHECK_EQ(le32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			isos++;
			if (e[3] == 0 && le32(e + 4) == 2)
				irq0 = true;
			if (e[3] == 9 && le32(e + 4) == 9 && le16(e + 8) == 0x0d)
				sci = true;
			break;
		}
		e += e[1];
	}
	CHECK(e == end);
	CHECK_EQ(lapics, nr_cpus);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK(irq0 && sci);
}

static void test_tables_1cpu(void) { check_tables(1, false, 0, false); }
static void test_tables_2cpu_pci(void) { check_tables(2, true, 4, false); }
static void test_tables_64cpu(void) { check_tables(64, true, 8, false); }
/* IDs up to 8*63 = 504 need x2APIC entries; 256 CPUs need a 3-byte PkgLength */
static void test_tables_sparse_x2apic(void) { check_tables(64, true, 8, true); }
static void test_tables_max(void) { check_tables(ACPI_MAX_CPUS, true, 8, false); }

static void test_build_errors(void)
{
	struct guest_mem m;
	mem_setup(&m);
	uint32_t ids[2] = { 0, 0 };
	uint64_t rsdp = 0;
	struct acpi_params p = { .nr_cpus = 0, .apic_ids = ids };
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp), -EINVAL);
	p.nr_cpus = 2; /* duplicate IDs */
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp), -EINVAL);
	ids[1] = 1;
	p.nr_virtio_mmio = 1;
	p.virtio_mmio[0] = (struct acpi_virtio_mmio){ .base = LAYOUT_4G, .size = 0x1000, .gsi = 16 };
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp), -EINVAL);
	p.virtio_mmio[0] = (struct acpi_virtio_mmio){ .base = LAYOUT_VIRTIO_MMIO, .size = 0x1000, .gsi = ACPI_IOAPIC_PINS };
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp), -EINVAL);
	p.virtio_mmio[0].gsi = 16;
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI + 4, 0x1000, &rsdp), -EINVAL);
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, 256, &rsdp), -ENOSPC);
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX + 16, &rsdp), -EFAULT);
	CHECK_EQ(rsdp, 0);
	CHECK_EQ(ram[LAYOUT_ACPI], 0xcc); /* nothing written on error */
	CHECK_EQ(acpi_build(&p, &m, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &rsdp), 0);
}

/* ---- the PM device --------------------------------------------------------- */

struct pm_probe {
	unsigned poweroffs, resets, sci_changes;
	int sci;
};

static void probe_poweroff(void *c) { ((struct pm_probe *)c)->poweroffs++; }
static void probe_reset(void *c) { ((struct pm_probe *)c)->resets++; }
static void probe_sci(void *c, unsigned gsi, int level)
{
	struct pm_probe *p = c;
	CHECK_EQ(gsi, GSI_ACPI_SCI);
	p->sci = level;
	p->sci_changes++;
}

static struct logger quiet_log;

static struct acpi_pm *pm_setup(struct bus *b, struct pm_probe *pr, bool forwarded)
{
	log_init(&quiet_log, LOG_ERROR, "test");
	quiet_log.fd = open("/dev/null", O_WRONLY);
	bus_init(b, "pio");
	memset(pr, 0, sizeof(*pr));
	struct acpi_pm_params p = {
		.evt_port = PORT_ACPI_PM1A_EVT, .cnt_port = PORT_ACPI_PM1A_CNT,
		.reset_port = PORT_ACPI_RESET,
		.poweroff = probe_poweroff, .reset = probe_reset, .cookie = pr,
		.log = &quiet_log,
		.sci = { .set = probe_sci, .cookie = pr, .gsi = GSI_ACPI_SCI },
		.reset_port_forwarded = forwarded,
	};
	struct acpi_pm *pm = NULL;
	CHECK_EQ(acpi_pm_create(b, &p, &pm), 0);
	return pm;
}

static void pm_teardown(struct acpi_pm *pm)
{
	acpi_pm_destroy(pm);
	close(quiet_log.fd);
}

static void test_pm_poweroff(void)
{
	struct bus b;
	struct pm_probe pr;
	struct acpi_pm *pm = pm_setup(&b, &pr, false);
	if (!pm)
		return;
	uint16_t v = 0;
	CHECK(bus_read(&b, PORT_ACPI_PM1A_CNT, &v, 2));
	CHECK_EQ(v & ACPI_PM1_CNT_SCI_EN, ACPI_PM1_CNT_SCI_EN);

	/* SLP_TYP alone does nothing; another sleep type is ignored */
	v = ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_CNT, &v, 2));
	CHECK_EQ(pr.poweroffs, 0);
	v = (3 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_CNT, &v, 2));
	CHECK_EQ(pr.poweroffs, 0);

	/* what Linux does: SLP_TYP, then SLP_TYP | SLP_EN */
	v = (ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN | 1;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_CNT, &v, 2));
	CHECK_EQ(pr.poweroffs, 1);
	CHECK(bus_read(&b, PORT_ACPI_PM1A_CNT, &v, 2));
	CHECK_EQ(v & ACPI_PM1_CNT_SLP_EN, 0);         /* write-only */
	CHECK_EQ((v >> ACPI_PM1_CNT_SLP_TYP_SHIFT) & 7, ACPI_PM_SLP_TYP_S5);

	/* a byte write of the high half alone also counts */
	uint8_t hi = (uint8_t)(((ACPI_PM_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT) | ACPI_PM1_CNT_SLP_EN) >> 8);
	CHECK(bus_write(&b, PORT_ACPI_PM1A_CNT + 1, &hi, 1));
	CHECK_EQ(pr.poweroffs, 2);
	CHECK_EQ(pr.resets, 0);
	pm_teardown(pm);
}

static void test_pm_reset_register(void)
{
	struct bus b;
	struct pm_probe pr;
	struct acpi_pm *pm = pm_setup(&b, &pr, false);
	if (!pm)
		return;
	uint8_t v = 0x02;
	CHECK(bus_write(&b, PORT_ACPI_RESET, &v, 1));
	CHECK_EQ(pr.resets, 0);
	v = ACPI_PM_RESET_VALUE;
	CHECK(bus_write(&b, PORT_ACPI_RESET, &v, 1));
	CHECK_EQ(pr.resets, 1);
	v = 0x0e;
	CHECK(bus_write(&b, PORT_ACPI_RESET, &v, 1));
	CHECK_EQ(pr.resets, 2);
	CHECK_EQ(pr.poweroffs, 0);
	pm_teardown(pm);

	/* forwarded: the port stays free for the PCI host bridge */
	pm = pm_setup(&b, &pr, true);
	if (!pm)
		return;
	CHECK(bus_find(&b, PORT_ACPI_RESET, 1) == NULL);
	acpi_pm_reset_write(pm, ACPI_PM_RESET_VALUE);
	CHECK_EQ(pr.resets, 1);
	pm_teardown(pm);
}

static void test_pm_status_enable_sci(void)
{
	struct bus b;
	struct pm_probe pr;
	struct acpi_pm *pm = pm_setup(&b, &pr, false);
	if (!pm)
		return;
	uint16_t v = 0xffff;
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK_EQ(v, 0);

	/* a button press with PWRBTN_EN clear: status only */
	acpi_pm_power_button(pm);
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK_EQ(v, ACPI_PM1_STS_PWRBTN);
	CHECK_EQ(pr.sci_changes, 0);

	/* enabling raises the SCI; writing 0 to status changes nothing */
	v = ACPI_PM1_STS_PWRBTN;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_EVT + 2, &v, 2));
	CHECK_EQ(pr.sci, 1);
	v = 0;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK_EQ(v, ACPI_PM1_STS_PWRBTN);

	/* a 32-bit read sees status and enable */
	uint32_t both = 0;
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT, &both, 4));
	CHECK_EQ(both, ACPI_PM1_STS_PWRBTN | (uint32_t)ACPI_PM1_STS_PWRBTN << 16);

	/* write 1 to clear lowers the SCI */
	v = ACPI_PM1_STS_PWRBTN;
	CHECK(bus_write(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT, &v, 2));
	CHECK_EQ(v, 0);
	CHECK_EQ(pr.sci, 0);
	CHECK_EQ(pr.sci_changes, 2);

	/* reset clears enable */
	acpi_pm_reset(pm);
	CHECK(bus_read(&b, PORT_ACPI_PM1A_EVT + 2, &v, 2));
	CHECK_EQ(v, 0);
	pm_teardown(pm);
}

static void test_pm_port_conflict(void)
{
	struct bus b;
	struct pm_probe pr = {0};
	static const struct bus_ops none = {0};
	log_init(&quiet_log, LOG_ERROR, "test");
	quiet_log.fd = open("/dev/null", O_WRONLY);
	bus_init(&b, "pio");
	CHECK_EQ(bus_register(&b, PORT_PCI_CONFIG, 8, &none, NULL, "pci"), 0);
	struct acpi_pm_params p = {
		.evt_port = PORT_ACPI_PM1A_EVT, .cnt_port = PORT_ACPI_PM1A_CNT,
		.reset_port = PORT_ACPI_RESET,
		.poweroff = probe_poweroff, .reset = probe_reset, .cookie = &pr,
		.log = &quiet_log,
	};
	struct acpi_pm *pm = NULL;
	CHECK_EQ(acpi_pm_create(&b, &p, &pm), -EEXIST);
	CHECK_EQ(b.nr_ranges, 1); /* the PM1 blocks came off again */
	p.poweroff = NULL;
	CHECK_EQ(acpi_pm_create(&b, &p, &pm), -EINVAL);
	close(quiet_log.fd);
}

int main(void)
{
	RUN(test_tables_1cpu);
	RUN(test_tables_2cpu_pci);
	RUN(test_tables_64cpu);
	RUN(test_tables_sparse_x2apic);
	RUN(test_tables_max);
	RUN(test_build_errors);
	RUN(test_pm_poweroff);
	RUN(test_pm_reset_register);
	RUN(test_pm_status_enable_sci);
	RUN(test_pm_port_conflict);
	return unit_done();
}
