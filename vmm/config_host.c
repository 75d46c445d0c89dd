/* Checks of a configuration against the host it is to run on (see
 * config_check_host() in config.h): what --check must catch so that a
 * config that passes it does not fail at start-up for a reason the config
 * already shows. */
#include "vmm/config.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "mem/layout.h"
#include "vmm/config_priv.h"

int config_host_probe(struct config_host *h)
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return -errno;
	h->ram = (uint64_t)si.totalram * si.mem_unit;
	h->swap = (uint64_t)si.totalswap * si.mem_unit;
	unsigned a, b, c, d;
	/* CPUID 0x80000008 EAX[7:0]: physical address bits (36 without the leaf) */
	h->phys_bits = 36;
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000008 &&
	    __get_cpuid(0x80000008, &a, &b, &c, &d) && (a & 0xff) >= 32)
		h->phys_bits = a & 0xff;
	return 0;
}

const char *config_file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file";
}

enum file_use { USE_BOOT, USE_DISK_RO, USE_DISK_RW };

/* The file @path that @key names must exist and suit @use. Never opens
 * it, so a FIFO cannot block the check. */
static void check_file(struct vm_config *c, struct config_diag *d, const char *key,
		       const char *path, enum file_use use)
{
	char pb[256], sb[32];
	const char *shown = config_shown(path, pb, sizeof(pb));
	struct stat st;
	if (stat(path, &st) < 0) {
		config_report_key(c, d, key, "%s: %s", shown, strerror(errno));
		return;
	}
	bool ok_type = S_ISREG(st.st_mode) || (use != USE_BOOT && S_ISBLK(st.st_mode));
	if (!ok_type) {
		config_report_key(c, d, key, "%s is %s, not %s", shown, config_file_kind(st.st_mode),
				  use == USE_BOOT ? "a regular file"
						  : "a regular file or a block device");
		return;
	}
	int mode = R_OK | (use == USE_DISK_RW ? W_OK : 0);
	if (access(path, mode) < 0) {
		config_report_key(c, d, key, "%s: %s%s", shown, strerror(errno),
				  use == USE_DISK_RW && errno == EACCES ?
				  " (it is opened read-write; readonly=on opens it read-only)" : "");
		return;
	}
	if (use == USE_BOOT && st.st_size == 0)
		config_report_key(c, d, key, "%s is empty", shown);
	else if (use == USE_BOOT && (uint64_t)st.st_size > CONFIG_MAX_BOOT_FILE)
		config_report_key(c, d, key, "%s is larger than %s", shown,
				  config_fmt_size(CONFIG_MAX_BOOT_FILE, sb, sizeof(sb)));
}

static void check_files(struct vm_config *c, struct config_diag *d)
{
	char key[32];
	if (c->kernel && !c->restore) /* a restore loads no kernel */
		check_file(c, d, "kernel", c->kernel, USE_BOOT);
	if (c->initrd && !c->restore)
		check_file(c, d, "initrd", c->initrd, USE_BOOT);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		const struct disk_config *dc = &c->disks[i];
		if (!dc->present || !dc->path)
			continue;
		snprintf(key, sizeof(key), "disk%u.path", i);
		/* an overlay's base is opened read-only */
		check_file(c, d, key, dc->path, dc->readonly || dc->overlay ? USE_DISK_RO : USE_DISK_RW);
	}
}

/* RAM the host could ever back, and the guest-physical address space. */
static void check_mem(struct vm_config *c, const struct config_host *h, struct config_diag *d)
{
	char a[32], b[32], e[32], w[256];
	const uint64_t hole = LAYOUT_4G - LAYOUT_MMIO_HOLE;
	/* KVM maps guest frames below 2^phys_bits minus one page */
	uint64_t space = h->phys_bits >= 64 ? UINT64_MAX : (1ull << h->phys_bits) - 4096;
	uint64_t top = c->mem <= LAYOUT_MMIO_HOLE ? c->mem : c->mem + hole;
	if (c->mem > UINT64_MAX - hole || top > space) {
		config_report_key(c, d, "mem", "%s does not fit the guest-physical address space of "
				  "this host (%u address bits: at most %s of RAM)",
				  config_fmt_size(c->mem, a, sizeof(a)), h->phys_bits,
				  config_fmt_size((space - hole) & ~((1ull << 30) - 1), b, sizeof(b)));
		return;
	}
	if (c->mem_overcommit)
		return;
	bool huge = c->mem_hugepages != HUGEPAGES_OFF;
	uint64_t limit = h->ram + (huge ? 0 : h->swap);
	if (c->mem <= limit)
		return;
	const uint64_t mib = (1ull << 20) - 1; /* the host's sizes, rounded down to MiB */
	if (huge)
		snprintf(w, sizeof(w), "%s of RAM; hugepages do not swap",
			 config_fmt_size(h->ram & ~mib, b, sizeof(b)));
	else
		snprintf(w, sizeof(w), "%s of RAM and %s of swap",
			 config_fmt_size(h->ram & ~mib, b, sizeof(b)),
			 config_fmt_size(h->swap & ~mib, e, sizeof(e)));
	config_report_key(c, d, "mem", "%s is more than this host could ever back (%s); "
			  "mem_overcommit=on allows it", config_fmt_size(c->mem, a, sizeof(a)), w);
}

int config_check_host(struct vm_config *c, const struct config_host *h, struct config_diag *d)
{
	unsigned before = d->errors;
	check_files(c, d);
	check_mem(c, h, d);
	return d->errors > before ? -EINVAL : 0;
}
