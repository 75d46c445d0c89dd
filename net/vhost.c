#include "net/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

uint64_t vhost_offer_mask(uint64_t offer, uint64_t vhost)
{
	return offer & ~(VHOST_NET_RING_FEATURES & ~vhost);
}

uint64_t vhost_features_for(uint64_t guest)
{
	/* The tap carries the 12-byte header itself (TUNSETVNETHDRSZ), so
	 * VHOST_NET_F_VIRTIO_NET_HDR stays off: vhost passes headers through
	 * and fills num_buffers for merged buffers. */
	return guest & VHOST_NET_RING_FEATURES;
}

unsigned vhost_mem_table(const struct guest_mem *m, struct vhost_memory *out)
{
	out->nregions = m->nr_regions;
	out->padding = 0;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->regions[i];
		out->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
	}
	return m->nr_regions;
}

int vhost_open(struct vhost *v, const struct guest_mem *m)
{
	v->running = false;
	v->fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (v->fd < 0)
		return -errno;
	struct vhost_memory *table = calloc(1, sizeof(*table) +
					     GMEM_MAX_REGIONS * sizeof(table->regions[0]));
	int rc = table ? 0 : -ENOMEM;
	if (rc == 0 && ioctl(v->fd, VHOST_SET_OWNER, NULL) < 0)
		rc = -errno;
	if (rc == 0 && ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0)
		rc = -errno;
	if (rc == 0) {
		vhost_mem_table(m, table);
		if (ioctl(v->fd, VHOST_SET_MEM_TABLE, table) < 0)
			rc = -errno;
	}
	free(table);
	if (rc < 0)
		vhost_close(v);
	return rc;
}

void vhost_close(struct vhost *v)
{
	if (v->fd >= 0) {
		vhost_stop(v);
		close(v->fd);
	}
	v->fd = -1;
}

int vhost_set_call(struct vhost *v, unsigned ring, int call_fd)
{
	struct vhost_vring_file f = { .index = ring, .fd = call_fd };
	return ioctl(v->fd, VHOST_SET_VRING_CALL, &f) < 0 ? -errno : 0;
}

static int ring_setup(struct vhost *v, unsigned i, const struct vhost_ring *r)
{
	struct vhost_vring_state num = { .index = i, .num = r->size };
	struct vhost_vring_state base = { .index = i, .num = 0 };
	struct vhost_vring_addr addr = {
		.index = i,
		.desc_user_addr = (uintptr_t)r->desc,
		.avail_user_addr = (uintptr_t)r->avail,
		.used_user_addr = (uintptr_t)r->used,
	};
	struct vhost_vring_file kick = { .index = i, .fd = r->kick_fd };
	struct vhost_vring_file err = { .index = i, .fd = r->err_fd };
	if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
	    ioctl(v->fd, VHOST_SET_VRING_ERR, &err) < 0)
		return -errno;
	return vhost_set_call(v, i, r->call_fd);
}

int vhost_start(struct vhost *v, uint64_t features, const struct vhost_ring rings[2],
		int tap_fd)
{
	if (v->fd < 0)
		return -EBADF;
	vhost_stop(v);
	uint64_t f = vhost_features_for(features);
	if (ioctl(v->fd, VHOST_SET_FEATURES, &f) < 0)
		return -errno;
	for (unsigned i = 0; i < 2; i++) {
		int rc = ring_setup(v, i, &rings[i]);
		if (rc < 0)
			return rc;
	}
	v->running = true; /* from here on, stop undoes what took */
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file b = { .index = i, .fd = tap_fd };
		if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &b) < 0) {
			int e = errno;
			vhost_stop(v);
			return -e;
		}
	}
	return 0;
}

int vhost_set_backend(struct vhost *v, int tap_fd)
{
	if (v->fd < 0 || !v->running)
		return -EBADF;
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file b = { .index = i, .fd = tap_fd };
		if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &b) < 0)
			return -errno;
	}
	return 0;
}

void vhost_stop(struct vhost *v)
{
	if (v->fd < 0 || !v->running)
		return;
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file b = { .index = i, .fd = -1 };
		(void)ioctl(v->fd, VHOST_NET_SET_BACKEND, &b);
	}
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_state s = { .index = i };
		(void)ioctl(v->fd, VHOST_GET_VRING_BASE, &s);
		struct vhost_vring_file k = { .index = i, .fd = -1 };
		(void)ioctl(v->fd, VHOST_SET_VRING_KICK, &k);
		(void)ioctl(v->fd, VHOST_SET_VRING_CALL, &k);
	}
	v->running = false;
}
