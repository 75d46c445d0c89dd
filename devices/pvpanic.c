#include "devices/pvpanic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pvpanic {
	struct pvpanic_params p;
};

static void pvpanic_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
	*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct pvpanic *d = cookie;
	uint8_t events = *(const uint8_t *)data & (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	if (!events)
		return;
	log_warn(d->p.log, "pvpanic", "the guest reports %s",
		 events & PVPANIC_PANICKED ? "a kernel panic" : "a crash kernel loaded");
	d->p.event(d->p.cookie, events);
}

static const struct bus_ops pvpanic_ops = { .read = pvpanic_read, .write = pvpanic_write };

int pvpanic_create(struct bus *pio, uint16_t port, const struct pvpanic_params *p,
		   struct pvpanic **out)
{
	struct pvpanic *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p = *p;
	int rc = bus_register(pio, port, 1, &pvpanic_ops, d, "pvpanic");
	if (rc < 0) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void pvpanic_destroy(struct pvpanic *d)
{
	free(d);
}
