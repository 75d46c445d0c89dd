/* The KVM side of virtio: the virtio_platform hooks (ioeventfd, irqfd,
 * MSI routes) every virtio device of this VM uses. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mem/layout.h"
#include "net/net.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "vsock/vsock.h"
#include "lib/exitcode.h"
#include "vmm/vm_priv.h"

/* Each virtio-pci device has a vector per queue and one for its config; the
 * largest config must get a GSI for each, or it passes --check and fails at
 * start (8 disks of 64 queues, 4 nets of 16 pairs and a control queue, a
 * balloon of 4 queues, a vsock of 3). */
_Static_assert(CONFIG_MAX_DISKS * (CONFIG_MAX_CPUS + 1) +
	       CONFIG_MAX_NETS * (2 * NET_MAX_PAIRS + 2) + (4 + 1) + (VSOCK_NR_QUEUES + 1) <=
	       IRQ_ROUTING_MAX_MSI,
	       "IRQ_ROUTING_MAX_MSI must cover every MSI-X vector");

static int hook_ioeventfd(void *cookie, int fd, uint64_t addr, unsigned len,
			  bool datamatch, uint64_t data, bool assign)
{
	struct vm *vm = cookie;
	struct kvm_ioeventfd io = {
		.datamatch = data, .addr = addr, .len = len, .fd = fd,
		.flags = (datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int e = errno;
		log_err(&vm->log, "virtio", "KVM_IOEVENTFD %s at 0x%llx len %u: %s",
			assign ? "assign" : "deassign", (unsigned long long)addr, len, strerror(e));
		return -e;
	}
	return 0;
}

static int hook_irqfd(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign)
{
	struct vm *vm = cookie;
	struct kvm_irqfd irq = { .fd = (uint32_t)fd, .gsi = gsi };
	if (!assign)
		irq.flags = KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		irq.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irq.resamplefd = (uint32_t)resample_fd;
	}
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0) {
		int e = errno;
		log_err(&vm->log, "virtio", "KVM_IRQFD %s gsi %u: %s",
			assign ? "assign" : "deassign", gsi, strerror(e));
		return -e;
	}
	return 0;
}

static int hook_msi_alloc(void *cookie, unsigned *gsi)
{
	struct vm *vm = cookie;
	return irq_routing_alloc(&vm->routing, gsi);
}

static int hook_msi_route(void *cookie, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct vm *vm = cookie;
	return irq_routing_set_msi(&vm->routing, gsi, addr, data);
}

static void hook_msi_free(void *cookie, unsigned gsi)
{
	struct vm *vm = cookie;
	irq_routing_free(&vm->routing, gsi);
}

void vm_virtio_platform_init(struct vm *vm)
{
	vm->vplat = (struct virtio_platform){
		.mem = &vm->ram.mem, .loop = vm->loop, .log = &vm->log, .cookie = vm,
		.ioeventfd = hook_ioeventfd, .irqfd = hook_irqfd,
		.msi_alloc = hook_msi_alloc, .msi_route = hook_msi_route,
		.msi_free = hook_msi_free,
	};
}

/* Gives @d a transport: a PCI function, or the next virtio-mmio slot. */
static int attach_transport(struct vm *vm, struct virtio_dev *d)
{
	if (vm->cfg->transport == TRANSPORT_PCI)
		return vm_virtio_attach_pci(vm, d);
	if (vm->nr_mmio == VM_MAX_VIRTIO) {
		log_err(&vm->log, d->name, "no virtio-mmio slot left");
		return -ENOSPC;
	}
	unsigned slot = vm->nr_mmio;
	uint64_t base = LAYOUT_VIRTIO_MMIO + slot * LAYOUT_VIRTIO_MMIO_SLOT;
	unsigned gsi = GSI_VIRTIO_BASE + slot;
	if (gsi >= IRQ_ROUTING_PINS) {
		log_err(&vm->log, d->name, "no interrupt line left for virtio-mmio slot %u", slot);
		return -ENOSPC;
	}
	int rc = virtio_mmio_create(&vm->mmio, base, gsi, d, &vm->mmio_devs[slot]);
	if (rc < 0)
		return rc;
	vm->mmio_base[slot] = base;
	vm->mmio_gsi[slot] = gsi;
	vm->nr_mmio++;
	return 0;
}

static void disk_serial(const struct vm *vm, unsigned i, char *buf, size_t len)
{
	if (vm->cfg->disks[i].serial)
		snprintf(buf, len, "%s", vm->cfg->disks[i].serial);
	else
		snprintf(buf, len, "%.13s-disk%u", vm->cfg->name ? vm->cfg->name : "kvmrun", i);
}

static int create_disk(struct vm *vm, unsigned i)
{
	const struct disk_config *dc = &vm->cfg->disks[i];
	char serial[21];
	disk_serial(vm, i, serial, sizeof(serial));
	struct virtio_blk_params p = {
		.path = dc->path, .readonly = dc->readonly, .cache = dc->cache, .io = dc->io,
		.submit_batch = dc->submit_batch, .index = i,
		.nr_queues = dc->queues ? dc->queues : vm->cfg->cpus,
		.plat = &vm->vplat, .serial = serial, .metrics = vm->cfg->metrics,
		.iops = dc->iops, .iops_burst = dc->iops_burst,
		.bandwidth = dc->bandwidth, .bandwidth_burst = dc->bandwidth_burst,
		.overlay = { .kind = dc->overlay, .path = dc->overlay_path,
			     .max = dc->overlay_max, .keep = dc->overlay_keep },
	};
	int rc = virtio_blk_create(&p, &vm->disks[i]);
	if (rc == 0)
		rc = attach_transport(vm, virtio_blk_dev(vm->disks[i]));
	return rc;
}

static int create_net(struct vm *vm, unsigned i)
{
	const struct net_config *nc = &vm->cfg->nets[i];
	/* with capabilities dropped, a restart can re-attach a tap that
	 * kvmrun created only if it outlives this VM (see net.h) */
	struct net_params p = {
		.tap = nc->tap, .vhost = nc->vhost, .queues = nc->queues, .mtu = nc->mtu,
		.index = i, .plat = &vm->vplat,
		.persist_tap = vm->cfg->drop_caps && vm->cfg->on_reboot == ON_REBOOT_RESTART,
		.bandwidth = nc->bandwidth, .bandwidth_burst = nc->bandwidth_burst,
	};
	if (nc->bandwidth && p.vhost == NET_VHOST_AUTO)
		p.vhost = NET_VHOST_OFF; /* a limit needs the userspace backend */
	if (nc->mac_set)
		memcpy(p.mac, nc->mac, sizeof(p.mac));
	else
		net_default_mac(vm->cfg->name, i, p.mac);
	int rc = net_create(&p, &vm->nets[i]);
	if (rc == 0)
		rc = attach_transport(vm, net_dev(vm->nets[i]));
	return rc;
}

static int balloon_discard(void *cookie, uint64_t gpa, uint64_t len)
{
	struct vm *vm = cookie;
	return ram_discard(&vm->ram, gpa, len);
}

static int create_balloon(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct virtio_balloon_params p = {
		.plat = &vm->vplat, .page_size = vm->ram.page_size,
		.discard = balloon_discard, .discard_cookie = vm,
		.stats_period = c->balloon_stats_period,
		.deflate_on_oom = c->balloon_deflate_on_oom,
		.free_page_reporting = c->balloon_free_page_reporting,
	};
	if (!ram_can_give_back(&vm->ram)) {
		/* hugepages: giving one back could leave the guest without it
		 * later (mem/ram.h), so the balloon only takes them from it */
		p.discard = NULL;
		p.free_page_reporting = false;
		log_info(&vm->log, "balloon", "hugepage-backed RAM stays reserved: inflated pages "
			 "are not given back to the host (balloon.hugepage_giveback=off)%s",
			 c->balloon_free_page_reporting ? "; free page reporting is not offered" : "");
	}
	int rc = virtio_balloon_create(&p, &vm->balloon);
	if (rc == 0)
		rc = attach_transport(vm, virtio_balloon_dev(vm->balloon));
	if (rc < 0)
		log_err(&vm->log, "vm", "balloon=on: not attached: %s", strerror(-rc));
	return rc;
}

static int create_vsock(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct vsock_params p = {
		.cid = c->vsock_cid, .backend = c->vsock_backend, .uds = c->vsock_uds,
		.plat = &vm->vplat,
	};
	int rc = vsock_create(&p, &vm->vsock);
	if (rc == 0)
		rc = attach_transport(vm, vsock_dev(vm->vsock));
	if (rc < 0)
		log_err(&vm->log, "vm", "vsock.cid=%u: not attached: %s", c->vsock_cid, strerror(-rc));
	return rc;
}

int vm_virtio_create(struct vm *vm)
{
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (!vm->cfg->disks[i].present)
			continue;
		int rc = create_disk(vm, i);
		if (rc < 0) {
			log_err(&vm->log, "vm", "disk%u.path=%s: not attached: %s", i,
				vm->cfg->disks[i].path, strerror(-rc));
			return rc;
		}
	}
	if (vm->cfg->balloon) {
		int rc = create_balloon(vm);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		if (!vm->cfg->nets[i].present)
			continue;
		int rc = create_net(vm, i);
		if (rc < 0) {
			log_err(&vm->log, "vm", "net%u.tap=%s: not attached: %s", i,
				vm->cfg->nets[i].tap, strerror(-rc));
			return rc;
		}
	}
	if (vm->cfg->vsock_cid)
		return create_vsock(vm);
	return 0;
}

void vm_virtio_destroy(struct vm *vm)
{
	/* transports first: they stop kicks and interrupts into the devices */
	for (unsigned i = 0; i < vm->nr_mmio; i++)
		virtio_mmio_destroy(vm->mmio_devs[i]);
	vm->nr_mmio = 0;
	vm_virtio_detach_pci(vm);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (vm->disks[i])
			virtio_blk_destroy(vm->disks[i]);
		vm->disks[i] = NULL;
	}
	virtio_balloon_destroy(vm->balloon);
	vm->balloon = NULL;
	vsock_destroy(vm->vsock);
	vm->vsock = NULL;
	/* a restart keeps a tap kvmrun created, for the next VM to attach */
	bool restarting = atomic_load(&vm->exit_code) == VM_RESTART &&
			  vm->cfg->on_reboot == ON_REBOOT_RESTART;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		net_destroy(vm->nets[i], restarting);
		vm->nets[i] = NULL;
	}
}
