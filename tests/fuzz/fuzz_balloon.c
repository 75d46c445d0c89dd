/* libFuzzer target for virtio-balloon (virtio/balloon.c): a hostile driver
 * (fuzz_driver.h) fills the inflate, deflate, stats and free-page-reporting
 * queues with buffers of its choosing (page numbers anywhere, in the RAM
 * gap or past the end, repeated, split across descriptors), while the host
 * sets targets and reads the device's state. Guest RAM has a gap between
 * its two regions, so a page number in the gap is a bad one.
 *
 * Input:
 *   0..7   the features the driver asks for (masked by what the device
 *          offers unless byte 8 bit 0 is set)
 *   8      bit 0 unmasked features, bit 1 2 MiB backing pages (else 4 KiB),
 *          bit 2 offer stats, bit 3 deflate-on-oom, bit 4 free page
 *          reporting, bit 5 every discard fails with EIO
 *   9..    fuzz_driver ops; the device's kinds:
 *          DEV_A  the host sets the target to len pages (may exceed RAM)
 *          DEV_B  the host reads the state (virtio_balloon_get)
 *          DEV_C  flags bit 0: the driver reads config space; else it
 *                 writes len at offset aux % 20 (only `actual` is its)
 *
 * Invariants (abort on violation): no crash or sanitizer report; every
 * discard is a whole number of backing pages, aligned, inside one RAM
 * region; the device never holds more than all of RAM as inflated, never
 * more discarded than inflated (free page reports aside), and never a
 * target above RAM; set_target refuses exactly the targets above RAM. */
#include <errno.h>
#include <string.h>

#include "fuzz_driver.h"
#include "virtio/balloon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz_balloon"
#define CHECK(c) FDRV_CHECK(NAME, c)
#define HDR 9u

struct fz {
	struct fdrv drv;
	struct virtio_balloon *b;
	uint64_t page_size;
	bool fail_discards;
	uint64_t discards;
};

static int fake_discard(void *cookie, uint64_t gpa, uint64_t len)
{
	struct fz *f = cookie;
	CHECK(len > 0 && len % f->page_size == 0 && gpa % f->page_size == 0);
	CHECK(gmem_find(&f->drv.mem, gpa, len) != NULL);
	f->discards++;
	return f->fail_discards ? -EIO : 0;
}

static void check_state(struct fz *f)
{
	struct virtio_balloon_info i;
	virtio_balloon_get(f->b, &i);
	uint64_t ram = gmem_total(&f->drv.mem);
	CHECK(i.inflated <= ram && i.inflated % VIRTIO_BALLOON_PAGE_SIZE == 0);
	CHECK(i.discarded <= i.inflated);
	CHECK(i.target <= ram);
	CHECK(i.stats.unknown <= 256);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f;
	if (size < HDR)
		return 0;
	uint64_t features;
	memcpy(&features, data, 8);
	f.page_size = data[8] & 2 ? 2u << 20 : 4096;
	f.fail_discards = data[8] & 32;
	f.discards = 0;
	fdrv_init(&f.drv, NAME);
	f.drv.mem.page_size = f.page_size;

	struct virtio_balloon_params p = {
		.plat = &f.drv.plat, .page_size = f.page_size,
		.discard = fake_discard, .discard_cookie = &f,
		.stats_period = data[8] & 4 ? 1 : 0,
		.deflate_on_oom = data[8] & 8,
		.free_page_reporting = data[8] & 16,
	};
	CHECK(virtio_balloon_create(&p, &f.b) == 0);
	struct virtio_dev *d = virtio_balloon_dev(f.b);
	if (!(data[8] & 1))
		features &= d->host_features;
	fdrv_attach(&f.drv, d, features);

	size_t nr_ops = (size - HDR) / FDRV_OP_SIZE;
	if (nr_ops > FDRV_MAX_OPS)
		nr_ops = FDRV_MAX_OPS;
	for (size_t i = 0; i < nr_ops; i++) {
		struct fdrv_op op = fdrv_decode(data + HDR + i * FDRV_OP_SIZE);
		if (fdrv_op(&f.drv, &op))
			continue;
		if (op.kind == FDRV_DEV_A) {
			uint64_t bytes = (uint64_t)op.len << 12;
			int rc = virtio_balloon_set_target(f.b, bytes);
			CHECK(rc == (bytes > gmem_total(&f.drv.mem) ? -ERANGE : 0));
			fdrv_pump(&f.drv);
		} else if (op.kind == FDRV_DEV_B) {
			check_state(&f);
		} else if (op.flags & 1) {
			struct virtio_balloon_config cfg;
			pthread_mutex_lock(&d->lock);
			virtio_dev_config_read(d, 0, &cfg, sizeof(cfg));
			pthread_mutex_unlock(&d->lock);
			CHECK((uint64_t)cfg.num_pages << 12 <= gmem_total(&f.drv.mem));
		} else {
			pthread_mutex_lock(&d->lock);
			virtio_dev_config_write(d, op.aux % 20, &op.len, 4);
			pthread_mutex_unlock(&d->lock);
		}
	}
	fdrv_pump(&f.drv);
	check_state(&f);
	d->tops = NULL;
	d->transport = NULL;
	virtio_balloon_destroy(f.b);
	fdrv_fini(&f.drv);
	return 0;
}
