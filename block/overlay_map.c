/* The overlay's block map: two bitmaps, see block/overlay_priv.h. */
#include "block/overlay_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int overlay_map_init(struct overlay_map *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->size = size;
	m->nblocks = (size + OVERLAY_BLOCK_SIZE - 1) / OVERLAY_BLOCK_SIZE;
	uint64_t pages = (m->nblocks + OVERLAY_MAP_PAGE_BITS - 1) / OVERLAY_MAP_PAGE_BITS;
	if (pages == 0)
		pages = 1;
	if (pages > SIZE_MAX / OVERLAY_MAP_PAGE)
		return -ENOMEM;
	m->bytes = (size_t)pages * OVERLAY_MAP_PAGE;
	m->touched = calloc(1, m->bytes);
	m->data = calloc(1, m->bytes);
	m->dirty = calloc(1, (size_t)pages);
	if (!m->touched || !m->data || !m->dirty) {
		overlay_map_free(m);
		return -ENOMEM;
	}
	return 0;
}

void overlay_map_free(struct overlay_map *m)
{
	free(m->touched);
	free(m->data);
	free(m->dirty);
	m->touched = m->data = NULL;
	m->dirty = NULL;
}

static bool overlay_map_bit(const uint64_t *bits, uint64_t i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

static void overlay_map_put(uint64_t *bits, uint64_t i, bool v)
{
	uint64_t mask = 1ull << (i % 64);
	if (v)
		bits[i / 64] |= mask;
	else
		bits[i / 64] &= ~mask;
}

bool overlay_map_touched(const struct overlay_map *m, uint64_t block)
{
	return overlay_map_bit(m->touched, block);
}

bool overlay_map_data(const struct overlay_map *m, uint64_t block)
{
	return overlay_map_bit(m->data, block);
}

void overlay_map_set(struct overlay_map *m, uint64_t block, bool touched, bool data)
{
	bool had = overlay_map_bit(m->data, block);
	if (had == data && overlay_map_bit(m->touched, block) == touched)
		return;
	if (had && !data)
		m->used--;
	else if (!had && data)
		m->used++;
	overlay_map_put(m->touched, block, touched);
	overlay_map_put(m->data, block, data);
	m->dirty[block / OVERLAY_MAP_PAGE_BITS] = 1;
}

bool overlay_map_any_touched(const struct overlay_map *m, uint64_t first, uint64_t last)
{
	uint64_t w0 = first / 64, w1 = last / 64;
	uint64_t lo = ~0ull << (first % 64);
	uint64_t hi = ~0ull >> (63 - last % 64);
	if (w0 == w1)
		return m->touched[w0] & lo & hi;
	if (m->touched[w0] & lo)
		return true;
	for (uint64_t w = w0 + 1; w < w1; w++)
		if (m->touched[w])
			return true;
	return m->touched[w1] & hi;
}

void overlay_map_sanitise(struct overlay_map *m)
{
	size_t words = m->bytes / sizeof(uint64_t);
	m->used = 0;
	for (size_t w = 0; w < words; w++) {
		uint64_t valid = ~0ull;
		uint64_t first = (uint64_t)w * 64;
		if (first >= m->nblocks)
			valid = 0;
		else if (m->nblocks - first < 64)
			valid = (1ull << (m->nblocks - first)) - 1;
		m->touched[w] &= valid;
		m->data[w] &= m->touched[w];
		m->used += (uint64_t)__builtin_popcountll(m->data[w]);
	}
	memset(m->dirty, 0, m->bytes / OVERLAY_MAP_PAGE);
}
