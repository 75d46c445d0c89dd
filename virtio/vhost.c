#include "virtio/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

uint64_t vhost_offer_mask(uint64_t offer, uint64_t ring_features, uint64_t vhost)
{
	return offer & ~(ring_features & ~vhost);
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

static int set_mem_table(struct vhost *v, const struct guest_mem *m)
{
	struct vhost_memory *t = calloc(1, sizeof(*t) + m->nr_regions * sizeof(t->regions[0]));
	if (!t)
		return -ENOMEM;
	vhost_mem_table(m, t);
	int rc = ioctl(v->fd, VHOST_SET_MEM_TABLE, t) < 0 ? -errno : 0;
	free(t);
	return rc;
}

int vhost_open(struct vhost *v, const char *path, const struct guest_mem *m, const char **what)
{
	const char *step = "open";
	*v = (struct vhost){ .fd = open(path, O_RDWR | O_CLOEXEC) };
	int rc = v->fd < 0 ? -errno : 0;
	if (rc == 0) {
		step = "VHOST_SET_OWNER";
		rc = ioctl(v->fd, VHOST_SET_OWNER, NULL) < 0 ? -errno : 0;
	}
	if (rc == 0) {
		step = "VHOST_GET_FEATURES";
		rc = ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0 ? -errno : 0;
	}
	if (rc == 0) {
		step = "VHOST_SET_MEM_TABLE";
		rc = set_mem_table(v, m);
	}
	if (rc < 0) {
		vhost_close(v);
		if (what)
			*what = step;
	}
	return rc;
}

void vhost_close(struct vhost *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	v->running = false;
}

int vhost_set_features(struct vhost *v, uint64_t features)
{
	return ioctl(v->fd, VHOST_SET_FEATURES, &features) < 0 ? -errno : 0;
}

int vhost_set_call(struct vhost *v, unsigned ring, int call_fd)
{
	struct vhost_vring_file f = { .index = ring, .fd = call_fd };
	return ioctl(v->fd, VHOST_SET_VRING_CALL, &f) < 0 ? -errno : 0;
}

int vhost_ring_start(struct vhost *v, unsigned i, const struct vhost_ring *r)
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

void vhost_rings_stop(struct vhost *v, unsigned n)
{
	if (v->fd < 0 || !v->running)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct vhost_vring_state s = { .index = i };
		(void)ioctl(v->fd, VHOST_GET_VRING_BASE, &s);
		struct vhost_vring_file f = { .index = i, .fd = -1 };
		(void)ioctl(v->fd, VHOST_SET_VRING_KICK, &f);
		(void)ioctl(v->fd, VHOST_SET_VRING_CALL, &f);
	}
	v->running = false;
}
