/* Saved state of the virtio device core; see device_state.h. */
#include "virtio/device_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void save_queue(const struct virtio_queue *q, struct state_w *w)
{
	state_put_u16(w, q->size);
	state_put_u16(w, q->max_size);
	state_put_bool(w, q->enabled);
	state_put_u64(w, q->desc);
	state_put_u64(w, q->driver);
	state_put_u64(w, q->device);
	state_put_u16(w, q->msix_vector);
	state_put_bool(w, q->vq != NULL);
	if (q->vq) {
		struct vq_indices ix;
		vq_get_indices(q->vq, &ix);
		state_put_u16(w, ix.last_avail);
		state_put_u16(w, ix.used_idx);
		state_put_u32(w, ix.inflight);
	}
}

void virtio_dev_save(struct virtio_dev *d, struct state_w *w)
{
	state_put_u32(w, d->device_id);
	state_put_u32(w, d->nr_queues);
	state_put_u64(w, d->host_features);
	state_put_u8(w, d->status);
	state_put_u8(w, d->isr);
	state_put_u64(w, d->guest_features);
	state_put_u32(w, d->config_generation);
	state_put_u16(w, d->config_msix_vector);
	for (unsigned i = 0; i < d->nr_queues; i++)
		save_queue(&d->queues[i], w);
	if (d->ops->state_save)
		d->ops->state_save(d, w);
}

static uint16_t get_vector(struct state_r *r, unsigned nr_vectors, const char *what,
			   unsigned q)
{
	uint16_t v = state_get_u16(r);
	if (v != VIRTIO_MSI_NO_VECTOR && v >= nr_vectors)
		state_fail(r, "%s %u: MSI-X vector %u, the device has %u", what, q, v,
			   nr_vectors);
	return v;
}

/* The ring placement of a queue with rings, checked as the driver's
 * QueueReady would be (vq_setup on a scratch queue). */
static void check_rings(struct virtio_dev *d, struct state_r *r, unsigned i,
			const struct virtio_queue_state *qs, uint16_t max_size)
{
	uint32_t n = qs->size;
	if (n == 0 || n > max_size || (n & (n - 1))) {
		state_fail(r, "queue %u: size %u is not a power of two up to %u", i, n, max_size);
		return;
	}
	struct vq scratch;
	struct vq_layout l = { .size = n, .desc_gpa = qs->desc, .avail_gpa = qs->driver,
			       .used_gpa = qs->device };
	if (vq_setup(&scratch, d->plat->mem, max_size, &l, 0) < 0)
		state_fail(r, "queue %u: rings at desc 0x%llx, driver 0x%llx, device 0x%llx "
			   "not aligned inside guest RAM", i, (unsigned long long)qs->desc,
			   (unsigned long long)qs->driver, (unsigned long long)qs->device);
	else if (!vq_indices_valid(&qs->ix, n))
		state_fail(r, "queue %u: last_avail %u, used %u and %u in flight disagree "
			   "(size %u)", i, qs->ix.last_avail, qs->ix.used_idx, qs->ix.inflight, n);
}

static void read_queue(struct virtio_dev *d, struct state_r *r, unsigned i, unsigned nr_vectors,
		       uint8_t status, struct virtio_queue_state *qs)
{
	const struct virtio_queue *q = &d->queues[i];
	qs->size = state_get_u16(r);
	uint16_t max = state_get_u16(r);
	qs->enabled = state_get_bool(r);
	qs->desc = state_get_u64(r);
	qs->driver = state_get_u64(r);
	qs->device = state_get_u64(r);
	qs->msix_vector = get_vector(r, nr_vectors, "queue", i);
	qs->has_rings = state_get_bool(r);
	if (qs->has_rings) {
		qs->ix.last_avail = state_get_u16(r);
		qs->ix.used_idx = state_get_u16(r);
		qs->ix.inflight = state_get_u32(r);
	}
	if (r->failed)
		return;
	if (max != q->max_size)
		state_fail(r, "queue %u: max size %u, this device's is %u", i, max, q->max_size);
	else if (qs->enabled && !qs->has_rings)
		state_fail(r, "queue %u: enabled without rings", i);
	else if (qs->has_rings && !(status & VIRTIO_STATUS_FEATURES_OK))
		state_fail(r, "queue %u: has rings before FEATURES_OK (status 0x%x)", i, status);
	else if (qs->has_rings)
		check_rings(d, r, i, qs, q->max_size);
}

/* What virtio_dev_set_status and set_driver_features guarantee: DRIVER_OK
 * only with FEATURES_OK, and FEATURES_OK only over features the device
 * offered and accepted. Before FEATURES_OK the accepted features are just
 * what the driver wrote, and other status bits are the driver's. */
static void check_status(struct virtio_dev *d, struct state_r *r, const struct virtio_dev_state *st)
{
	bool features_ok = st->status & VIRTIO_STATUS_FEATURES_OK;
	if ((st->status & VIRTIO_STATUS_DRIVER_OK) && !features_ok)
		state_fail(r, "status 0x%x: DRIVER_OK without FEATURES_OK", st->status);
	else if (features_ok && (st->guest_features & ~d->host_features))
		state_fail(r, "accepted features 0x%llx: 0x%llx not offered",
			   (unsigned long long)st->guest_features,
			   (unsigned long long)(st->guest_features & ~d->host_features));
	else if (features_ok && (!(st->guest_features >> VIRTIO_F_VERSION_1 & 1) ||
		 (d->ops->features_ok && !d->ops->features_ok(d, st->guest_features))))
		state_fail(r, "accepted features 0x%llx: the device refuses them",
			   (unsigned long long)st->guest_features);
	else if (st->isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
		state_fail(r, "ISR 0x%x: bits that do not exist", st->isr);
}

/* Reads the core's part into @st and checks it (both passes). */
static void read_core(struct virtio_dev *d, struct state_r *r, unsigned nr_vectors,
		      struct virtio_dev_state *st)
{
	memset(st, 0, sizeof(*st));
	uint32_t id = state_get_u32(r), nq = state_get_u32(r);
	uint64_t offered = state_get_u64(r);
	if (!r->failed && (id != d->device_id || nq != d->nr_queues || offered != d->host_features)) {
		state_fail(r, "a device of id %u with %u queues and features 0x%llx; this VM's "
			   "has id %u, %u queues, features 0x%llx", id, nq,
			   (unsigned long long)offered, d->device_id, d->nr_queues,
			   (unsigned long long)d->host_features);
		return;
	}
	st->status = state_get_u8(r);
	st->isr = state_get_u8(r);
	st->guest_features = state_get_u64(r);
	st->config_generation = state_get_u32(r);
	st->config_msix_vector = get_vector(r, nr_vectors, "config", 0);
	st->nr_queues = d->nr_queues;
	if (!r->failed)
		check_status(d, r, st);
	for (unsigned i = 0; i < d->nr_queues && !r->failed; i++)
		read_queue(d, r, i, nr_vectors, st->status, &st->q[i]);
}

void virtio_dev_load_check(struct virtio_dev *d, struct state_r *r, unsigned nr_vectors,
			   struct virtio_dev_state *st)
{
	read_core(d, r, nr_vectors, st);
	if (!r->failed && d->ops->state_load)
		d->ops->state_load(d, r, st, false);
}

/* Makes queue @i what @qs says; its rings were checked by pass 1. */
static int apply_queue(struct virtio_dev *d, unsigned i, const struct virtio_queue_state *qs)
{
	struct virtio_queue *q = &d->queues[i];
	q->size = qs->size;
	q->enabled = qs->enabled;
	q->desc = qs->desc;
	q->driver = qs->driver;
	q->device = qs->device;
	q->msix_vector = qs->msix_vector;
	if (!qs->has_rings)
		return 0;
	struct vq *vq = calloc(1, sizeof(*vq));
	if (!vq)
		return -ENOMEM;
	uint32_t feats = (d->guest_features >> VIRTIO_F_EVENT_IDX & 1 ? VQ_F_EVENT_IDX : 0) |
			 (d->guest_features >> VIRTIO_F_INDIRECT_DESC & 1 ? VQ_F_INDIRECT : 0);
	struct vq_layout l = { .size = qs->size, .desc_gpa = qs->desc, .avail_gpa = qs->driver,
			       .used_gpa = qs->device };
	if (vq_setup(vq, d->plat->mem, q->max_size, &l, feats) < 0 ||
	    vq_set_indices(vq, &qs->ix) < 0) {
		free(vq);
		return -EINVAL; /* not after pass 1 */
	}
	free(q->vq);
	q->vq = vq;
	/* a kick before DRIVER_OK is served at DRIVER_OK (device.c) */
	q->kicked_early = qs->enabled;
	return 0;
}

int virtio_dev_load_apply(struct virtio_dev *d, struct state_r *r, unsigned nr_vectors)
{
	struct virtio_dev_state st;
	read_core(d, r, nr_vectors, &st);
	if (r->failed)
		return -EINVAL;
	d->guest_features = st.guest_features;
	d->status = st.status & (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	d->isr = st.isr;
	d->config_generation = st.config_generation;
	d->config_msix_vector = st.config_msix_vector;
	if ((st.status & VIRTIO_STATUS_FEATURES_OK) && d->ops->features_ok)
		(void)d->ops->features_ok(d, st.guest_features); /* its side of the choice */
	for (unsigned i = 0; i < d->nr_queues; i++) {
		int rc = apply_queue(d, i, &st.q[i]);
		if (rc < 0) {
			state_fail(r, "queue %u: %s", i, strerror(-rc));
			return rc;
		}
	}
	int rc = 0;
	if (st.status & VIRTIO_STATUS_DRIVER_OK) {
		/* as virtio_dev_set_status(DRIVER_OK) does, minus the checks
		 * pass 1 made; a device already in NEEDS_RESET stays stopped */
		d->status = st.status;
		for (unsigned i = 0; i < d->nr_queues; i++)
			d->queues[i].kicked_early = false;
		if (virtio_dev_live(d) && d->ops->activate)
			rc = d->ops->activate(d);
		if (rc < 0)
			virtio_dev_needs_reset(d, "device could not start again after a restore");
	}
	if (d->ops->state_load)
		d->ops->state_load(d, r, &st, true);
	if (virtio_dev_live(d))
		for (unsigned i = 0; i < d->nr_queues; i++)
			if (d->queues[i].enabled)
				virtio_dev_rekick(d, i);
	return rc;
}

int virtio_dev_can_snapshot(struct virtio_dev *d, char *why, size_t len)
{
	const char *no = d->ops->snapshot_refusal ? d->ops->snapshot_refusal(d) : NULL;
	if (!no)
		return 0;
	snprintf(why, len, "%s: %s", d->name, no);
	return -ENOTSUP;
}

void virtio_dev_quiesce(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->quiesced = true;
	if (virtio_dev_live(d) && d->ops->quiesce)
		d->ops->quiesce(d, true);
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_unquiesce(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->quiesced = false;
	if (virtio_dev_live(d) && d->ops->quiesce)
		d->ops->quiesce(d, false);
	for (unsigned i = 0; i < d->nr_queues; i++)
		if (d->queues[i].enabled && d->queues[i].vq)
			virtio_dev_rekick(d, i);
	pthread_mutex_unlock(&d->lock);
}
