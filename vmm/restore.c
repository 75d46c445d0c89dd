/* restore=DIR: a VM built from a snapshot directory. restore_open reads
 * and checks everything the snapshot holds before the VM exists (the
 * header, the state file's framing and CRC, every vCPU's and the VM's KVM
 * state parsed into structs, the memory file's size, the disks' sizes);
 * vm_map_ram maps the memory file MAP_PRIVATE (mem/ram.c); restore_apply
 * loads the devices' state and then KVM's into the VM that vm_create
 * built as at boot, without a kernel. */
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

struct restore {
	char dir[4096];
	char mem_path[4096 + 16];
	struct snapshot_header hdr;
	uint8_t *state_buf;
	size_t state_len;
	struct state_file sf;
	struct vm_kvm_state kvm;
	struct vcpu_state *vcpus;
	unsigned nr_vcpus;
};

__attribute__((format(printf, 2, 3)))
static int bad(struct vm *vm, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err(&vm->log, "restore", "restore=%s: %s", vm->cfg->restore, msg);
	return -EINVAL;
}

/* Reads DIR/@name whole, refusing more than @max bytes. */
static int read_small(struct vm *vm, const char *name, size_t max, uint8_t **out, size_t *n)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", vm->restore->dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bad(vm, "opening %s: %s%s", path, strerror(errno),
			   errno == ENOENT ? " (not a snapshot directory, or an unfinished one)" : "");
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		rc = bad(vm, "%s is not a regular file of at most %zu bytes", path, max);
	uint8_t *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	if (rc == 0 && !buf)
		rc = bad(vm, "%s: out of memory", path);
	size_t got = 0;
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = bad(vm, "reading %s: %s", path, r < 0 ? strerror(errno) : "short file");
		else
			got += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = 0;
	*out = buf;
	*n = got;
	return 0;
}

static int check_sizes(struct vm *vm)
{
	const struct snapshot_header *h = &vm->restore->hdr;
	const struct vm_config *c = vm->cfg;
	if (h->mem != c->mem || h->cpus != c->cpus)
		return bad(vm, "the header says mem=%llu cpus=%u, its config mem=%llu cpus=%u",
			   (unsigned long long)h->mem, h->cpus, (unsigned long long)c->mem, c->cpus);
	struct stat st;
	if (stat(vm->restore->mem_path, &st) < 0)
		return bad(vm, "memory file %s: %s", vm->restore->mem_path, strerror(errno));
	if ((uint64_t)st.st_size != h->mem)
		return bad(vm, "memory file %s is %llu bytes, the snapshot's mem is %llu "
			   "(truncated or not this snapshot's)", vm->restore->mem_path,
			   (unsigned long long)st.st_size, (unsigned long long)h->mem);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (!c->disks[i].present || !h->disk_present[i])
			continue;
		if (stat(c->disks[i].path, &st) < 0)
			return bad(vm, "disk%u.path %s: %s", i, c->disks[i].path, strerror(errno));
		if ((uint64_t)st.st_size != h->disk_size[i])
			return bad(vm, "disk%u.path %s is %llu bytes, the snapshotted image was %llu: "
				   "not the same image", i, c->disks[i].path,
				   (unsigned long long)st.st_size,
				   (unsigned long long)h->disk_size[i]);
	}
	return 0;
}

static int parse_kvm_state(struct vm *vm)
{
	struct restore *rs = vm->restore;
	char err[STATE_ERR_MAX];
	struct state_r r;
	if (state_section(&rs->sf, VM_STATE_SECTION, VM_STATE_VERSION, &r, err, sizeof(err)) < 0)
		return bad(vm, "state: %s", err[0] ? err : "no " VM_STATE_SECTION " section");
	if (vm_kvm_state_parse(&r, &rs->kvm) < 0)
		return bad(vm, "state: %s", r.err);
	rs->vcpus = calloc(rs->hdr.cpus, sizeof(*rs->vcpus));
	if (!rs->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < rs->hdr.cpus; i++) {
		char name[32];
		snprintf(name, sizeof(name), "vcpu.%u", i);
		err[0] = 0;
		if (state_section(&rs->sf, name, VCPU_STATE_VERSION, &r, err, sizeof(err)) < 0)
			return bad(vm, "state: %s", err[0] ? err : "a vCPU's section is missing");
		rs->nr_vcpus = i + 1;
		if (vcpu_state_parse(&r, &rs->vcpus[i]) < 0)
			return bad(vm, "state: %s", r.err);
		if (rs->vcpus[i].index != i)
			return bad(vm, "state: section %s holds vCPU %u", name, rs->vcpus[i].index);
	}
	return 0;
}

int restore_open(struct vm *vm)
{
	struct restore *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	vm->restore = rs;
	snprintf(rs->dir, sizeof(rs->dir), "%s", vm->cfg->restore);
	snprintf(rs->mem_path, sizeof(rs->mem_path), "%s/%s", rs->dir, SNAPSHOT_MEMORY_FILE);
	uint8_t *text = NULL;
	size_t n = 0;
	int rc = read_small(vm, SNAPSHOT_HEADER_FILE, SNAPSHOT_HEADER_MAX, &text, &n);
	if (rc < 0)
		return rc;
	char err[STATE_ERR_MAX + 64];
	rc = snapshot_header_parse((const char *)text, n, &rs->hdr, err, sizeof(err));
	free(text);
	if (rc < 0)
		return bad(vm, "header %s/%s: %s", rs->dir, SNAPSHOT_HEADER_FILE, err);
	rc = check_sizes(vm);
	if (rc == 0)
		rc = read_small(vm, SNAPSHOT_STATE_FILE, SNAPSHOT_MAX_STATE, &rs->state_buf,
				&rs->state_len);
	if (rc < 0)
		return rc;
	if (rs->state_len != rs->hdr.state_size)
		return bad(vm, "state file is %zu bytes, the header says %llu (truncated?)",
			   rs->state_len, (unsigned long long)rs->hdr.state_size);
	if (state_file_parse(rs->state_buf, rs->state_len, &rs->sf, err, sizeof(err)) < 0)
		return bad(vm, "state file: %s", err);
	const uint8_t *t = rs->state_buf + rs->state_len - 4;
	uint32_t crc = t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
	if (crc != rs->hdr.state_crc)
		return bad(vm, "the state file's CRC %08x is not the header's %08x: files of "
			   "two snapshots mixed", crc, rs->hdr.state_crc);
	return parse_kvm_state(vm);
}

const char *restore_memory_path(const struct vm *vm)
{
	return vm->restore ? vm->restore->mem_path : NULL;
}

static int apply_vcpus(struct vm *vm)
{
	struct restore *rs = vm->restore;
	uint32_t host_xsave = vcpu_state_xsave_len(vm->kvm_fd);
	char err[200];
	for (unsigned i = 0; i < rs->nr_vcpus; i++) {
		const struct vcpu_state *s = &rs->vcpus[i];
		if (s->xsave_len != host_xsave)
			return bad(vm, "vcpu %u: XSAVE area of %u bytes, this host's is %u "
				   "(a snapshot of another CPU model)", i, s->xsave_len, host_xsave);
		unsigned skipped = 0;
		uint32_t first = 0;
		int rc = vcpu_state_set(vm->vcpus[i].fd, s, &skipped, &first, err, sizeof(err));
		if (rc < 0) {
			log_err(&vm->log, "restore", "restore=%s: vcpu %u: %s", rs->dir, i, err);
			return rc;
		}
		if (skipped)
			log_warn(&vm->log, "restore", "vcpu %u: KVM refused %u MSR%s (first 0x%x); "
				 "left at their reset values", i, skipped, skipped == 1 ? "" : "s", first);
	}
	return 0;
}

int restore_apply(struct vm *vm)
{
	struct restore *rs = vm->restore;
	char err[256] = "";
	int rc = board_load(&vm->board, &rs->sf, err, sizeof(err));
	if (rc < 0)
		return bad(vm, "platform devices: %s", err);
	rc = vm_virtio_load(vm, &rs->sf, err, sizeof(err));
	if (rc < 0)
		return bad(vm, "virtio devices: %s", err);
	rc = apply_vcpus(vm);
	if (rc < 0)
		return rc;
	/* after the board, which drives the UART and SCI lines */
	rc = vm_kvm_state_set(vm->vm_fd, &rs->kvm, err, sizeof(err));
	if (rc < 0) {
		log_err(&vm->log, "restore", "restore=%s: %s", rs->dir, err);
		return rc;
	}
	vm->paused_clock = rs->kvm.clock;    /* set by restore_start_clock */
	vm->restore_clock = true;
	log_info(&vm->log, "restore", "restored from %s", rs->dir);
	restore_free(vm);
	return 0;
}

int restore_start_clock(struct vm *vm)
{
	if (!vm->restore_clock)
		return 0;
	char err[160];
	int rc = vm_kvm_clock_set(vm->vm_fd, vm->paused_clock, err, sizeof(err));
	if (rc < 0)
		log_err(&vm->log, "restore", "restore=%s: %s", vm->cfg->restore, err);
	vm->restore_clock = false;
	return rc;
}

void restore_free(struct vm *vm)
{
	struct restore *rs = vm->restore;
	if (!rs)
		return;
	for (unsigned i = 0; i < rs->nr_vcpus; i++)
		vcpu_state_free(&rs->vcpus[i]);
	free(rs->vcpus);
	free(rs->state_buf);
	free(rs);
	vm->restore = NULL;
}
