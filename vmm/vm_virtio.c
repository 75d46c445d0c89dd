/* The KVM side of virtio: the virtio_platform hooks (ioeventfd, irqfd,
 * MSI routes) every virtio device of this VM uses. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm_priv.h"

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
