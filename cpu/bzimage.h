/* bzImage parsing and validation (Linux x86 boot protocol,
 * Documentation/arch/x86/boot.rst): the setup header at 0x1f1 of a kernel
 * file held in memory. Pure code, no guest memory: linux_boot.c loads what
 * this accepts.
 *
 * kvmrun enters through the 64-bit boot protocol only, so an image must
 * have protocol >= 2.06, LOADED_HIGH, and XLF_KERNEL_64 (which needs
 * protocol >= 2.12, where xloadflags appeared). */
#ifndef KVMRUN_BZIMAGE_H
#define KVMRUN_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Offsets in the file (and in the zero page, which embeds the header). */
#define BZ_HDR_START        0x1f1  /* first byte of the setup header */
#define BZ_HDR_END_MAX      0x290  /* the zero page's room for it */
#define BZ_OFF_SETUP_SECTS  0x1f1
#define BZ_OFF_SYSSIZE      0x1f4
#define BZ_OFF_BOOT_FLAG    0x1fe
#define BZ_OFF_JUMP         0x200
#define BZ_OFF_HEADER       0x202
#define BZ_OFF_VERSION      0x206
#define BZ_OFF_TYPE_OF_LOADER 0x210
#define BZ_OFF_LOADFLAGS    0x211
#define BZ_OFF_CODE32_START 0x214
#define BZ_OFF_RAMDISK_IMAGE 0x218
#define BZ_OFF_RAMDISK_SIZE 0x21c
#define BZ_OFF_HEAP_END_PTR 0x224
#define BZ_OFF_CMD_LINE_PTR 0x228
#define BZ_OFF_INITRD_ADDR_MAX 0x22c
#define BZ_OFF_KERNEL_ALIGNMENT 0x230
#define BZ_OFF_RELOCATABLE  0x234
#define BZ_OFF_MIN_ALIGNMENT 0x235
#define BZ_OFF_XLOADFLAGS   0x236
#define BZ_OFF_CMDLINE_SIZE 0x238
#define BZ_OFF_HW_SUBARCH   0x23c
#define BZ_OFF_PAYLOAD_OFFSET 0x248
#define BZ_OFF_PAYLOAD_LENGTH 0x24c
#define BZ_OFF_SETUP_DATA   0x250
#define BZ_OFF_PREF_ADDRESS 0x258
#define BZ_OFF_INIT_SIZE    0x260
#define BZ_HDR_MIN_END      0x264  /* a 2.12 header reaches past init_size */

#define BZ_BOOT_FLAG        0xaa55
#define BZ_HEADER_MAGIC     0x53726448u /* "HdrS" */
#define BZ_MIN_VERSION      0x0206
#define BZ_MIN_VERSION_64   0x020c

#define BZ_LOADED_HIGH      (1u << 0)
#define BZ_KEEP_SEGMENTS    (1u << 6)
#define BZ_CAN_USE_HEAP     (1u << 7)
#define BZ_XLF_KERNEL_64    (1u << 0)
#define BZ_XLF_CAN_BE_LOADED_ABOVE_4G (1u << 1)

enum bzimage_error {
	BZIMAGE_OK = 0,
	BZIMAGE_ERR_TRUNCATED_HEADER, /* file ends before the setup header does */
	BZIMAGE_ERR_BAD_BOOT_FLAG,    /* 0x1fe is not 0xAA55 */
	BZIMAGE_ERR_BAD_MAGIC,        /* 0x202 is not "HdrS" */
	BZIMAGE_ERR_OLD_PROTOCOL,     /* boot protocol < 2.06 */
	BZIMAGE_ERR_BAD_HEADER_END,   /* header end (0x202 + byte 0x201) too short or past the setup */
	BZIMAGE_ERR_TRUNCATED_SETUP,  /* file shorter than (setup_sects+1)*512 */
	BZIMAGE_ERR_EMPTY_KERNEL,     /* syssize is 0 */
	BZIMAGE_ERR_TRUNCATED_KERNEL, /* file shorter than setup + syssize*16 */
	BZIMAGE_ERR_NOT_LOADED_HIGH,  /* zImage: loadflags lacks LOADED_HIGH */
	BZIMAGE_ERR_NOT_64BIT,        /* protocol < 2.12 or XLF_KERNEL_64 clear */
	BZIMAGE_ERR_BAD_ALIGNMENT,    /* relocatable with kernel_alignment not a power of two */
	BZIMAGE_ERR_BAD_INIT_SIZE,    /* init_size is 0 */
	BZIMAGE_ERR_BAD_PAYLOAD,      /* payload runs past the protected-mode kernel */
};

struct bzimage_info {
	uint16_t version;          /* boot protocol, e.g. 0x020f */
	unsigned setup_sects;      /* effective (0 in the file means 4) */
	size_t hdr_end;            /* file offset just past the setup header */
	size_t kernel_offset;      /* protected-mode code: (setup_sects+1)*512 */
	size_t kernel_size;        /* syssize*16 */
	uint8_t loadflags;
	bool relocatable;
	uint32_t kernel_alignment;
	uint8_t min_alignment;     /* log2 */
	uint16_t xloadflags;
	uint32_t cmdline_size;     /* max command line length, without the NUL */
	uint32_t initrd_addr_max;  /* highest address the initrd may occupy */
	uint64_t pref_address;
	uint32_t init_size;        /* memory needed from the load address */
	uint32_t payload_offset, payload_length;
};

/* Parses and validates the bzImage in [buf, buf+len). On BZIMAGE_OK fills
 * *out; on error *out is unspecified. Never reads outside the buffer. */
enum bzimage_error bzimage_parse(const void *buf, size_t len, struct bzimage_info *out);

/* A one-line description of @err, for log lines. */
const char *bzimage_strerror(enum bzimage_error err);

#endif
