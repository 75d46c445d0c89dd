/* The PCI side of the VM's virtio devices: one function per device on the
 * board's host bridge (transport=pci). */
#include <errno.h>
#include <string.h>

#include "devices/pci_host.h"
#include "virtio/pci.h"
#include "vmm/vm_priv.h"

int vm_virtio_attach_pci(struct vm *vm, struct virtio_dev *d)
{
	if (!vm->board.pci || vm->nr_pci == VM_MAX_VIRTIO)
		return -ENOSPC;
	int rc = virtio_pci_create(vm->board.pci, d, &vm->pci_devs[vm->nr_pci]);
	if (rc == 0)
		vm->nr_pci++;
	return rc;
}

void vm_virtio_detach_pci(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_pci; i++)
		virtio_pci_destroy(vm->pci_devs[i]);
	vm->nr_pci = 0;
}
