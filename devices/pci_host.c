#include "devices/le.h"
#include "devices/pci_host.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


/* Configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): enable bit,
 * then bus 23:16, device 15:11, function 10:8, register 7:2. */
/* 0xcf9, the PC's reset control register, lies inside 0xcf8-0xcff */
#define CF9_OFF 1

#define CONF1_ENABLE    0x80000000u
#define CONF1_ADDR_MASK 0x80fffffcu

#define HOST_BRIDGE_VENDOR 0x8086
#define HOST_BRIDGE_DEVICE 0x29c0
#define HOST_BRIDGE_CLASS  0x060000

#define BAR_MIN_ALIGN 0x1000u
#define BAR_ADDR_MASK 0xfffffff0u /* memory BAR: bits 3:0 are type flags */

/* Command bits the guest may change; I/O space is hardwired off (no I/O
 * BARs). Memory, bus master, parity, SERR, interrupt disable. */
#define COMMAND_WMASK (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | (1u << 6) | (1u << 8) | \
		       PCI_COMMAND_INTX_DISABLE)

struct pci_fn {
	bool present;
	const char *name;
	const struct pci_function_ops *ops;
	void *cookie;
	uint32_t bar_size[PCI_HOST_BARS];
	/* under cfg_lock */
	uint8_t hdr[PCI_CFG_HEADER_END];
	uint8_t wmask[PCI_CFG_HEADER_END];
	uint8_t power_on[PCI_CFG_HEADER_END];
	/* under map_lock */
	uint64_t bar_addr[PCI_HOST_BARS];
	bool decoded[PCI_HOST_BARS];
	/* lock-free mirrors */
	_Atomic uint16_t command;
	atomic_bool intx;
};

struct pci_host {
	const struct logger *log;
	void (*cf9_write)(void *cookie, uint8_t value);
	void *cf9_cookie;
	pthread_mutex_t cfg_lock;   /* address register, headers, add/reset */
	pthread_rwlock_t map_lock;  /* decoded BAR table */
	uint32_t address;
	uint64_t window_base, window_size;
	uint64_t next_bar;          /* allocator (set-up only) */
	struct pci_fn fn[PCI_HOST_SLOTS];
};





/* Recomputes which BARs of @f decode where and tells the function about
 * changes. Called with cfg_lock held; takes map_lock for writing. */
static void fn_update_decode(struct pci_host *h, struct pci_fn *f)
{
	uint16_t cmd = le16_get(&f->hdr[PCI_CFG_COMMAND]);
	atomic_store(&f->command, cmd);
	pthread_rwlock_wrlock(&h->map_lock);
	for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
		uint64_t size = f->bar_size[b];
		if (!size)
			continue;
		uint64_t addr = le32_get(&f->hdr[PCI_CFG_BAR0 + 4 * b]) & BAR_ADDR_MASK;
		bool dec = (cmd & PCI_COMMAND_MEMORY) && addr >= h->window_base &&
			   addr + size <= h->window_base + h->window_size;
		if (dec == f->decoded[b] && (!dec || addr == f->bar_addr[b]))
			continue;
		f->decoded[b] = dec;
		f->bar_addr[b] = addr;
		if (f->ops && f->ops->bar_remap)
			f->ops->bar_remap(f->cookie, b, addr, dec);
	}
	pthread_rwlock_unlock(&h->map_lock);
}

static struct pci_fn *addressed_fn(struct pci_host *h)
{
	uint32_t a = h->address;
	if (!(a & CONF1_ENABLE))
		return NULL;
	unsigned bus = (a >> 16) & 0xff, dev = (a >> 11) & 0x1f, func = (a >> 8) & 7;
	if (bus != 0 || func != 0 || !h->fn[dev].present)
		return NULL;
	return &h->fn[dev];
}

/* A data-port access of @len bytes at byte @o of the addressed dword
 * (the bus keeps it within 0xcfc-0xcff: o + len <= 4); cfg_lock held. */
static void cfg_data_read(struct pci_host *h, unsigned o, void *data, unsigned len)
{
	struct pci_fn *f = addressed_fn(h);
	unsigned reg = (h->address & 0xfc) + o;
	if (!f || o > 3 || len > 4 - o) {
		memset(data, 0xff, len);
		return;
	}
	if (reg >= PCI_CFG_HEADER_END) {
		if (f->ops && f->ops->cfg_read)
			f->ops->cfg_read(f->cookie, reg, data, len);
		else
			memset(data, 0, len);
		return;
	}
	memcpy(data, &f->hdr[reg], len);
	if (reg <= PCI_CFG_STATUS && PCI_CFG_STATUS < reg + len && atomic_load(&f->intx))
		((uint8_t *)data)[PCI_CFG_STATUS - reg] |= PCI_STATUS_INTERRUPT;
}

static void cfg_data_write(struct pci_host *h, unsigned o, const void *data, unsigned len)
{
	struct pci_fn *f = addressed_fn(h);
	unsigned reg = (h->address & 0xfc) + o;
	if (!f || o > 3 || len > 4 - o)
		return;
	if (reg >= PCI_CFG_HEADER_END) {
		if (f->ops && f->ops->cfg_write)
			f->ops->cfg_write(f->cookie, reg, data, len);
		return;
	}
	const uint8_t *v = data;
	bool remap = false;
	for (unsigned i = 0; i < len; i++) {
		unsigned r = reg + i;
		f->hdr[r] = (uint8_t)((f->hdr[r] & ~f->wmask[r]) | (v[i] & f->wmask[r]));
		if ((r >= PCI_CFG_BAR0 && r < PCI_CFG_BAR0 + 4 * PCI_HOST_BARS) ||
		    r == PCI_CFG_COMMAND || r == PCI_CFG_COMMAND + 1)
			remap = true;
	}
	if (!remap)
		return;
	/* Sizing (PCI 3.0, 6.2.5.1): the bits below the size read as zero, so
	 * writing all-ones reads back the size mask. */
	for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
		if (!f->bar_size[b])
			continue;
		uint8_t *p = &f->hdr[PCI_CFG_BAR0 + 4 * b];
		le32_put(p, le32_get(p) & ~(f->bar_size[b] - 1) & BAR_ADDR_MASK);
	}
	fn_update_decode(h, f);
}

static void conf_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct pci_host *h = cookie;
	if (off >= 4) {
		pthread_mutex_lock(&h->cfg_lock);
		cfg_data_read(h, (unsigned)off - 4, data, len);
		pthread_mutex_unlock(&h->cfg_lock);
	} else if (off == 0 && len == 4) {
		pthread_mutex_lock(&h->cfg_lock);
		uint32_t a = h->address;
		pthread_mutex_unlock(&h->cfg_lock);
		memcpy(data, &a, 4);
	} else if (off == CF9_OFF && len == 1) {
		memset(data, 0, 1); /* the reset register reads 0 */
	} else {
		memset(data, 0xff, len); /* byte/word accesses at 0xcf8 are not config */
	}
}

static void conf_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *h = cookie;
	if (off >= 4) {
		pthread_mutex_lock(&h->cfg_lock);
		cfg_data_write(h, (unsigned)off - 4, data, len);
		pthread_mutex_unlock(&h->cfg_lock);
	} else if (off == 0 && len == 4) {
		uint32_t a;
		memcpy(&a, data, 4);
		pthread_mutex_lock(&h->cfg_lock);
		h->address = a & CONF1_ADDR_MASK;
		pthread_mutex_unlock(&h->cfg_lock);
	} else if (off == CF9_OFF && len == 1) {
		if (h->cf9_write)
			h->cf9_write(h->cf9_cookie, *(const uint8_t *)data);
	}
}

static const struct bus_ops conf_ops = { .read = conf_read, .write = conf_write };

/* The BAR covering [addr, addr+len); map_lock held. */
static struct pci_fn *find_bar(struct pci_host *h, uint64_t addr, unsigned len,
			       unsigned *bar, uint64_t *off)
{
	for (unsigned s = 1; s < PCI_HOST_SLOTS; s++) {
		struct pci_fn *f = &h->fn[s];
		if (!f->present)
			continue;
		for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
			if (f->decoded[b] && addr >= f->bar_addr[b] &&
			    addr - f->bar_addr[b] + len <= f->bar_size[b]) {
				*bar = b;
				*off = addr - f->bar_addr[b];
				return f;
			}
		}
	}
	return NULL;
}

static void window_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct pci_host *h = cookie;
	unsigned bar;
	uint64_t boff;
	pthread_rwlock_rdlock(&h->map_lock);
	struct pci_fn *f = find_bar(h, h->window_base + off, len, &bar, &boff);
	if (f)
		f->ops->bar_read(f->cookie, bar, boff, data, len);
	else
		memset(data, 0xff, len);
	pthread_rwlock_unlock(&h->map_lock);
}

static void window_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct pci_host *h = cookie;
	unsigned bar;
	uint64_t boff;
	pthread_rwlock_rdlock(&h->map_lock);
	struct pci_fn *f = find_bar(h, h->window_base + off, len, &bar, &boff);
	if (f)
		f->ops->bar_write(f->cookie, bar, boff, data, len);
	pthread_rwlock_unlock(&h->map_lock);
}

static const struct bus_ops window_ops = { .read = window_read, .write = window_write };

static void fn_init_header(struct pci_fn *f, const struct pci_function_params *p)
{
	uint8_t *c = f->hdr, *w = f->wmask;
	memset(c, 0, PCI_CFG_HEADER_END);
	memset(w, 0, PCI_CFG_HEADER_END);
	le16_put(&c[PCI_CFG_VENDOR_ID], p->vendor_id);
	le16_put(&c[PCI_CFG_DEVICE_ID], p->device_id);
	le16_put(&w[PCI_CFG_COMMAND], COMMAND_WMASK);
	le16_put(&c[PCI_CFG_STATUS], p->cap_ptr ? PCI_STATUS_CAP_LIST : 0);
	c[PCI_CFG_REVISION] = p->revision;
	c[PCI_CFG_CLASS_PROG] = (uint8_t)p->class_code;
	c[PCI_CFG_CLASS_PROG + 1] = (uint8_t)(p->class_code >> 8);
	c[PCI_CFG_CLASS_PROG + 2] = (uint8_t)(p->class_code >> 16);
	w[0x0c] = w[0x0d] = 0xff; /* cache line size, latency timer */
	c[PCI_CFG_HEADER_TYPE] = 0x00; /* type 0, single function */
	le16_put(&c[PCI_CFG_SUBSYS_VENDOR], p->subsys_vendor_id);
	le16_put(&c[PCI_CFG_SUBSYS_ID], p->subsys_id);
	c[PCI_CFG_CAP_PTR] = p->cap_ptr;
	w[PCI_CFG_INT_LINE] = 0xff;
	for (unsigned b = 0; b < PCI_HOST_BARS; b++)
		if (p->bar_size[b])
			le32_put(&w[PCI_CFG_BAR0 + 4 * b], 0xffffffffu);
}

static bool params_valid(const struct pci_host *h, const struct pci_function_params *p,
			 const struct pci_function_ops *ops)
{
	if (p->cap_ptr && (p->cap_ptr < PCI_CFG_HEADER_END || p->cap_ptr % 4))
		return false;
	for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
		uint32_t s = p->bar_size[b];
		if (!s)
			continue;
		if (s < 16 || (s & (s - 1)) || s > h->window_size / 2)
			return false;
		if (!ops || !ops->bar_read || !ops->bar_write)
			return false;
	}
	return true;
}

int pci_host_add_function(struct pci_host *h, const struct pci_function_ops *ops, void *cookie,
			  const struct pci_function_params *p, unsigned *slot)
{
	if (!params_valid(h, p, ops))
		return -EINVAL;
	pthread_mutex_lock(&h->cfg_lock);
	unsigned s = 0;
	while (s < PCI_HOST_SLOTS && h->fn[s].present)
		s++;
	if (s == PCI_HOST_SLOTS) {
		pthread_mutex_unlock(&h->cfg_lock);
		log_err(h->log, "pci", "%s: no free PCI slot", p->name ? p->name : "?");
		return -ENOSPC;
	}
	struct pci_fn *f = &h->fn[s];
	memset(f, 0, sizeof(*f));
	fn_init_header(f, p);
	/* Pre-program the BARs, each naturally aligned, largest first would
	 * pack better; the window is large, so keep the order given. */
	uint64_t next = h->next_bar;
	for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
		uint64_t size = p->bar_size[b];
		if (!size)
			continue;
		uint64_t align = size < BAR_MIN_ALIGN ? BAR_MIN_ALIGN : size;
		uint64_t base = (next + align - 1) & ~(align - 1);
		if (base + size > h->window_base + h->window_size) {
			pthread_mutex_unlock(&h->cfg_lock);
			log_err(h->log, "pci", "%s: PCI MMIO window full", p->name ? p->name : "?");
			return -ENOSPC;
		}
		f->bar_size[b] = (uint32_t)size;
		le32_put(&f->hdr[PCI_CFG_BAR0 + 4 * b], (uint32_t)base);
		next = base + (size < BAR_MIN_ALIGN ? BAR_MIN_ALIGN : size);
	}
	h->next_bar = next;
	if (ops)
		f->hdr[PCI_CFG_INT_LINE] = (uint8_t)pci_host_slot_gsi(s);
	f->hdr[PCI_CFG_INT_PIN] = ops ? 1 : 0; /* INTA# */
	/* as firmware leaves a device it assigned: memory decoding on */
	le16_put(&f->hdr[PCI_CFG_COMMAND], p->bar_size[0] || p->bar_size[1] || p->bar_size[2] ||
		      p->bar_size[3] || p->bar_size[4] || p->bar_size[5] ? PCI_COMMAND_MEMORY : 0);
	memcpy(f->power_on, f->hdr, sizeof(f->hdr));
	f->name = p->name;
	f->ops = ops;
	f->cookie = cookie;
	f->present = true;
	fn_update_decode(h, f);
	pthread_mutex_unlock(&h->cfg_lock);
	*slot = s;
	return 0;
}

int pci_host_create(struct bus *pio, struct bus *mmio, const struct pci_host_params *p,
		    struct pci_host **out)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->log = p->log;
	h->cf9_write = p->cf9_write;
	h->cf9_cookie = p->cf9_cookie;
	h->window_base = p->window_base;
	h->window_size = p->window_size;
	h->next_bar = p->window_base;
	pthread_mutex_init(&h->cfg_lock, NULL);
	pthread_rwlock_init(&h->map_lock, NULL);

	const struct pci_function_params bridge = {
		.name = "host-bridge", .vendor_id = HOST_BRIDGE_VENDOR,
		.device_id = HOST_BRIDGE_DEVICE, .class_code = HOST_BRIDGE_CLASS,
	};
	unsigned slot;
	int rc = pci_host_add_function(h, NULL, NULL, &bridge, &slot);
	if (rc == 0)
		rc = bus_register(pio, p->config_port, PCI_HOST_CONFIG_PORTS, &conf_ops, h, "pci-conf");
	if (rc == 0) {
		rc = bus_register(mmio, p->window_base, p->window_size, &window_ops, h,
				  "pci-mmio");
		if (rc < 0)
			(void)bus_unmap(pio, p->config_port, PCI_HOST_CONFIG_PORTS);
	}
	if (rc < 0) {
		log_err(p->log, "pci", "creating the host bridge: %s", strerror(-rc));
		pci_host_destroy(h);
		return rc;
	}
	*out = h;
	return 0;
}

void pci_host_remove_function(struct pci_host *h, unsigned slot)
{
	if (slot == 0 || slot >= PCI_HOST_SLOTS)
		return;
	pthread_mutex_lock(&h->cfg_lock);
	pthread_rwlock_wrlock(&h->map_lock);
	memset(&h->fn[slot], 0, sizeof(h->fn[slot]));
	pthread_rwlock_unlock(&h->map_lock);
	pthread_mutex_unlock(&h->cfg_lock);
}

void pci_host_set_intx_status(struct pci_host *h, unsigned slot, bool pending)
{
	if (slot < PCI_HOST_SLOTS)
		atomic_store(&h->fn[slot].intx, pending);
}

uint16_t pci_host_command(struct pci_host *h, unsigned slot)
{
	return slot < PCI_HOST_SLOTS ? atomic_load(&h->fn[slot].command) : 0;
}

void pci_host_reset(struct pci_host *h)
{
	pthread_mutex_lock(&h->cfg_lock);
	h->address = 0;
	for (unsigned s = 0; s < PCI_HOST_SLOTS; s++) {
		struct pci_fn *f = &h->fn[s];
		if (!f->present)
			continue;
		memcpy(f->hdr, f->power_on, sizeof(f->hdr));
		fn_update_decode(h, f);
	}
	pthread_mutex_unlock(&h->cfg_lock);
}

void pci_host_destroy(struct pci_host *h)
{
	if (!h)
		return;
	pthread_rwlock_destroy(&h->map_lock);
	pthread_mutex_destroy(&h->cfg_lock);
	free(h);
}

/* --- saved state (see pci_host.h) --- */

void pci_host_save(struct pci_host *h, struct state_w *w)
{
	pthread_mutex_lock(&h->cfg_lock);
	state_put_u32(w, h->address);
	uint8_t n = 0;
	for (unsigned s = 0; s < PCI_HOST_SLOTS; s++)
		n += h->fn[s].present;
	state_put_u8(w, n);
	for (unsigned s = 0; s < PCI_HOST_SLOTS; s++) {
		if (!h->fn[s].present)
			continue;
		state_put_u8(w, (uint8_t)s);
		state_put_bytes(w, h->fn[s].hdr, PCI_CFG_HEADER_END);
	}
	pthread_mutex_unlock(&h->cfg_lock);
}

/* Whether @hdr could be @f's header: read-only bits as created, BARs as
 * the sizing rule leaves them. */
static void check_header(struct state_r *r, const struct pci_fn *f, unsigned slot,
			 const uint8_t *hdr)
{
	for (unsigned i = 0; i < PCI_CFG_HEADER_END; i++) {
		if ((hdr[i] ^ f->power_on[i]) & ~f->wmask[i]) {
			state_fail(r, "slot %u: config byte %#x is %#x, read-only bits say %#x "
				   "(not the device this VM has there)", slot, i, hdr[i],
				   f->power_on[i]);
			return;
		}
	}
	for (unsigned b = 0; b < PCI_HOST_BARS; b++) {
		uint32_t v = le32_get(&hdr[PCI_CFG_BAR0 + 4 * b]);
		if (f->bar_size[b] && (v & ((f->bar_size[b] - 1) | ~BAR_ADDR_MASK)))
			state_fail(r, "slot %u: BAR%u is %#x, not aligned to its size %#x", slot, b,
				   v, f->bar_size[b]);
	}
}

int pci_host_load(struct pci_host *h, struct state_r *r)
{
	uint8_t hdr[PCI_HOST_SLOTS][PCI_CFG_HEADER_END];
	bool seen[PCI_HOST_SLOTS] = { false };
	uint32_t address = state_get_u32(r);
	if (address & ~CONF1_ADDR_MASK)
		state_fail(r, "config address is %#x: bits %#x do not exist", address,
			   address & ~CONF1_ADDR_MASK);
	unsigned n = state_get_u8(r);
	pthread_mutex_lock(&h->cfg_lock);
	for (unsigned i = 0; i < n && !r->failed; i++) {
		unsigned s = state_get_u8(r);
		state_get_bytes(r, hdr[s % PCI_HOST_SLOTS], PCI_CFG_HEADER_END);
		if (r->failed)
			break;
		if (s >= PCI_HOST_SLOTS || !h->fn[s].present || seen[s]) {
			state_fail(r, "slot %u: %s", s, s >= PCI_HOST_SLOTS ? "no such slot" :
				   seen[s] ? "saved twice" : "no function there in this VM");
			break;
		}
		seen[s] = true;
		check_header(r, &h->fn[s], s, hdr[s]);
	}
	for (unsigned s = 0; s < PCI_HOST_SLOTS && !r->failed; s++)
		if (h->fn[s].present && !seen[s])
			state_fail(r, "slot %u (%s) is missing from the snapshot", s,
				   h->fn[s].name ? h->fn[s].name : "?");
	int rc = state_r_finish(r);
	if (rc == 0) {
		h->address = address;
		for (unsigned s = 0; s < PCI_HOST_SLOTS; s++) {
			if (!seen[s])
				continue;
			memcpy(h->fn[s].hdr, hdr[s], PCI_CFG_HEADER_END);
			fn_update_decode(h, &h->fn[s]);
		}
	}
	pthread_mutex_unlock(&h->cfg_lock);
	return rc;
}
