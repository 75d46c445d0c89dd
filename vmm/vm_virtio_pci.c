/* The PCI side of the VM's virtio devices: the host bridge (created with
 * the platform devices when transport=pci) and one function per device. */
#include <errno.h>
#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/pci_host.h"
#include "virtio/pci.h"
#include "vmm/vm_priv.h"

/* 0xcf9 lies inside the PCI config ports: the host bridge forwards it. */
static void forward_cf9(void *cookie, uint8_t value)
{
	struct vm *vm = cookie;
	if (vm->acpi_pm)
		acpi_pm_reset_write(vm->acpi_pm, value);
}

int vm_pci_create(struct vm *vm)
{
	if (vm->cfg->transport != TRANSPORT_PCI)
		return 0;
	struct pci_host_params p = { .log = &vm->log, .cf9_write = forward_cf9, .cf9_cookie = vm };
	return pci_host_create(&vm->pio, &vm->mmio, &p, &vm->pci);
}

void vm_pci_destroy(struct vm *vm)
{
	pci_host_destroy(vm->pci);
	vm->pci = NULL;
}

int vm_virtio_attach_pci(struct vm *vm, struct virtio_dev *d)
{
	if (!vm->pci || vm->nr_pci == VM_MAX_VIRTIO)
		return -ENOSPC;
	int rc = virtio_pci_create(vm->pci, d, &vm->pci_devs[vm->nr_pci]);
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
