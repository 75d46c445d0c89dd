#include "cpu/bzimage.h"

static uint16_t rd16(const uint8_t *b, size_t off)
{
	return (uint16_t)(b[off] | b[off + 1] << 8);
}

static uint32_t rd32(const uint8_t *b, size_t off)
{
	return (uint32_t)rd16(b, off) | (uint32_t)rd16(b, off + 2) << 16;
}

static uint64_t rd64(const uint8_t *b, size_t off)
{
	return (uint64_t)rd32(b, off) | (uint64_t)rd32(b, off + 4) << 32;
}

const char *bzimage_strerror(enum bzimage_error err)
{
	switch (err) {
	case BZIMAGE_OK: return "ok";
	case BZIMAGE_ERR_TRUNCATED_HEADER: return "file too short for a setup header";
	case BZIMAGE_ERR_BAD_BOOT_FLAG: return "no 0xAA55 boot flag at 0x1fe";
	case BZIMAGE_ERR_BAD_MAGIC: return "no \"HdrS\" magic at 0x202";
	case BZIMAGE_ERR_OLD_PROTOCOL: return "boot protocol older than 2.06";
	case BZIMAGE_ERR_BAD_HEADER_END: return "setup header end out of range";
	case BZIMAGE_ERR_TRUNCATED_SETUP: return "file shorter than its setup sectors";
	case BZIMAGE_ERR_EMPTY_KERNEL: return "syssize is 0: no protected-mode kernel";
	case BZIMAGE_ERR_TRUNCATED_KERNEL: return "file shorter than setup + syssize*16";
	case BZIMAGE_ERR_NOT_LOADED_HIGH: return "not a bzImage (LOADED_HIGH clear)";
	case BZIMAGE_ERR_NOT_64BIT: return "no 64-bit entry point (XLF_KERNEL_64 clear or protocol < 2.12)";
	case BZIMAGE_ERR_BAD_ALIGNMENT: return "kernel_alignment is not a power of two";
	case BZIMAGE_ERR_BAD_INIT_SIZE: return "init_size is 0";
	case BZIMAGE_ERR_BAD_PAYLOAD: return "payload lies outside the protected-mode kernel";
	}
	return "unknown bzImage error";
}

enum bzimage_error bzimage_parse(const void *buf, size_t len, struct bzimage_info *out)
{
	const uint8_t *b = buf;

	/* The boot flag and magic come first, so a file that is no bzImage
	 * at all says so rather than "truncated". */
	if (len < BZ_OFF_HEADER + 4)
		return BZIMAGE_ERR_TRUNCATED_HEADER;
	if (rd16(b, BZ_OFF_BOOT_FLAG) != BZ_BOOT_FLAG)
		return BZIMAGE_ERR_BAD_BOOT_FLAG;
	if (rd32(b, BZ_OFF_HEADER) != BZ_HEADER_MAGIC)
		return BZIMAGE_ERR_BAD_MAGIC;
	if (len < BZ_HDR_END_MAX)
		return BZIMAGE_ERR_TRUNCATED_HEADER;

	*out = (struct bzimage_info){0};
	out->version = rd16(b, BZ_OFF_VERSION);
	if (out->version < BZ_MIN_VERSION)
		return BZIMAGE_ERR_OLD_PROTOCOL;

	out->setup_sects = b[BZ_OFF_SETUP_SECTS] ? b[BZ_OFF_SETUP_SECTS] : 4;
	out->kernel_offset = ((size_t)out->setup_sects + 1) * 512;
	/* the jump at 0x200 is "jmp short": its displacement ends the header */
	out->hdr_end = BZ_OFF_HEADER + (size_t)b[BZ_OFF_JUMP + 1];
	if (out->hdr_end > out->kernel_offset)
		return BZIMAGE_ERR_BAD_HEADER_END;
	if (len < out->kernel_offset)
		return BZIMAGE_ERR_TRUNCATED_SETUP;

	uint32_t syssize = rd32(b, BZ_OFF_SYSSIZE);
	if (syssize == 0)
		return BZIMAGE_ERR_EMPTY_KERNEL;
	out->kernel_size = (size_t)syssize * 16;
	if (len - out->kernel_offset < out->kernel_size)
		return BZIMAGE_ERR_TRUNCATED_KERNEL;

	out->loadflags = b[BZ_OFF_LOADFLAGS];
	if (!(out->loadflags & BZ_LOADED_HIGH))
		return BZIMAGE_ERR_NOT_LOADED_HIGH;

	if (out->version < BZ_MIN_VERSION_64)
		return BZIMAGE_ERR_NOT_64BIT;
	if (out->hdr_end < BZ_HDR_MIN_END)
		return BZIMAGE_ERR_BAD_HEADER_END;
	out->xloadflags = rd16(b, BZ_OFF_XLOADFLAGS);
	if (!(out->xloadflags & BZ_XLF_KERNEL_64))
		return BZIMAGE_ERR_NOT_64BIT;

	out->relocatable = b[BZ_OFF_RELOCATABLE] != 0;
	out->kernel_alignment = rd32(b, BZ_OFF_KERNEL_ALIGNMENT);
	out->min_alignment = b[BZ_OFF_MIN_ALIGNMENT];
	if (out->relocatable && (out->kernel_alignment == 0 ||
				 (out->kernel_alignment & (out->kernel_alignment - 1))))
		return BZIMAGE_ERR_BAD_ALIGNMENT;

	out->cmdline_size = rd32(b, BZ_OFF_CMDLINE_SIZE);
	out->initrd_addr_max = rd32(b, BZ_OFF_INITRD_ADDR_MAX);
	out->pref_address = rd64(b, BZ_OFF_PREF_ADDRESS);
	out->init_size = rd32(b, BZ_OFF_INIT_SIZE);
	if (out->init_size == 0)
		return BZIMAGE_ERR_BAD_INIT_SIZE;

	out->payload_offset = rd32(b, BZ_OFF_PAYLOAD_OFFSET);
	out->payload_length = rd32(b, BZ_OFF_PAYLOAD_LENGTH);
	if (out->payload_length &&
	    ((uint64_t)out->payload_offset + out->payload_length > out->kernel_size))
		return BZIMAGE_ERR_BAD_PAYLOAD;
	return BZIMAGE_OK;
}
