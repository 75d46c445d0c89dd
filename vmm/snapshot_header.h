/* A snapshot directory's header, the file DIR/snapshot: text, one
 * key=value a line, written last so that a directory with a header holds
 * a whole snapshot.
 *
 *   format=kvmrun-snapshot      always first
 *   version=1                   SNAPSHOT_VERSION; a reader refuses a higher one
 *   mem=BYTES                   guest RAM: the size of DIR/memory
 *   cpus=N                      vCPUs: sections vcpu.0 .. vcpu.N-1 of DIR/state
 *   state_size=BYTES            the size of DIR/state (lib/state.h's format)
 *   state_crc=HEX               its trailing CRC-32, so header and state match
 *   diskN_size=BYTES            each disk's image size when snapshotted
 *
 * DIR/config holds the configuration that produced it (config_print), and
 * DIR/memory guest RAM, sparse where it was zero. Unknown keys, a missing
 * key, a line over SNAPSHOT_HEADER_MAX_LINE and a file over
 * SNAPSHOT_HEADER_MAX are refused: the header is hostile input. The
 * parser is pure (no file access) and fuzzed. */
#ifndef KVMRUN_SNAPSHOT_HEADER_H
#define KVMRUN_SNAPSHOT_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/config.h"

#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_HEADER_MAX 4096
#define SNAPSHOT_HEADER_MAX_LINE 128
#define SNAPSHOT_MAX_STATE (64ull << 20)   /* bytes of DIR/state */

#define SNAPSHOT_HEADER_FILE "snapshot"
#define SNAPSHOT_MEMORY_FILE "memory"
#define SNAPSHOT_STATE_FILE "state"
#define SNAPSHOT_CONFIG_FILE "config"

struct snapshot_header {
	uint32_t version;
	uint64_t mem;
	uint32_t cpus;
	uint64_t state_size;
	uint32_t state_crc;
	uint64_t disk_size[CONFIG_MAX_DISKS];
	bool disk_present[CONFIG_MAX_DISKS];
};

void snapshot_header_write(const struct snapshot_header *h, FILE *out);

/* Parses @len bytes of @text. Returns 0, or -EINVAL with the reason (and
 * line) in @err. */
__attribute__((warn_unused_result))
int snapshot_header_parse(const char *text, size_t len, struct snapshot_header *h,
			  char *err, size_t err_len);

#endif
