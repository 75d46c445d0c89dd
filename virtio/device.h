/* The transport-independent half of a virtio 1.x device (virtio spec 1.2,
 * chapters 2 "Basic Facilities" and 3 "General Initialization"): feature
 * negotiation, the status state machine, queue configuration, interrupts
 * and DEVICE_NEEDS_RESET. Transports (pci.c, mmio.c) map registers onto
 * it; device models (blk.c, balloon.c, net/) supply virtio_dev_ops.
 *
 * Nothing here knows KVM: kicks and interrupts go through the
 * virtio_platform hooks (ioeventfd, irqfd, MSI routes) that the VM fills
 * in, so unit tests run the whole device over a fake platform.
 *
 * Threads and locking: register accesses come from vCPU threads; queue
 * kicks and I/O completions run on the VM's event thread. Both hold
 * dev->lock, so a device callback never races a reset or a
 * reconfiguration. Lock order: dev->lock, then anything the device owns. */
#ifndef KVMRUN_VIRTIO_DEVICE_H
#define KVMRUN_VIRTIO_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "lib/state.h"

/* 2.1 Device Status Field */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* 6 Reserved Feature Bits */
#define VIRTIO_F_INDIRECT_DESC    28
#define VIRTIO_F_EVENT_IDX        29
#define VIRTIO_F_VERSION_1        32
#define VIRTIO_F_ACCESS_PLATFORM  33

/* Interrupt status bits (ISR, InterruptStatus) */
#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_MAX_QUEUES 65

struct vq;
struct virtio_dev;
struct virtio_dev_state;

/* What the VM provides; all return 0 or -errno. */
struct virtio_platform {
	struct guest_mem *mem;
	struct evloop *loop;
	const struct logger *log;
	void *cookie;
	/* KVM_IOEVENTFD: @fd is signalled when the guest writes @len bytes
	 * at MMIO @addr (only those equal to @data when @datamatch). */
	int (*ioeventfd)(void *cookie, int fd, uint64_t addr, unsigned len,
			 bool datamatch, uint64_t data, bool assign);
	/* KVM_IRQFD: writing @fd raises @gsi; with @resample_fd >= 0 the line
	 * is level-triggered and @resample_fd is signalled at the guest's EOI. */
	int (*irqfd)(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign);
	/* A GSI routed to an MSI message (for MSI-X vectors). */
	int (*msi_alloc)(void *cookie, unsigned *gsi);
	int (*msi_route)(void *cookie, unsigned gsi, uint64_t addr, uint32_t data);
	void (*msi_free)(void *cookie, unsigned gsi);
};

/* How the transport raises interrupts; set by the transport. */
struct virtio_transport_ops {
	/* Queue @q has new used buffers (after event-idx suppression). */
	void (*signal_queue)(struct virtio_dev *d, unsigned q);
	/* The config space changed (or NEEDS_RESET was set). */
	void (*signal_config)(struct virtio_dev *d);
	/* Attach/detach the queue's kick eventfd to its notify address. */
	int (*kick_attach)(struct virtio_dev *d, unsigned q, int fd, bool assign);
	/* Optional: the eventfd that raises queue @q's interrupt straight
	 * through KVM (an irqfd: PCI with MSI-X enabled and a vector mapped),
	 * for a backend that signals by itself (vhost's VHOST_SET_VRING_CALL);
	 * -1 (or no op) when there is none (INTx, virtio-mmio): the caller then
	 * relays through signal_queue. Valid until the vector changes, which
	 * the transport reports through virtio_dev_ops.irq_changed. */
	int (*queue_irqfd)(struct virtio_dev *d, unsigned q);
};

struct virtio_dev_ops {
	/* Feature bits the device model offers; the core adds VERSION_1,
	 * EVENT_IDX and INDIRECT_DESC. */
	uint64_t features;
	uint32_t config_size;
	/* Config space access at @off (bounds-checked by the core). */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, unsigned len);
	/* FEATURES_OK was written: return false to refuse the negotiated set. */
	bool (*features_ok)(struct virtio_dev *d, uint64_t features);
	/* DRIVER_OK: the enabled queues are validated and live. -errno to
	 * refuse (the device then asks for a reset). */
	int (*activate)(struct virtio_dev *d);
	/* The guest kicked queue @q (event thread, dev->lock held). */
	void (*notify)(struct virtio_dev *d, unsigned q);
	/* The driver reset the device: quiesce (finish or cancel in-flight
	 * I/O so nothing writes guest memory afterwards) and forget state. */
	void (*reset)(struct virtio_dev *d);
	/* Optional: while DRIVER_OK, a queue's interrupt routing changed (its
	 * MSI-X vector, the table entry or MSI-X enable): re-query
	 * tops->queue_irqfd. dev->lock held, vCPU thread. */
	void (*irq_changed)(struct virtio_dev *d);

	/* Snapshots (virtio/device_state.h); all optional, dev->lock held.
	 * quiesce(d, true), event thread, device live: stop working on its
	 * own (a tap read, a timer) and finish what is in flight into the
	 * used rings, so the device holds nothing a save would miss;
	 * quiesce(d, false): start again (the core then re-kicks every
	 * queue). */
	void (*quiesce)(struct virtio_dev *d, bool on);
	/* Why the device cannot be saved faithfully now, or NULL. */
	const char *(*snapshot_refusal)(struct virtio_dev *d);
	/* The model's own part of the device's saved state, after the
	 * core's. state_load reads it back: with !@apply it only checks it
	 * (against @core, the core state being loaded; no side effects);
	 * with @apply (the same bytes, once checked) it sets it, after the
	 * core state is applied and the device re-activated. */
	void (*state_save)(struct virtio_dev *d, struct state_w *w);
	void (*state_load)(struct virtio_dev *d, struct state_r *r,
			   const struct virtio_dev_state *core, bool apply);
};

struct virtio_queue {
	/* driver-programmed while the queue is not enabled */
	uint16_t size, max_size;
	bool enabled;
	uint64_t desc, driver, device; /* guest-physical ring addresses */
	uint16_t msix_vector;
	/* live state */
	struct virtio_dev *dev;        /* back-pointer for the kick handler */
	struct vq *vq;                 /* set while enabled, until reset */
	int kick_fd;                   /* eventfd the guest's notify signals */
	uint64_t kicks;
	bool kicked_early;             /* kicked while enabled, before DRIVER_OK */
};

struct virtio_dev {
	const char *name;              /* "virtio-blk0", for messages */
	uint32_t device_id;            /* 5 Device Types */
	const struct virtio_dev_ops *ops;
	void *priv;                    /* the device model's state */
	const struct virtio_platform *plat;
	const struct virtio_transport_ops *tops;
	void *transport;

	pthread_mutex_t lock;
	uint64_t host_features;
	uint64_t guest_features;
	uint8_t status;
	uint8_t isr;
	uint32_t config_generation;
	uint16_t config_msix_vector;
	bool quiesced;                 /* kicks are dropped (device_state.h) */
	unsigned nr_queues;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	struct log_ratelimit rl;
};

/* Initialises @d with @nr_queues queues of at most @max_queue_size and
 * creates their kick eventfds (watched on the event loop). */
__attribute__((warn_unused_result))
int virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id,
		    const struct virtio_dev_ops *ops, void *priv,
		    const struct virtio_platform *plat, unsigned nr_queues,
		    uint16_t max_queue_size);
void virtio_dev_uninit(struct virtio_dev *d);

/* Register-level operations the transports call with d->lock held. */
uint32_t virtio_dev_features_word(const struct virtio_dev *d, uint32_t sel);
void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t val);
void virtio_dev_set_status(struct virtio_dev *d, uint8_t status);
void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len);
void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len);
/* Enables queue @q as programmed; false if its configuration is invalid
 * (the device is then put into NEEDS_RESET). */
bool virtio_dev_queue_enable(struct virtio_dev *d, unsigned q);

/* For device models (dev->lock held): signal the driver that queue @q has
 * used buffers, honouring VIRTIO_F_EVENT_IDX / NO_INTERRUPT. */
void virtio_dev_used(struct virtio_dev *d, unsigned q);
/* Signals queue @q's interrupt with no suppression check: for used rings
 * another party filled and already decided to notify about (vhost's call
 * eventfd). dev->lock held. */
void virtio_dev_signal_queue(struct virtio_dev *d, unsigned q);
/* For device models (dev->lock held): queue @q has more work than one
 * notify may do (its budget ran out while the driver kept the ring full):
 * signal the queue's kick eventfd so the event loop calls notify again on
 * its next round, after the other ready file descriptors (signals, timers,
 * the control socket, other queues) had their turn. */
void virtio_dev_rekick(struct virtio_dev *d, unsigned q);
/* The device model hit malformed guest input: log (rate-limited), set
 * DEVICE_NEEDS_RESET, signal a config change, stop processing. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);
/* Config space changed (e.g. balloon target): bump generation, signal. */
void virtio_dev_config_changed(struct virtio_dev *d);
bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit);
bool virtio_dev_live(const struct virtio_dev *d); /* DRIVER_OK, not NEEDS_RESET */

/* Writes 1 to the eventfd @fd (none if negative); a failure is logged,
 * rate-limited, as "@what: error". Any thread. */
void virtio_dev_signal_fd(struct virtio_dev *d, int fd, const char *what);

/* A transport's level-triggered interrupt (virtio-pci INTx, virtio-mmio's
 * line): an eventfd the platform turns into @gsi through an irqfd, and a
 * resample eventfd it signals when the guest acknowledges the line,
 * watched on the event loop. */
struct virtio_intx {
	int fd, resample_fd;
	unsigned gsi;
	bool irqfd_on, watched;
};

/* No eventfds yet: what virtio_intx_unwire may always be called on. */
void virtio_intx_init(struct virtio_intx *x);
/* Creates both eventfds, attaches the irqfd (if the platform has irqfds)
 * and watches the resample fd with @on_resample (if it has a loop).
 * Returns 0 or -errno; virtio_intx_unwire undoes whatever got done. */
__attribute__((warn_unused_result))
int virtio_intx_wire(struct virtio_dev *d, struct virtio_intx *x, unsigned gsi,
		     void (*on_resample)(void *cookie, uint32_t events), void *cookie);
void virtio_intx_unwire(struct virtio_dev *d, struct virtio_intx *x);

#endif
