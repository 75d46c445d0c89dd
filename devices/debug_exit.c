#include "devices/debug_exit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct debug_exit {
	struct debug_exit_params p; /* read-only after create */
};

static void dexit_read(void *cookie, uint64_t offset, void *data, unsigned len)
{
	memset(data, 0xff, len);
}

static void dexit_write(void *cookie, uint64_t offset, const void *data, unsigned len)
{
	struct debug_exit *d = cookie;
	uint32_t v;
	switch (len) {
	case 1: v = *(const uint8_t *)data; break;
	case 2: { uint16_t w; memcpy(&w, data, 2); v = w; break; }
	case 4: memcpy(&v, data, 4); break;
	default: return; /* 8-byte port I/O does not exist */
	}
	uint32_t code = (v << 1) | 1;
	if (d->p.log)
		log_info(d->p.log, "debug-exit", "guest wrote %#x: exit code %u",
			 v, code & 0xff);
	if (d->p.exit)
		d->p.exit(d->p.cookie, (int)code);
}

static const struct bus_ops debug_exit_ops = { .read = dexit_read, .write = dexit_write };

int debug_exit_create(struct bus *pio, uint16_t base,
		      const struct debug_exit_params *p, struct debug_exit **out)
{
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p = *p;
	int err = bus_register(pio, base, DEBUG_EXIT_NR_PORTS, &debug_exit_ops, d,
			       "debug-exit");
	if (err) {
		if (p->log)
			log_err(p->log, "debug-exit", "cannot map port %#x: %s",
				base, strerror(-err));
		free(d);
		return err;
	}
	*out = d;
	return 0;
}

void debug_exit_reset(struct debug_exit *d)
{
	(void)d;
}

void debug_exit_destroy(struct debug_exit *d)
{
	free(d);
}
