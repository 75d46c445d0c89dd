/* MSI-X of the virtio-pci transport (PCI Local Bus 3.0, 6.8.2; virtio
 * 4.1.5.1.2): one vector per queue plus one for configuration changes.
 * Each vector is an eventfd bound with plat->irqfd to a GSI of its own;
 * the GSI is routed to the table entry's message when the vector is
 * unmasked or fires, and only if the message changed since the last
 * route. The table and PBA live in BAR0 (virtio/pci.h). */
#include "virtio/pci_msix.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/le.h"

uint16_t msix_control(const struct msix *m)
{
	return m->cap ? le16_get(m->cap + 2) : 0;
}

bool msix_enabled(const struct msix *m)
{
	return msix_control(m) & MSIX_CTRL_ENABLE;
}

static bool vector_masked(const struct msix *m, unsigned v)
{
	return (msix_control(m) & MSIX_CTRL_MASKALL) ||
	       (m->table[v * MSIX_ENTRY_SIZE + 12] & MSIX_ENTRY_MASKED);
}

static bool vector_pending(const struct msix *m, unsigned v)
{
	return m->pba[v / 64] & (1ull << (v % 64));
}

/* Points the vector's GSI at its table entry's message if that changed. */
static void vector_route(struct msix *m, unsigned v)
{
	const struct virtio_platform *p = m->d->plat;
	struct msix_vec *mv = &m->vec[v];
	const uint8_t *e = &m->table[v * MSIX_ENTRY_SIZE];
	uint64_t addr = le32_get(e) | (uint64_t)le32_get(e + 4) << 32;
	uint32_t data = le32_get(e + 8);
	if (!mv->gsi_ok || !p->msi_route || (mv->routed && mv->addr == addr && mv->data == data))
		return;
	int rc = p->msi_route(p->cookie, mv->gsi, addr, data);
	if (rc < 0) {
		log_ratelimited(p->log, &m->d->rl, m->d->name, "routing MSI-X vector %u: %s", v,
				strerror(-rc));
		mv->routed = false;
		return;
	}
	mv->routed = true;
	mv->addr = addr;
	mv->data = data;
}

void msix_fire(struct msix *m, unsigned v)
{
	if (v >= m->nr_vectors)
		return; /* NO_VECTOR: 4.1.5.3/4.1.5.4 no notification */
	if (vector_masked(m, v)) {
		m->pba[v / 64] |= 1ull << (v % 64);
		return;
	}
	vector_route(m, v);
	virtio_dev_signal_fd(m->d, m->vec[v].fd, "raising an MSI-X interrupt");
}

/* After a table or control change: route an unmasked vector and deliver
 * what became pending while it was masked. */
static void vector_sync(struct msix *m, unsigned v)
{
	if (!msix_enabled(m) || vector_masked(m, v))
		return;
	vector_route(m, v);
	if (vector_pending(m, v)) {
		m->pba[v / 64] &= ~(1ull << (v % 64));
		virtio_dev_signal_fd(m->d, m->vec[v].fd, "raising an MSI-X interrupt");
	}
}

void msix_sync_all(struct msix *m)
{
	for (unsigned v = 0; v < m->nr_vectors; v++)
		vector_sync(m, v);
}

int msix_direct_fd(struct msix *m, unsigned v)
{
	if (!msix_enabled(m) || v >= m->nr_vectors || vector_masked(m, v) ||
	    !m->vec[v].irqfd_on)
		return -1;
	vector_route(m, v);
	return m->vec[v].routed ? m->vec[v].fd : -1;
}

/* [off, off + len) lies within [base, base + size). */
static bool inside(uint64_t off, unsigned len, uint64_t base, uint64_t size)
{
	return off >= base && off - base + len <= size;
}

static unsigned table_size(const struct msix *m)
{
	return m->nr_vectors * MSIX_ENTRY_SIZE;
}

static unsigned pba_size(const struct msix *m)
{
	return (m->nr_vectors + 63) / 64 * 8;
}

bool msix_bar_read(struct msix *m, uint64_t off, void *data, unsigned len)
{
	if (inside(off, len, m->table_off, table_size(m)))
		memcpy(data, &m->table[off - m->table_off], len);
	else if (inside(off, len, m->pba_off, pba_size(m)))
		memcpy(data, (const uint8_t *)m->pba + (off - m->pba_off), len);
	else
		return false;
	return true;
}

/* The PBA is read-only: a write there is swallowed like one to a gap. */
bool msix_bar_write(struct msix *m, uint64_t off, const void *data, unsigned len)
{
	if (!inside(off, len, m->table_off, table_size(m)))
		return false;
	unsigned at = (unsigned)(off - m->table_off);
	const uint8_t *v = data;
	for (unsigned i = 0; i < len; i++) {
		unsigned b = at + i, field = b % MSIX_ENTRY_SIZE;
		uint8_t val = v[i];
		if (field == 0)
			val &= 0xfc; /* Message Address is dword aligned */
		else if (field == 12)
			val &= MSIX_ENTRY_MASKED;
		else if (field > 12)
			val = 0; /* Vector Control reserved bits */
		m->table[b] = val;
	}
	for (unsigned e = at / MSIX_ENTRY_SIZE; e <= (at + len - 1) / MSIX_ENTRY_SIZE; e++)
		vector_sync(m, e);
	return true;
}

void msix_reset(struct msix *m)
{
	memset(m->table, 0, sizeof(m->table));
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		m->table[v * MSIX_ENTRY_SIZE + 12] = MSIX_ENTRY_MASKED;
		m->vec[v].routed = false;
	}
	memset(m->pba, 0, sizeof(m->pba));
	if (m->cap)
		m->cap[3] = 0; /* disabled, function not masked */
}

int msix_wire(struct msix *m)
{
	const struct virtio_platform *p = m->d->plat;
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		struct msix_vec *mv = &m->vec[v];
		mv->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (mv->fd < 0)
			return -errno;
		if (!p->msi_alloc || !p->irqfd)
			continue; /* no MSI routing: interrupts go nowhere */
		int rc = p->msi_alloc(p->cookie, &mv->gsi);
		if (rc < 0)
			return rc;
		mv->gsi_ok = true;
		rc = p->irqfd(p->cookie, mv->fd, mv->gsi, -1, true);
		if (rc < 0)
			return rc;
		mv->irqfd_on = true;
	}
	return 0;
}

void msix_unwire(struct msix *m)
{
	const struct virtio_platform *p = m->d->plat;
	for (unsigned v = 0; v < m->nr_vectors; v++) {
		struct msix_vec *mv = &m->vec[v];
		if (mv->irqfd_on)
			p->irqfd(p->cookie, mv->fd, mv->gsi, -1, false);
		if (mv->gsi_ok && p->msi_free)
			p->msi_free(p->cookie, mv->gsi);
		if (mv->fd >= 0)
			close(mv->fd);
		*mv = (struct msix_vec){ .fd = -1 };
	}
}
