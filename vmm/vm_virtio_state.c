/* The virtio side of pause and snapshots, as this branch found it: thin
 * versions of the functions the device-state work (branch snap-dev)
 * provides, to be replaced by that branch's, which save the virtio
 * devices' queues. Until then a VM with any virtio device is refused a
 * snapshot, since its queues could not be restored faithfully. */
#include <errno.h>
#include <stdio.h>

#include "lib/state.h"
#include "vmm/vm_priv.h"

void vm_virtio_quiesce(struct vm *vm)
{
	(void)vm; /* no virtio device passes vm_virtio_can_snapshot here */
}

void vm_virtio_unquiesce(struct vm *vm)
{
	(void)vm;
}

int vm_virtio_can_snapshot(struct vm *vm, char *why, size_t len)
{
	unsigned n = vm->nr_mmio + vm->nr_pci;
	if (n == 0)
		return 0;
	snprintf(why, len, "the VM has %u virtio device%s, whose state this build "
		 "cannot save", n, n == 1 ? "" : "s");
	return -ENOTSUP;
}

int vm_virtio_save(struct vm *vm, struct state_w *w)
{
	(void)vm;
	(void)w;
	return 0;
}

int vm_virtio_load(struct vm *vm, const struct state_file *f, char *err, size_t len)
{
	(void)vm;
	(void)f;
	(void)err;
	(void)len;
	return 0;
}
