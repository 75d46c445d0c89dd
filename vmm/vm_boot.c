/* Putting the guest's first state in place: ACPI tables, the kernel and
 * initrd through the loader that fits the image, boot page tables. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/acpi.h"
#include "cpu/e820.h"
#include "cpu/elf.h"
#include "mem/layout.h"
#include "cpu/linux_boot.h"
#include "cpu/pvh.h"
#include "cpu/regs.h"
#include "vmm/vm_priv.h"

struct file_buf {
	uint8_t *data;
	size_t len;
};

static int read_file(const struct logger *lg, const char *key, const char *path,
		     struct file_buf *out)
{
	out->data = NULL;
	out->len = 0;
	/* O_NONBLOCK: opening a FIFO with no writer would block for ever */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		log_err(lg, "boot", "%s=%s: %s", key, path, strerror(e));
		return -e;
	}
	struct stat st;
	int rc = 0, fl;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		log_err(lg, "boot", "%s=%s: fstat: %s", key, path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CONFIG_MAX_BOOT_FILE) {
		rc = -EINVAL;
		log_err(lg, "boot", "%s=%s: not a regular file of at most 1 GiB", key, path);
	} else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		rc = -errno;
		log_err(lg, "boot", "%s=%s: fcntl: %s", key, path, strerror(-rc));
	} else if (st.st_size == 0) {
		rc = -EINVAL;
		log_err(lg, "boot", "%s=%s: the file is empty", key, path);
	}
	if (rc == 0) {
		out->data = malloc((size_t)st.st_size);
		rc = out->data ? 0 : -ENOMEM;
	}
	while (rc == 0 && out->len < (size_t)st.st_size) {
		ssize_t n = read(fd, out->data + out->len, (size_t)st.st_size - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			log_err(lg, "boot", "%s=%s: read: %s", key, path, n < 0 ? strerror(-rc) : "file shrank");
			break;
		}
		out->len += (size_t)n;
	}
	close(fd);
	if (rc < 0) {
		free(out->data);
		out->data = NULL;
	}
	return rc;
}

static int vm_build_acpi(struct vm *vm)
{
	uint32_t *ids = calloc(vm->cfg->cpus, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	struct acpi_params p = { .nr_cpus = vm->cfg->cpus, .apic_ids = ids };
	board_describe(&vm->board_opts, &p);
	for (unsigned i = 0; i < vm->cfg->cpus; i++)
		ids[i] = cpuid_apic_id(&vm->topo, i);
	for (unsigned i = 0; i < vm->nr_mmio && i < ACPI_MAX_VIRTIO_MMIO; i++)
		p.virtio_mmio[p.nr_virtio_mmio++] = (struct acpi_virtio_mmio){
			.base = vm->mmio_base[i], .size = LAYOUT_VIRTIO_MMIO_SLOT,
			.gsi = vm->mmio_gsi[i],
		};
	int rc = acpi_build(&p, &vm->ram.mem, LAYOUT_ACPI, LAYOUT_ACPI_MAX, &vm->rsdp_gpa);
	free(ids);
	if (rc < 0)
		log_err(&vm->log, "boot", "building ACPI tables: %s", strerror(-rc));
	return rc;
}

static int load_pvh(struct vm *vm, const struct elf_image *elf, const struct file_buf *initrd,
		    const struct e820_entry *e820, unsigned nr_e820)
{
	struct pvh_params p = {
		.elf = elf, .cmdline = vm->cfg->cmdline,
		.initrd = initrd->data, .initrd_len = initrd->len,
		.e820 = e820, .nr_e820 = nr_e820, .rsdp_gpa = vm->rsdp_gpa,
	};
	return pvh_load(&vm->ram.mem, &p, &vm->boot, &vm->log);
}

static int load_linux(struct vm *vm, const struct file_buf *kernel, const struct file_buf *initrd,
		      const struct e820_entry *e820, unsigned nr_e820)
{
	struct linux_boot_params p = {
		.kernel = kernel->data, .kernel_len = kernel->len,
		.initrd = initrd->data, .initrd_len = initrd->len,
		.cmdline = vm->cfg->cmdline,
		.e820 = e820, .nr_e820 = nr_e820,
		.rsdp_gpa = vm->rsdp_gpa,
	};
	return linux_boot_load(&vm->ram.mem, &p, &vm->boot, &vm->log);
}

int vm_load_kernel(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct file_buf kernel, initrd = { 0 };
	int rc = vm_build_acpi(vm);
	if (rc == 0)
		rc = read_file(&vm->log, "kernel", c->kernel, &kernel);
	if (rc < 0)
		return rc;
	if (c->initrd)
		rc = read_file(&vm->log, "initrd", c->initrd, &initrd);
	struct e820_entry e820[E820_MAX];
	unsigned nr_e820 = e820_build(&vm->ram.mem, e820);
	struct elf_image elf;
	const char *why = NULL;
	if (rc < 0) {
		/* nothing more to do */
	} else if (elf_is_elf(kernel.data, kernel.len)) {
		rc = elf_parse(kernel.data, kernel.len, &elf, &why);
		if (rc < 0)
			log_err(&vm->log, "boot", "kernel=%s: %s", c->kernel, why);
		else if (elf.has_pvh)
			rc = load_pvh(vm, &elf, &initrd, e820, nr_e820);
		else
			rc = load_linux(vm, &kernel, &initrd, e820, nr_e820);
	} else {
		rc = load_linux(vm, &kernel, &initrd, e820, nr_e820);
	}
	if (rc < 0 && kernel.data)
		log_err(&vm->log, "boot", "kernel=%s: not loaded", c->kernel);
	if (rc == 0) {
		rc = regs_write_boot_tables(&vm->ram.mem, &vm->boot);
		if (rc < 0)
			log_err(&vm->log, "boot", "writing boot GDT/page tables: %s", strerror(-rc));
	}
	free(kernel.data);
	free(initrd.data);
	return rc;
}
