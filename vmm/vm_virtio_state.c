/* Snapshots of the VM's virtio devices (vm_virtio_state.h): the devices
 * are reached through their transports, in creation order. */
#include "vmm/vm_virtio_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "virtio/device_state.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "vmm/vm_priv.h"

#define SECTION_PCI "virtio-pci"
#define SECTION_MMIO "virtio-mmio"

static unsigned nr_devs(const struct vm *vm)
{
	return vm->nr_pci + vm->nr_mmio;
}

/* The @i-th device: PCI functions, then mmio slots (a VM has one kind). */
static struct virtio_dev *dev_at(const struct vm *vm, unsigned i)
{
	return i < vm->nr_pci ? virtio_pci_dev(vm->pci_devs[i])
			      : virtio_mmio_dev(vm->mmio_devs[i - vm->nr_pci]);
}

void vm_virtio_quiesce(struct vm *vm)
{
	for (unsigned i = 0; i < nr_devs(vm); i++)
		virtio_dev_quiesce(dev_at(vm, i));
}

void vm_virtio_unquiesce(struct vm *vm)
{
	for (unsigned i = 0; i < nr_devs(vm); i++)
		virtio_dev_unquiesce(dev_at(vm, i));
}

int vm_virtio_can_snapshot(struct vm *vm, char *why, size_t len)
{
	for (unsigned i = 0; i < nr_devs(vm); i++) {
		struct virtio_dev *d = dev_at(vm, i);
		pthread_mutex_lock(&d->lock);
		int rc = virtio_dev_can_snapshot(d, why, len);
		pthread_mutex_unlock(&d->lock);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int vm_virtio_save(struct vm *vm, struct state_w *w)
{
	char name[STATE_NAME_MAX + 1];
	for (unsigned i = 0; i < vm->nr_pci; i++) {
		snprintf(name, sizeof(name), SECTION_PCI ".%u", i);
		state_section_begin(w, name, VIRTIO_PCI_STATE_VERSION);
		virtio_pci_save(vm->pci_devs[i], w);
		state_section_end(w);
	}
	for (unsigned i = 0; i < vm->nr_mmio; i++) {
		snprintf(name, sizeof(name), SECTION_MMIO ".%u", i);
		state_section_begin(w, name, VIRTIO_MMIO_STATE_VERSION);
		virtio_mmio_save(vm->mmio_devs[i], w);
		state_section_end(w);
	}
	return w->oom ? -ENOMEM : 0;
}

/* The reader of section "@kind.@i", or an error naming it. */
static int find(const struct state_file *f, const char *kind, unsigned i, uint32_t version,
		struct state_r *r, char *err, size_t len)
{
	char name[STATE_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s.%u", kind, i);
	int rc = state_section(f, name, version, r, err, len);
	if (rc == -ENOENT) {
		snprintf(err, len, "section %s: missing (this VM has that device)", name);
		return -EINVAL;
	}
	return rc;
}

/* A section for a device this VM lacks: the snapshot is not of its config. */
static int extra(const struct state_file *f, const char *kind, unsigned n, char *err, size_t len)
{
	char name[STATE_NAME_MAX + 1];
	struct state_r r;
	snprintf(name, sizeof(name), "%s.%u", kind, n);
	if (state_section(f, name, UINT32_MAX, &r, err, len) == -ENOENT)
		return 0;
	snprintf(err, len, "section %s: the snapshot has a device this VM has not", name);
	return -EINVAL;
}

/* Loads the device of section "@kind.@i" through @load. */
static int load_one(const struct state_file *f, const char *kind, unsigned i, uint32_t version,
		    int (*load)(void *transport, struct state_r *r), void *transport,
		    char *err, size_t len)
{
	struct state_r r;
	int rc = find(f, kind, i, version, &r, err, len);
	if (rc < 0)
		return rc;
	rc = load(transport, &r);
	if (rc < 0 && r.failed)
		snprintf(err, len, "%s", r.err);
	else if (rc < 0)
		snprintf(err, len, "section %s: the device could not start again: %s", r.name,
			 strerror(-rc));
	return rc;
}

static int load_pci(void *t, struct state_r *r) { return virtio_pci_load(t, r); }
static int load_mmio(void *t, struct state_r *r) { return virtio_mmio_load(t, r); }

int vm_virtio_load(struct vm *vm, const struct state_file *f, char *err, size_t len)
{
	int rc = extra(f, SECTION_PCI, vm->nr_pci, err, len);
	if (rc == 0)
		rc = extra(f, SECTION_MMIO, vm->nr_mmio, err, len);
	for (unsigned i = 0; rc == 0 && i < vm->nr_pci; i++)
		rc = load_one(f, SECTION_PCI, i, VIRTIO_PCI_STATE_VERSION, load_pci,
			      vm->pci_devs[i], err, len);
	for (unsigned i = 0; rc == 0 && i < vm->nr_mmio; i++)
		rc = load_one(f, SECTION_MMIO, i, VIRTIO_MMIO_STATE_VERSION, load_mmio,
			      vm->mmio_devs[i], err, len);
	return rc;
}
