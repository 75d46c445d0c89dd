#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/state.h"
#include "unit.h"

/* A file of two sections, written and read back. */
static size_t make_file(uint8_t **out)
{
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, "cpu.0", 2);
	state_put_u8(&w, 0xab);
	state_put_u16(&w, 0x1234);
	state_put_u32(&w, 0xdeadbeef);
	state_put_u64(&w, 0x0102030405060708ull);
	state_put_bool(&w, true);
	state_put_bytes(&w, "xyz", 3);
	state_section_end(&w);
	state_section_begin(&w, "uart", 1);
	state_put_u32(&w, 7);
	state_section_end(&w);
	const uint8_t *p;
	size_t len;
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	*out = malloc(len);
	memcpy(*out, p, len);
	state_w_free(&w);
	return len;
}

static void test_round_trip(void)
{
	uint8_t *buf;
	size_t len = make_file(&buf);
	char err[STATE_ERR_MAX];
	struct state_file f;
	CHECK_EQ(state_file_parse(buf, len, &f, err, sizeof(err)), 0);
	CHECK_EQ(f.nr_sections, 2);
	char name[STATE_NAME_MAX + 1];
	CHECK(state_section_name(&f, 1, name, sizeof(name)));
	CHECK(strcmp(name, "uart") == 0);
	CHECK(!state_section_name(&f, 2, name, sizeof(name)));

	struct state_r r;
	CHECK_EQ(state_section(&f, "cpu.0", 2, &r, err, sizeof(err)), 0);
	CHECK_EQ(r.version, 2);
	CHECK_EQ(state_get_u8(&r), 0xab);
	CHECK_EQ(state_get_u16(&r), 0x1234);
	CHECK_EQ(state_get_u32(&r), 0xdeadbeef);
	CHECK(state_get_u64(&r) == 0x0102030405060708ull);
	CHECK(state_get_bool(&r));
	char s[3];
	state_get_bytes(&r, s, 3);
	CHECK(memcmp(s, "xyz", 3) == 0);
	CHECK_EQ(state_r_finish(&r), 0);

	/* little-endian on disk, whatever the host */
	CHECK_EQ(buf[8], 1);
	CHECK_EQ(buf[12], 4);

	CHECK_EQ(state_section(&f, "cpu.0", 1, &r, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "version 2") != NULL);
	CHECK_EQ(state_section(&f, "cpu", 9, &r, err, sizeof(err)), -ENOENT);

	/* reading past the end fails once, names the section, returns zeroes */
	CHECK_EQ(state_section(&f, "uart", 1, &r, err, sizeof(err)), 0);
	CHECK_EQ(state_get_u32(&r), 7);
	CHECK(state_get_u64(&r) == 0);
	CHECK_EQ(state_r_finish(&r), -EINVAL);
	CHECK(strstr(r.err, "section uart: truncated") != NULL);

	/* bytes left unread are an error too */
	CHECK_EQ(state_section(&f, "uart", 1, &r, err, sizeof(err)), 0);
	CHECK_EQ(state_get_u16(&r), 7);
	CHECK_EQ(state_r_finish(&r), -EINVAL);

	/* range-checked getters */
	CHECK_EQ(state_section(&f, "uart", 1, &r, err, sizeof(err)), 0);
	CHECK_EQ(state_get_u32_max(&r, 6, "queue size"), 0);
	CHECK_EQ(state_r_finish(&r), -EINVAL);
	CHECK(strstr(r.err, "queue size is 7") != NULL);
	free(buf);
}

static void test_hostile(void)
{
	uint8_t *buf;
	size_t len = make_file(&buf);
	char err[STATE_ERR_MAX];
	struct state_file f;

	/* every truncation and every single-bit flip is refused */
	for (size_t n = 0; n < len; n++)
		CHECK_EQ(state_file_parse(buf, n, &f, err, sizeof(err)), -EINVAL);
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			buf[i] ^= (uint8_t)(1u << b);
			CHECK_EQ(state_file_parse(buf, len, &f, err, sizeof(err)), -EINVAL);
			buf[i] ^= (uint8_t)(1u << b);
		}
	}
	/* the messages say what is wrong */
	buf[0] = 'X';
	CHECK_EQ(state_file_parse(buf, len, &f, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "magic") != NULL);
	buf[0] = 'K';
	buf[8] = 9;
	CHECK_EQ(state_file_parse(buf, len, &f, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "format version 9") != NULL);
	buf[8] = 1;
	buf[12] = 1; buf[13] = 2; buf[14] = 3; buf[15] = 4;
	CHECK_EQ(state_file_parse(buf, len, &f, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "byte order") != NULL);
	free(buf);

	/* two sections of one name */
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, "a", 1);
	state_section_end(&w);
	state_section_begin(&w, "a", 1);
	state_section_end(&w);
	const uint8_t *p;
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, &f, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	state_w_free(&w);

	/* an open section cannot be sealed */
	state_w_init(&w);
	state_section_begin(&w, "a", 1);
	CHECK_EQ(state_w_finish(&w, &p, &len), -EINVAL);
	state_w_free(&w);
}

static void test_crc(void)
{
	/* the check value of CRC-32/IEEE */
	CHECK(state_crc32(0, "123456789", 9) == 0xcbf43926u);
	CHECK(state_crc32(state_crc32(0, "1234", 4), "56789", 5) == 0xcbf43926u);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_hostile);
	RUN(test_crc);
	return unit_done();
}
