#include "devices/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *cookie, const char *name)
{
	if (len == 0 || base + len - 1 < base || ops == NULL)
		return -EINVAL;
	if (b->nr_ranges == BUS_MAX_RANGES)
		return -ENOSPC;
	unsigned pos = 0;
	while (pos < b->nr_ranges && b->ranges[pos].base < base)
		pos++;
	/* the neighbours on either side are the only possible overlaps */
	if (pos > 0) {
		const struct bus_range *prev = &b->ranges[pos - 1];
		if (prev->base + prev->len - 1 >= base)
			return -EEXIST;
	}
	if (pos < b->nr_ranges && b->ranges[pos].base <= base + len - 1)
		return -EEXIST;
	memmove(&b->ranges[pos + 1], &b->ranges[pos],
		(b->nr_ranges - pos) * sizeof(b->ranges[0]));
	b->ranges[pos] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .cookie = cookie, .name = name,
	};
	b->nr_ranges++;
	return 0;
}

int bus_unmap(struct bus *b, uint64_t base, uint64_t len)
{
	for (unsigned i = 0; i < b->nr_ranges; i++) {
		if (b->ranges[i].base != base || b->ranges[i].len != len)
			continue;
		memmove(&b->ranges[i], &b->ranges[i + 1],
			(b->nr_ranges - i - 1) * sizeof(b->ranges[0]));
		b->nr_ranges--;
		return 0;
	}
	return -ENOENT;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned len)
{
	unsigned lo = 0, hi = b->nr_ranges;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return (len <= r->len - (addr - r->base)) ? r : NULL;
	}
	return NULL;
}

bool bus_read(const struct bus *b, uint64_t addr, void *data, unsigned len)
{
	const struct bus_range *r = bus_find(b, addr, len);
	if (!r || !r->ops->read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->ops->read(r->cookie, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *b, uint64_t addr, const void *data, unsigned len)
{
	const struct bus_range *r = bus_find(b, addr, len);
	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->cookie, addr - r->base, data, len);
	return true;
}
