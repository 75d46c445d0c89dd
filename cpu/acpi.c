/* ACPI table builder (ACPI 6.5: 5.2 tables, 6.4 resource descriptors,
 * 20 AML encoding). Tables are laid out in a host buffer, checksummed, then
 * copied into guest memory in one gmem_write. */
#include "cpu/acpi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/layout.h"

#define OEM_ID       "KVMRUN"
#define OEM_TABLE_ID "KVMRUNVM"
#define CREATOR_ID   "KVMR"

#define HDR_LEN 36
#define FADT_LEN 276
#define FACS_LEN 64

/* ---- a bounded byte buffer ---------------------------------------------- */

struct abuf {
	uint8_t *b;
	size_t len, cap;
	bool overflow;
};

static void ab_put(struct abuf *a, const void *p, size_t n)
{
	if (a->overflow || n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

static void ab_u8(struct abuf *a, uint8_t v) { ab_put(a, &v, 1); }

static void ab_u16(struct abuf *a, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	ab_put(a, b, 2);
}

static void ab_u32(struct abuf *a, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	ab_put(a, b, 4);
}

static void ab_u64(struct abuf *a, uint64_t v)
{
	ab_u32(a, (uint32_t)v);
	ab_u32(a, (uint32_t)(v >> 32));
}

/* ---- AML encoder (ACPI 6.5, 20.2) ----------------------------------------- */

#define AML_ZERO      0x00
#define AML_ONE       0x01
#define AML_NAME      0x08
#define AML_BYTE      0x0a
#define AML_WORD      0x0b
#define AML_DWORD     0x0c
#define AML_STRING    0x0d
#define AML_QWORD     0x0e
#define AML_SCOPE     0x10
#define AML_BUFFER    0x11
#define AML_PACKAGE   0x12
#define AML_EXT       0x5b
#define AML_DEVICE    0x82 /* after AML_EXT */
#define AML_ROOT      0x5c
#define AML_DUAL_NAME 0x2e
#define AML_MULTI_NAME 0x2f

/* Starts an object whose PkgLength precedes its body; returns the mark to
 * hand to aml_pkg_end once the body is written. */
static size_t aml_pkg_begin(struct abuf *a)
{
	return a->len;
}

/* Inserts the PkgLength of everything written since @mark (20.2.4: it
 * counts its own 1-4 bytes; one byte holds up to 63, otherwise the lead
 * byte carries the byte count in bits 7:6 and the low nibble). */
static void aml_pkg_end(struct abuf *a, size_t mark)
{
	if (a->overflow)
		return;
	size_t body = a->len - mark;
	unsigned n;
	if (body + 1 <= 0x3f)
		n = 1;
	else if (body + 2 <= 0xfff)
		n = 2;
	else if (body + 3 <= 0xfffff)
		n = 3;
	else if (body + 4 <= 0xfffffff)
		n = 4;
	else {
		a->overflow = true;
		return;
	}
	if (n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	size_t total = body + n;
	memmove(a->b + mark + n, a->b + mark, body);
	if (n == 1) {
		a->b[mark] = (uint8_t)total;
	} else {
		a->b[mark] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			a->b[mark + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len += n;
}

/* A NameString from "\\_SB.PCI0" or "_S5": optional root prefix, then
 * dot-separated segments of up to 4 characters, padded with '_'. */
static void aml_namestring(struct abuf *a, const char *path)
{
	char segs[8][4];
	unsigned nsegs = 0;
	if (*path == '\\') {
		ab_u8(a, AML_ROOT);
		path++;
	}
	while (*path && nsegs < 8) {
		size_t n = strcspn(path, ".");
		memset(segs[nsegs], '_', 4);
		memcpy(segs[nsegs], path, n > 4 ? 4 : n);
		nsegs++;
		path += n;
		if (*path == '.')
			path++;
	}
	if (nsegs == 0) {
		ab_u8(a, 0x00); /* NullName */
		return;
	}
	if (nsegs == 2)
		ab_u8(a, AML_DUAL_NAME);
	else if (nsegs > 2) {
		ab_u8(a, AML_MULTI_NAME);
		ab_u8(a, (uint8_t)nsegs);
	}
	for (unsigned i = 0; i < nsegs; i++)
		ab_put(a, segs[i], 4);
}

static void aml_integer(struct abuf *a, uint64_t v)
{
	if (v == 0)
		ab_u8(a, AML_ZERO);
	else if (v == 1)
		ab_u8(a, AML_ONE);
	else if (v <= 0xff) {
		ab_u8(a, AML_BYTE);
		ab_u8(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		ab_u8(a, AML_WORD);
		ab_u16(a, (uint16_t)v);
	} else if (v <= 0xffffffff) {
		ab_u8(a, AML_DWORD);
		ab_u32(a, (uint32_t)v);
	} else {
		ab_u8(a, AML_QWORD);
		ab_u64(a, v);
	}
}

static void aml_string(struct abuf *a, const char *s)
{
	ab_u8(a, AML_STRING);
	ab_put(a, s, strlen(s) + 1);
}

/* EISA ID "PNP0A03" compressed into a 32-bit integer (ACPI 6.5, 6.1.5). */
static uint32_t eisa_id(const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t c1 = (uint8_t)(id[0] - 0x40), c2 = (uint8_t)(id[1] - 0x40),
		c3 = (uint8_t)(id[2] - 0x40);
	uint8_t d[4];
	for (unsigned i = 0; i < 4; i++)
		d[i] = (uint8_t)(strchr(hex, id[3 + i]) - hex);
	uint8_t b0 = (uint8_t)((c1 << 2) | (c2 >> 3));
	uint8_t b1 = (uint8_t)(((c2 & 7) << 5) | c3);
	uint8_t b2 = (uint8_t)((d[0] << 4) | d[1]);
	uint8_t b3 = (uint8_t)((d[2] << 4) | d[3]);
	return (uint32_t)b0 | (uint32_t)b1 << 8 | (uint32_t)b2 << 16 | (uint32_t)b3 << 24;
}

static void aml_name_int(struct abuf *a, const char *name, uint64_t v)
{
	ab_u8(a, AML_NAME);
	aml_namestring(a, name);
	aml_integer(a, v);
}

static void aml_name_str(struct abuf *a, const char *name, const char *s)
{
	ab_u8(a, AML_NAME);
	aml_namestring(a, name);
	aml_string(a, s);
}

static void aml_name_eisa(struct abuf *a, const char *name, const char *id)
{
	aml_name_int(a, name, eisa_id(id));
}

static size_t aml_scope_begin(struct abuf *a, const char *name)
{
	ab_u8(a, AML_SCOPE);
	size_t mark = aml_pkg_begin(a);
	aml_namestring(a, name);
	return mark;
}

static size_t aml_device_begin(struct abuf *a, const char *name)
{
	ab_u8(a, AML_EXT);
	ab_u8(a, AML_DEVICE);
	size_t mark = aml_pkg_begin(a);
	aml_namestring(a, name);
	return mark;
}

/* Name(name, Buffer(){ bytes }) */
static void aml_name_buffer(struct abuf *a, const char *name, const uint8_t *bytes,
			    size_t n)
{
	ab_u8(a, AML_NAME);
	aml_namestring(a, name);
	ab_u8(a, AML_BUFFER);
	size_t mark = aml_pkg_begin(a);
	aml_integer(a, n);
	ab_put(a, bytes, n);
	aml_pkg_end(a, mark);
}

/* ---- resource descriptors (ACPI 6.5, 6.4) ----------------------------------- */

struct restemplate {
	uint8_t b[128];
	struct abuf a;
};

static void rt_init(struct restemplate *rt)
{
	rt->a = (struct abuf){ .b = rt->b, .cap = sizeof(rt->b) };
}

/* IO(Decode16, base, base, 1, len) */
static void rt_io(struct restemplate *rt, uint16_t base, uint8_t len)
{
	ab_u8(&rt->a, 0x47);
	ab_u8(&rt->a, 0x01);
	ab_u16(&rt->a, base);
	ab_u16(&rt->a, base);
	ab_u8(&rt->a, 1);
	ab_u8(&rt->a, len);
}

/* IRQNoFlags(){irq}: edge, active-high ISA interrupt */
static void rt_irq(struct restemplate *rt, unsigned irq)
{
	ab_u8(&rt->a, 0x22);
	ab_u16(&rt->a, (uint16_t)(1u << irq));
}

/* Memory32Fixed(ReadWrite, base, len) */
static void rt_mem32_fixed(struct restemplate *rt, uint32_t base, uint32_t len)
{
	ab_u8(&rt->a, 0x86);
	ab_u16(&rt->a, 9);
	ab_u8(&rt->a, 0x01);
	ab_u32(&rt->a, base);
	ab_u32(&rt->a, len);
}

/* Interrupt(ResourceConsumer, Level, ActiveHigh, Exclusive){gsi} */
static void rt_ext_irq_level(struct restemplate *rt, uint32_t gsi)
{
	ab_u8(&rt->a, 0x89);
	ab_u16(&rt->a, 6);
	ab_u8(&rt->a, 0x01); /* consumer; level (bit 1 clear), active-high (bit 2 clear) */
	ab_u8(&rt->a, 1);
	ab_u32(&rt->a, gsi);
}

/* WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, n) */
static void rt_bus_number(struct restemplate *rt, uint16_t min, uint16_t max)
{
	ab_u8(&rt->a, 0x88);
	ab_u16(&rt->a, 13);
	ab_u8(&rt->a, 2);    /* bus number range */
	ab_u8(&rt->a, 0x0c); /* min/max fixed, producer */
	ab_u8(&rt->a, 0);
	ab_u16(&rt->a, 0);
	ab_u16(&rt->a, min);
	ab_u16(&rt->a, max);
	ab_u16(&rt->a, 0);
	ab_u16(&rt->a, (uint16_t)(max - min + 1));
}

/* DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 * ReadWrite, 0, base, base+len-1, 0, len) */
static void rt_dword_memory(struct restemplate *rt, uint32_t base, uint32_t len)
{
	ab_u8(&rt->a, 0x87);
	ab_u16(&rt->a, 23);
	ab_u8(&rt->a, 0);    /* memory range */
	ab_u8(&rt->a, 0x0c); /* min/max fixed, producer */
	ab_u8(&rt->a, 0x01); /* read-write, non-cacheable */
	ab_u32(&rt->a, 0);
	ab_u32(&rt->a, base);
	ab_u32(&rt->a, base + len - 1);
	ab_u32(&rt->a, 0);
	ab_u32(&rt->a, len);
}

/* Name(_CRS, ResourceTemplate(){...}) with the end tag */
static void aml_name_crs(struct abuf *a, struct restemplate *rt)
{
	ab_u8(&rt->a, 0x79);
	ab_u8(&rt->a, 0); /* checksum 0: treated as correct */
	if (rt->a.overflow) {
		a->overflow = true;
		return;
	}
	aml_name_buffer(a, "_CRS", rt->b, rt->a.len);
}

/* ---- tables ----------------------------------------------------------------- */

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

/* Writes a table header with length and checksum still zero. */
static void table_header(struct abuf *a, const char *sig, uint8_t rev)
{
	ab_put(a, sig, 4);
	ab_u32(a, 0);   /* length, set by table_finish */
	ab_u8(a, rev);
	ab_u8(a, 0);    /* checksum */
	ab_put(a, OEM_ID, 6);
	ab_put(a, OEM_TABLE_ID, 8);
	ab_u32(a, 1);   /* OEM revision */
	ab_put(a, CREATOR_ID, 4);
	ab_u32(a, 1);   /* creator revision */
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void table_finish(struct abuf *a, size_t start)
{
	if (a->overflow)
		return;
	put_le32(a->b + start + 4, (uint32_t)(a->len - start));
	a->b[start + 9] = checksum(a->b + start, a->len - start);
}

static void ab_align(struct abuf *a, size_t align)
{
	while (!a->overflow && a->len % align)
		ab_u8(a, 0);
}

/* Generic Address Structure (5.2.3.2) for an I/O port */
static void gas_io(struct abuf *a, uint16_t port, uint8_t bits, uint8_t access)
{
	ab_u8(a, port ? 1 : 0); /* system I/O */
	ab_u8(a, port ? bits : 0);
	ab_u8(a, 0);
	ab_u8(a, port ? access : 0);
	ab_u64(a, port);
}

/* Name(_PRT, Package(){ Package(){0xNNNNFFFF, pin, source, index}, ... })
 * (ACPI 6.5, 6.2.13): INTA# (pin 0) of every slot 1..nr_slots-1 wired
 * straight to its GSI (source 0: the index is a GSI). Only INTA#: every
 * function is single-function and uses pin A. */
static void aml_name_prt(struct abuf *a, const struct acpi_pci_host *h)
{
	ab_u8(a, AML_NAME);
	aml_namestring(a, "_PRT");
	ab_u8(a, AML_PACKAGE);
	size_t outer = aml_pkg_begin(a);
	ab_u8(a, (uint8_t)(h->nr_slots - 1));
	for (unsigned slot = 1; slot < h->nr_slots; slot++) {
		ab_u8(a, AML_PACKAGE);
		size_t entry = aml_pkg_begin(a);
		ab_u8(a, 4);
		aml_integer(a, ((uint64_t)slot << 16) | 0xffff); /* device, any function */
		aml_integer(a, 0);                               /* INTA# */
		aml_integer(a, 0);                               /* no link device */
		aml_integer(a, h->slot_gsi[slot]);               /* GSI */
		aml_pkg_end(a, entry);
	}
	aml_pkg_end(a, outer);
}

static void aml_pci_host(struct abuf *a, const struct acpi_pci_host *h)
{
	struct restemplate rt;
	size_t dev = aml_device_begin(a, "PCI0");
	aml_name_eisa(a, "_HID", "PNP0A03");
	aml_name_int(a, "_SEG", 0);
	aml_name_int(a, "_BBN", 0);
	aml_name_int(a, "_UID", 0);
	rt_init(&rt);
	rt_bus_number(&rt, 0, 0);
	rt_io(&rt, h->config_port, h->config_len);
	rt_dword_memory(&rt, h->window_base, h->window_size);
	aml_name_crs(a, &rt);
	aml_name_prt(a, h);
	aml_pkg_end(a, dev);
}

static void aml_isa_device(struct abuf *a, const struct acpi_device *d)
{
	struct restemplate rt;
	size_t dev = aml_device_begin(a, d->name);
	if (d->eisa)
		aml_name_eisa(a, "_HID", d->hid);
	else
		aml_name_str(a, "_HID", d->hid);
	if (d->uid >= 0)
		aml_name_int(a, "_UID", (uint64_t)d->uid);
	rt_init(&rt);
	for (unsigned i = 0; i < d->nr_io; i++)
		rt_io(&rt, d->io[i].base, d->io[i].len);
	if (d->irq >= 0)
		rt_irq(&rt, (unsigned)d->irq);
	aml_name_crs(a, &rt);
	aml_pkg_end(a, dev);
}

static void build_dsdt(struct abuf *a, const struct acpi_params *p)
{
	size_t start = a->len;
	table_header(a, "DSDT", 2); /* revision 2: 64-bit integers */

	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved */
	ab_u8(a, AML_NAME);
	aml_namestring(a, "\\_S5");
	ab_u8(a, AML_PACKAGE);
	size_t pkg = aml_pkg_begin(a);
	ab_u8(a, 4);
	aml_integer(a, p->fixed.slp_typ_s5);
	aml_integer(a, p->fixed.slp_typ_s5);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_pkg_end(a, pkg);

	size_t sb = aml_scope_begin(a, "\\_SB");

	for (unsigned i = 0; i < p->nr_cpus; i++) {
		static const char hex[] = "0123456789ABCDEF";
		char name[5] = { 'C', hex[(i >> 8) & 0xf], hex[(i >> 4) & 0xf], hex[i & 0xf], 0 };
		size_t dev = aml_device_begin(a, name);
		aml_name_str(a, "_HID", "ACPI0007");
		aml_name_int(a, "_UID", i);
		aml_pkg_end(a, dev);
	}

	if (p->pci)
		aml_pci_host(a, &p->pci_host);

	for (unsigned i = 0; i < p->nr_devices; i++)
		aml_isa_device(a, &p->devices[i]);

	for (unsigned i = 0; i < p->nr_virtio_mmio; i++) {
		static const char hex[] = "0123456789ABCDEF";
		const struct acpi_virtio_mmio *v = &p->virtio_mmio[i];
		char name[5] = { 'V', 'R', hex[(i >> 4) & 0xf], hex[i & 0xf], 0 };
		struct restemplate rt;
		size_t dev = aml_device_begin(a, name);
		aml_name_str(a, "_HID", "LNRO0005");
		aml_name_int(a, "_UID", i);
		rt_init(&rt);
		rt_mem32_fixed(&rt, (uint32_t)v->base, (uint32_t)v->size);
		rt_ext_irq_level(&rt, v->gsi);
		aml_name_crs(a, &rt);
		aml_pkg_end(a, dev);
	}

	aml_pkg_end(a, sb);
	table_finish(a, start);
}

static void build_madt(struct abuf *a, const struct acpi_params *p)
{
	size_t start = a->len;
	table_header(a, "APIC", 5);
	ab_u32(a, (uint32_t)LAYOUT_LAPIC);
	ab_u32(a, 1); /* PCAT_COMPAT: dual 8259s present (masked by the OS) */

	for (unsigned i = 0; i < p->nr_cpus; i++) {
		uint32_t id = p->apic_ids[i];
		if (id <= 254) {
			ab_u8(a, 0);  /* Processor Local APIC */
			ab_u8(a, 8);
			ab_u8(a, (uint8_t)i);
			ab_u8(a, (uint8_t)id);
			ab_u32(a, 1); /* enabled */
		} else {
			ab_u8(a, 9);  /* Processor Local x2APIC */
			ab_u8(a, 16);
			ab_u16(a, 0);
			ab_u32(a, id);
			ab_u32(a, 1);
			ab_u32(a, i);
		}
	}

	ab_u8(a, 1);  /* I/O APIC */
	ab_u8(a, 12);
	ab_u8(a, 0);  /* I/O APIC ID: what KVM's in-kernel IOAPIC resets to */
	ab_u8(a, 0);
	ab_u32(a, (uint32_t)LAYOUT_IOAPIC);
	ab_u32(a, 0); /* GSI base */

	for (unsigned i = 0; i < p->nr_overrides; i++) {
		const struct acpi_irq_override *o = &p->overrides[i];
		ab_u8(a, 2);  /* Interrupt Source Override */
		ab_u8(a, 10);
		ab_u8(a, 0);  /* ISA */
		ab_u8(a, o->irq);
		ab_u32(a, o->gsi);
		ab_u16(a, o->flags);
	}

	ab_u8(a, 4);  /* Local APIC NMI: all processors, LINT1 */
	ab_u8(a, 6);
	ab_u8(a, 0xff);
	ab_u16(a, 0);
	ab_u8(a, 1);

	table_finish(a, start);
}

/* FADT (5.2.9), revision 6.5 layout, full (not hardware-reduced) ACPI. */
static void build_fadt(struct abuf *a, const struct acpi_fixed_hw *f, uint32_t facs,
		       uint32_t dsdt)
{
	size_t start = a->len;
	table_header(a, "FACP", 6);
	ab_u32(a, facs);                 /* 36 FIRMWARE_CTRL */
	ab_u32(a, dsdt);                 /* 40 DSDT */
	ab_u8(a, 0);                     /* 44 reserved */
	ab_u8(a, 0);                     /* 45 Preferred_PM_Profile: unspecified */
	ab_u16(a, f->sci);               /* 46 SCI_INT */
	ab_u32(a, 0);                    /* 48 SMI_CMD: ACPI always enabled */
	ab_u8(a, 0);                     /* 52 ACPI_ENABLE */
	ab_u8(a, 0);                     /* 53 ACPI_DISABLE */
	ab_u8(a, 0);                     /* 54 S4BIOS_REQ */
	ab_u8(a, 0);                     /* 55 PSTATE_CNT */
	ab_u32(a, f->pm1a_evt);          /* 56 PM1a_EVT_BLK */
	ab_u32(a, 0);                    /* 60 PM1b_EVT_BLK */
	ab_u32(a, f->pm1a_cnt);          /* 64 PM1a_CNT_BLK */
	ab_u32(a, 0);                    /* 68 PM1b_CNT_BLK */
	ab_u32(a, 0);                    /* 72 PM2_CNT_BLK */
	ab_u32(a, 0);                    /* 76 PM_TMR_BLK: none */
	ab_u32(a, 0);                    /* 80 GPE0_BLK */
	ab_u32(a, 0);                    /* 84 GPE1_BLK */
	ab_u8(a, f->pm1_evt_len);        /* 88 PM1_EVT_LEN */
	ab_u8(a, f->pm1_cnt_len);        /* 89 PM1_CNT_LEN */
	ab_u8(a, 0);                     /* 90 PM2_CNT_LEN */
	ab_u8(a, 0);                     /* 91 PM_TMR_LEN */
	ab_u8(a, 0);                     /* 92 GPE0_BLK_LEN */
	ab_u8(a, 0);                     /* 93 GPE1_BLK_LEN */
	ab_u8(a, 0);                     /* 94 GPE1_BASE */
	ab_u8(a, 0);                     /* 95 CST_CNT */
	ab_u16(a, 101);                  /* 96 P_LVL2_LAT: > 100, C2 unsupported */
	ab_u16(a, 1001);                 /* 98 P_LVL3_LAT: > 1000, C3 unsupported */
	ab_u16(a, 0);                    /* 100 FLUSH_SIZE */
	ab_u16(a, 0);                    /* 102 FLUSH_STRIDE */
	ab_u8(a, 0);                     /* 104 DUTY_OFFSET */
	ab_u8(a, 0);                     /* 105 DUTY_WIDTH */
	ab_u8(a, 0);                     /* 106 DAY_ALRM */
	ab_u8(a, 0);                     /* 107 MON_ALRM */
	ab_u8(a, 0x32);                  /* 108 CENTURY: CMOS index of the century */
	/* 109 IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042 | VGA not present; the CMOS
	 * RTC is present (bit 5 clear), MSI works (bit 3 clear) */
	ab_u16(a, (1u << 0) | (1u << 1) | (1u << 2));
	ab_u8(a, 0);                     /* 111 reserved */
	/* 112 Flags: WBINVD, PROC_C1, SLP_BUTTON (none), FIX_RTC (no RTC
	 * wake status), RESET_REG_SUP; power button is the fixed feature */
	ab_u32(a, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 10));
	gas_io(a, f->reset_port, 8, 1);  /* 116 RESET_REG */
	ab_u8(a, f->reset_value);        /* 128 RESET_VALUE */
	ab_u16(a, 0);                    /* 129 ARM_BOOT_ARCH */
	ab_u8(a, 5);                     /* 131 FADT minor version */
	ab_u64(a, 0);                    /* 132 X_FIRMWARE_CTRL: 0, FIRMWARE_CTRL is set (5.2.9) */
	ab_u64(a, dsdt);                 /* 140 X_DSDT */
	gas_io(a, f->pm1a_evt, (uint8_t)(f->pm1_evt_len * 8), 2); /* 148 X_PM1a_EVT_BLK */
	gas_io(a, 0, 0, 0);              /* 160 X_PM1b_EVT_BLK */
	gas_io(a, f->pm1a_cnt, (uint8_t)(f->pm1_cnt_len * 8), 2); /* 172 X_PM1a_CNT_BLK */
	gas_io(a, 0, 0, 0);              /* 184 X_PM1b_CNT_BLK */
	gas_io(a, 0, 0, 0);              /* 196 X_PM2_CNT_BLK */
	gas_io(a, 0, 0, 0);              /* 208 X_PM_TMR_BLK */
	gas_io(a, 0, 0, 0);              /* 220 X_GPE0_BLK */
	gas_io(a, 0, 0, 0);              /* 232 X_GPE1_BLK */
	gas_io(a, 0, 0, 0);              /* 244 SLEEP_CONTROL_REG */
	gas_io(a, 0, 0, 0);              /* 256 SLEEP_STATUS_REG */
	ab_put(a, "KVMRUN\0\0", 8);      /* 268 Hypervisor Vendor Identity */
	table_finish(a, start);
}

static void build_facs(struct abuf *a)
{
	ab_put(a, "FACS", 4);
	ab_u32(a, FACS_LEN);
	ab_u32(a, 0);     /* hardware signature */
	ab_u32(a, 0);     /* firmware waking vector: S3 unsupported */
	ab_u32(a, 0);     /* global lock */
	ab_u32(a, 0);     /* flags */
	ab_u64(a, 0);     /* X firmware waking vector */
	ab_u8(a, 2);      /* version */
	ab_put(a, "\0\0\0", 3);
	ab_u32(a, 0);     /* OSPM flags */
	for (unsigned i = 0; i < 24; i++)
		ab_u8(a, 0);
}

static void build_sdt(struct abuf *a, const char *sig, const uint64_t *tables,
		      unsigned n, bool wide)
{
	size_t start = a->len;
	table_header(a, sig, 1);
	for (unsigned i = 0; i < n; i++) {
		if (wide)
			ab_u64(a, tables[i]);
		else
			ab_u32(a, (uint32_t)tables[i]);
	}
	table_finish(a, start);
}

static bool bad_device(const struct acpi_device *d)
{
	return !d->name || !d->hid || d->nr_io > ACPI_DEVICE_MAX_IO || d->irq >= 16;
}

/* True if what the board described cannot be encoded. */
static bool check_board(const struct acpi_params *p)
{
	if (p->nr_devices > ACPI_MAX_DEVICES || p->nr_overrides > ACPI_MAX_OVERRIDES)
		return true;
	for (unsigned i = 0; i < p->nr_devices; i++)
		if (bad_device(&p->devices[i]))
			return true;
	for (unsigned i = 0; i < p->nr_overrides; i++)
		if (p->overrides[i].gsi >= ACPI_IOAPIC_PINS)
			return true;
	return p->pci && (p->pci_host.nr_slots < 2 || p->pci_host.nr_slots > ACPI_PCI_MAX_SLOTS);
}

static int check_params(const struct acpi_params *p, uint64_t gpa, uint64_t max_len)
{
	if (p->nr_cpus == 0 || p->nr_cpus > ACPI_MAX_CPUS || !p->apic_ids)
		return -EINVAL;
	for (unsigned i = 0; i < p->nr_cpus; i++) {
		if (p->apic_ids[i] == 0xffffffffu)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (p->apic_ids[i] == p->apic_ids[j])
				return -EINVAL;
	}
	if (check_board(p))
		return -EINVAL;
	if (p->nr_virtio_mmio > ACPI_MAX_VIRTIO_MMIO)
		return -EINVAL;
	for (unsigned i = 0; i < p->nr_virtio_mmio; i++) {
		const struct acpi_virtio_mmio *v = &p->virtio_mmio[i];
		if (v->size == 0 || v->base >= LAYOUT_4G || v->size > LAYOUT_4G - v->base ||
		    v->gsi >= ACPI_IOAPIC_PINS)
			return -EINVAL;
	}
	if (gpa % 16 || gpa >= LAYOUT_4G || max_len > LAYOUT_4G - gpa)
		return -EINVAL;
	return 0;
}

int acpi_build(const struct acpi_params *p, struct guest_mem *m, uint64_t gpa,
	       uint64_t max_len, uint64_t *rsdp_gpa)
{
	int rc = check_params(p, gpa, max_len);
	if (rc)
		return rc;
	if (!gmem_ptr(m, gpa, max_len))
		return -EFAULT;
	/* the tables of 256 CPUs and 32 virtio-mmio slots take ~16 KiB */
	size_t cap = max_len < 0x40000 ? (size_t)max_len : 0x40000;
	uint8_t *buf = calloc(1, cap ? cap : 1);
	if (!buf)
		return -ENOMEM;
	struct abuf a = { .b = buf, .cap = cap };

	/* RSDP (5.2.5), filled once the XSDT address is known */
	size_t rsdp = a.len;
	for (unsigned i = 0; i < 36; i++)
		ab_u8(&a, 0);

	ab_align(&a, 64);
	uint64_t facs = gpa + a.len;
	build_facs(&a);

	ab_align(&a, 16);
	uint64_t dsdt = gpa + a.len;
	build_dsdt(&a, p);

	ab_align(&a, 16);
	uint64_t fadt = gpa + a.len;
	build_fadt(&a, &p->fixed, (uint32_t)facs, (uint32_t)dsdt);

	ab_align(&a, 16);
	uint64_t madt = gpa + a.len;
	build_madt(&a, p);

	const uint64_t tables[] = { fadt, madt };
	ab_align(&a, 16);
	uint64_t rsdt = gpa + a.len;
	build_sdt(&a, "RSDT", tables, 2, false);
	ab_align(&a, 16);
	uint64_t xsdt = gpa + a.len;
	build_sdt(&a, "XSDT", tables, 2, true);

	if (a.overflow) {
		free(buf);
		return -ENOSPC;
	}

	uint8_t *r = buf + rsdp;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2;                          /* revision: ACPI 2.0+ */
	put_le32(r + 16, (uint32_t)rsdt);
	put_le32(r + 20, 36);               /* length */
	put_le32(r + 24, (uint32_t)xsdt);
	put_le32(r + 28, (uint32_t)(xsdt >> 32));
	r[8] = checksum(r, 20);
	r[32] = checksum(r, 36);

	rc = gmem_write(m, gpa, buf, a.len);
	free(buf);
	if (rc)
		return rc;
	*rsdp_gpa = gpa + rsdp;
	return 0;
}
