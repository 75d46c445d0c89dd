/* snapshot path=DIR: the paused VM's memory, KVM state, device state and
 * configuration written into a snapshot directory (vmm/snapshot_header.h
 * lists its files). Each file is written under a temporary name and
 * renamed; the header goes last, after the old one was removed first, so
 * a directory with a header always holds one whole snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/vcpu_state.h"
#include "cpu/vm_state.h"
#include "lib/state.h"
#include "vmm/snapshot_header.h"
#include "vmm/vm_priv.h"

#define PAGE 4096u
#define MAX_RUN (1u << 20)   /* bytes of one pwrite */

__attribute__((format(printf, 3, 4)))
static int say(char *err, size_t len, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return e ? -e : -EIO;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < PAGE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

static int write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

#define PM_BATCH 4096u   /* pagemap entries read at once */

/* Which pages of anonymous RAM were never touched (neither present nor
 * swapped: they read as zeroes), from /proc/self/pagemap, so a snapshot of
 * a large, mostly idle guest does not read through all of it. */
struct untouched {
	int fd;                  /* /proc/self/pagemap, or -1: read every page */
	uint64_t at;             /* RAM offset of entry 0 */
	uint64_t n;              /* entries held */
	uint64_t e[PM_BATCH];
};

static void untouched_open(struct untouched *u, const struct ram *ram)
{
	u->n = 0;
	u->fd = -1;
	if (ram->fd < 0 && !ram->file_backed) /* a file's page may be absent yet not zero */
		u->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

static bool is_untouched(struct untouched *u, const struct ram *ram, uint64_t off)
{
	if (u->fd < 0)
		return false;
	if (off < u->at || off >= u->at + u->n * PAGE) {
		u->at = off;
		uint64_t left = (ram->size - off) / PAGE;
		size_t want = (size_t)(left < PM_BATCH ? left : PM_BATCH) * 8;
		off_t pos = (off_t)(((uintptr_t)ram->base + off) / PAGE * 8);
		ssize_t got = pread(u->fd, u->e, want, pos);
		if (got < 8) {
			close(u->fd);
			u->fd = -1;
			return false;
		}
		u->n = (uint64_t)got / 8;
	}
	uint64_t e = u->e[(off - u->at) / PAGE];
	return !(e & (3ull << 62));  /* bit 63 present, bit 62 swapped */
}

/* Guest RAM into @fd, the file sized first so that zero pages are holes. */
static int write_memory(const struct ram *ram, int fd)
{
	if (ftruncate(fd, (off_t)ram->size) < 0)
		return -errno;
	struct untouched *u = malloc(sizeof(*u));
	if (!u)
		return -ENOMEM;
	untouched_open(u, ram);
	int rc = 0;
	uint64_t off = 0;
	while (off < ram->size && rc == 0) {
		if (is_untouched(u, ram, off) || page_is_zero(ram->base + off)) {
			off += PAGE;
			continue;
		}
		uint64_t end = off + PAGE;
		while (end < ram->size && end - off < MAX_RUN && !is_untouched(u, ram, end) &&
		       !page_is_zero(ram->base + end))
			end += PAGE;
		rc = write_all(fd, ram->base + off, end - off, (off_t)off);
		off = end;
	}
	if (u->fd >= 0)
		close(u->fd);
	free(u);
	if (rc < 0)
		return rc;
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* Creates DIR/NAME.tmp, fills it with @fill, renames it to DIR/NAME. */
static int write_file(int dirfd, const char *dir, const char *name,
		      int (*fill)(int fd, const void *arg), const void *arg, char *err, size_t len)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return say(err, len, "creating %s/%s: %s", dir, tmp, strerror(errno));
	int rc = fill(fd, arg);
	close(fd);
	if (rc < 0) {
		unlinkat(dirfd, tmp, 0);
		errno = -rc;
		return say(err, len, "writing %s/%s: %s", dir, tmp, strerror(-rc));
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		return say(err, len, "renaming %s/%s to %s: %s", dir, tmp, name, strerror(errno));
	return 0;
}

struct bytes {
	const uint8_t *p;
	size_t n;
};

static int fill_bytes(int fd, const void *arg)
{
	const struct bytes *b = arg;
	int rc = write_all(fd, b->p, b->n, 0);
	return rc < 0 ? rc : fdatasync(fd) < 0 ? -errno : 0;
}

static int fill_memory(int fd, const void *arg)
{
	return write_memory(arg, fd);
}

/* Every vCPU's and the VM's KVM state, then the devices'. */
static int build_state(struct vm *vm, struct state_w *w, char *err, size_t len)
{
	uint32_t *msrs = NULL, nr_msrs = 0;
	int rc = vcpu_state_msr_list(vm->kvm_fd, &msrs, &nr_msrs);
	if (rc < 0) {
		errno = -rc;
		return say(err, len, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-rc));
	}
	char why[160] = "";
	for (unsigned i = 0; i < vm->nr_vcpus && rc == 0; i++) {
		struct vcpu_state s;
		memset(&s, 0, sizeof(s));
		s.index = i;
		s.apic_id = vm->vcpus[i].apic_id;
		rc = vcpu_state_get(vm->kvm_fd, vm->vcpus[i].fd, msrs, nr_msrs, &s, why, sizeof(why));
		if (rc == 0)
			vcpu_state_save(&s, w);
		else
			snprintf(err, len, "vcpu %u: %s", i, why);
		vcpu_state_free(&s);
	}
	free(msrs);
	if (rc < 0)
		return rc;
	struct vm_kvm_state vs;
	rc = vm_kvm_state_get(vm->vm_fd, vm->paused_clock, &vs, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, len, "%s", why);
		return rc;
	}
	vm_kvm_state_save(&vs, w);
	rc = board_save(&vm->board, w);
	if (rc == 0)
		rc = vm_virtio_save(vm, w);
	if (rc < 0)
		snprintf(err, len, "saving the devices' state: %s", strerror(-rc));
	return rc;
}

/* The config as printed, less restore= (a restore of this snapshot is not
 * a restore of the one it may itself come from). */
static int config_text(const struct vm_config *c, char **out, size_t *n)
{
	char *raw = NULL;
	size_t rawn = 0;
	FILE *f = open_memstream(&raw, &rawn);
	if (!f)
		return -errno;
	config_print(c, f);
	if (fclose(f) != 0) {
		free(raw);
		return -ENOMEM;
	}
	size_t o = 0;
	for (char *line = raw; line < raw + rawn;) {
		char *nl = memchr(line, '\n', (size_t)(raw + rawn - line));
		size_t l = nl ? (size_t)(nl - line) + 1 : (size_t)(raw + rawn - line);
		if (strncmp(line, "restore=", 8) != 0 && strncmp(line, "restore.", 8) != 0) {
			memmove(raw + o, line, l);
			o += l;
		}
		line += l;
	}
	*out = raw;
	*n = o;
	return 0;
}

static int write_header(struct vm *vm, int dirfd, const char *dir, const struct bytes *state,
			char *err, size_t len)
{
	struct snapshot_header h = {
		.version = SNAPSHOT_VERSION, .mem = vm->ram.size, .cpus = vm->nr_vcpus,
		.state_size = state->n,
	};
	const uint8_t *t = state->p + state->n - 4; /* the trailer, little-endian */
	h.state_crc = t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		struct stat st;
		if (vm->cfg->disks[i].present && stat(vm->cfg->disks[i].path, &st) == 0) {
			h.disk_present[i] = true;
			h.disk_size[i] = (uint64_t)st.st_size;
		}
	}
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	if (!f)
		return say(err, len, "out of memory");
	snapshot_header_write(&h, f);
	fclose(f);
	struct bytes b = { (const uint8_t *)text, n };
	int rc = write_file(dirfd, dir, SNAPSHOT_HEADER_FILE, fill_bytes, &b, err, len);
	free(text);
	return rc;
}

static int write_snapshot(struct vm *vm, int dirfd, const char *dir, char *err, size_t len)
{
	struct state_w w;
	state_w_init(&w);
	int rc = build_state(vm, &w, err, len);
	struct bytes state = { 0 };
	if (rc == 0 && state_w_finish(&w, &state.p, &state.n) < 0)
		rc = say(err, len, "out of memory building the state file");
	if (rc == 0)
		rc = write_file(dirfd, dir, SNAPSHOT_MEMORY_FILE, fill_memory, &vm->ram, err, len);
	if (rc == 0)
		rc = write_file(dirfd, dir, SNAPSHOT_STATE_FILE, fill_bytes, &state, err, len);
	char *cfg = NULL;
	size_t cfgn = 0;
	if (rc == 0 && config_text(vm->cfg, &cfg, &cfgn) < 0)
		rc = say(err, len, "printing the configuration: out of memory");
	struct bytes cb = { (const uint8_t *)cfg, cfgn };
	if (rc == 0)
		rc = write_file(dirfd, dir, SNAPSHOT_CONFIG_FILE, fill_bytes, &cb, err, len);
	free(cfg);
	if (rc == 0)
		rc = write_header(vm, dirfd, dir, &state, err, len);
	if (rc == 0 && fsync(dirfd) < 0)
		rc = say(err, len, "fsync of %s: %s", dir, strerror(errno));
	state_w_free(&w);
	return rc;
}

/* @dir is snapshot_dir=@root or below it, with no ".." to climb out. */
static bool inside(const char *root, const char *dir)
{
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 1 && root[0] == '/') /* snapshot_dir=/: any absolute path */
		n = 0;
	if (strncmp(dir, root, n) != 0 || (dir[n] != '/' && dir[n] != 0))
		return false;
	for (const char *p = dir + n; *p; ) {
		p += strspn(p, "/");
		size_t seg = strcspn(p, "/");
		if (seg == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += seg;
	}
	return true;
}

/* Where the jail lets a snapshot go: under snapshot_dir=, the one folder
 * Landlock opens for it. */
static int check_dir(const struct vm_config *c, const char *dir, char *err, size_t len)
{
	if (c->snapshot_dir && !inside(c->snapshot_dir, dir)) {
		snprintf(err, len, "path=%s is outside snapshot_dir=%s", dir, c->snapshot_dir);
		return -EACCES;
	}
	if (!c->snapshot_dir && c->landlock) {
		snprintf(err, len, "landlock=on lets this VM write only its own files: start it "
			 "with snapshot_dir=DIR and snapshot below DIR");
		return -EACCES;
	}
	return 0;
}

int vm_snapshot(struct vm *vm, const char *dir, char *err, size_t len)
{
	errno = 0;
	if (!vm->paused) {
		snprintf(err, len, "the VM is not paused (pause it first)");
		return -EAGAIN;
	}
	int rc = check_dir(vm->cfg, dir, err, len);
	if (rc < 0)
		return rc;
	char why[200] = "";
	rc = vm_virtio_can_snapshot(vm, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, len, "cannot be restored faithfully: %s", why);
		return rc;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return say(err, len, "creating directory %s: %s", dir, strerror(errno));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return say(err, len, "opening directory %s: %s", dir, strerror(errno));
	/* no header until everything else is in place */
	if (unlinkat(dirfd, SNAPSHOT_HEADER_FILE, 0) < 0 && errno != ENOENT) {
		rc = say(err, len, "removing the old %s/%s: %s", dir, SNAPSHOT_HEADER_FILE,
			 strerror(errno));
		close(dirfd);
		return rc;
	}
	rc = write_snapshot(vm, dirfd, dir, err, len);
	close(dirfd);
	if (rc < 0)
		log_err(&vm->log, "snapshot", "%s", err);
	else
		log_info(&vm->log, "snapshot", "written to %s", dir);
	return rc;
}
