/* Config parser tests. Without arguments: the unit tests. With one argument
 * (the configs/ directory of the source tree): the golden test of the
 * example configs, each loading and validating with no error and
 * round-tripping through config_print. */
#define UNIT_CONFIG_CAPTURE /* unit.h: struct capture, cap_open() */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/config.h"
#include "unit.h"

static char tmpdir[64];

/* Writes @len bytes to tmpdir/@name and returns its path (static buffer). */
static const char *write_file(const char *name, const void *data, size_t len)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return path;
	CHECK_EQ(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static int load_text(struct vm_config *c, const char *text, struct capture *cap)
{
	return config_load_file(c, write_file("t.conf", text, strlen(text)), &cap->d);
}

/* config_print into a malloc'd string. */
static char *print_str(const struct vm_config *c)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	config_print(c, f);
	fclose(f);
	return s;
}

/* print -> load -> print gives the same text and no errors. */
static void check_round_trip(const struct vm_config *c)
{
	struct vm_config c2;
	struct capture cap;
	char *a = print_str(c);

	config_init(&c2);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c2, write_file("rt.conf", a, strlen(a)), &cap.d), 0);
	CHECK_STREQ(cap_text(&cap), "");
	char *b = print_str(&c2);
	CHECK_STREQ(a, b);
	free(a);
	free(b);
	cap_close(&cap);
	config_free(&c2);
}

static void test_sizes(void)
{
	uint64_t v = 7;
	CHECK_EQ(config_parse_size("512", &v), 0);
	CHECK_EQ(v, 512);
	CHECK_EQ(config_parse_size("64K", &v), 0);
	CHECK_EQ(v, 64 << 10);
	CHECK_EQ(config_parse_size("128M", &v), 0);
	CHECK_EQ(v, 128 << 20);
	CHECK_EQ(config_parse_size("2g", &v), 0);
	CHECK_EQ(v, 2ull << 30);
	CHECK_EQ(config_parse_size("1T", &v), 0);
	CHECK_EQ(v, 1ull << 40);
	CHECK_EQ(config_parse_size("16MiB", &v), 0);
	CHECK_EQ(v, 16 << 20);
	CHECK_EQ(config_parse_size("16MB", &v), 0);
	CHECK_EQ(v, 16 << 20);
	CHECK_EQ(config_parse_size("100B", &v), 0);
	CHECK_EQ(v, 100);
	CHECK_EQ(config_parse_size("0", &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(config_parse_size("16777215T", &v), 0);
	CHECK_EQ(v, 16777215ull << 40);

	v = 7;
	CHECK_EQ(config_parse_size("99999999999T", &v), -ERANGE);
	CHECK_EQ(config_parse_size("16777216T", &v), -ERANGE);
	CHECK_EQ(config_parse_size("99999999999999999999999", &v), -ERANGE);
	CHECK_EQ(config_parse_size("", &v), -EINVAL);
	CHECK_EQ(config_parse_size("12Q", &v), -EINVAL);
	CHECK_EQ(config_parse_size("-1", &v), -EINVAL);
	CHECK_EQ(config_parse_size("M", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1.5G", &v), -EINVAL);
	CHECK_EQ(config_parse_size(" 1G", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1G ", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1iB", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1GiBB", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1Gb", &v), -EINVAL);
	CHECK_EQ(v, 7);
}

static void test_uint_bool(void)
{
	uint64_t v = 3;
	bool b = false;
	CHECK_EQ(config_parse_uint("42", 100, &v), 0);
	CHECK_EQ(v, 42);
	CHECK_EQ(config_parse_uint("101", 100, &v), -ERANGE);
	CHECK_EQ(config_parse_uint("-1", 100, &v), -EINVAL);
	CHECK_EQ(config_parse_uint("+1", 100, &v), -EINVAL);
	CHECK_EQ(config_parse_uint("", 100, &v), -EINVAL);
	CHECK_EQ(config_parse_uint("4x", 100, &v), -EINVAL);
	CHECK_EQ(config_parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	CHECK_EQ(config_parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);

	static const char *const yes[] = { "on", "yes", "true", "1", "ON", "Yes" };
	static const char *const no[] = { "off", "no", "false", "0", "OFF", "False" };
	for (size_t i = 0; i < 6; i++) {
		b = false;
		CHECK_EQ(config_parse_bool(yes[i], &b), 0);
		CHECK(b);
		CHECK_EQ(config_parse_bool(no[i], &b), 0);
		CHECK(!b);
	}
	CHECK_EQ(config_parse_bool("", &b), -EINVAL);
	CHECK_EQ(config_parse_bool("2", &b), -EINVAL);
	CHECK_EQ(config_parse_bool("onn", &b), -EINVAL);
	CHECK_EQ(config_parse_bool("o", &b), -EINVAL);
}

static void test_mac(void)
{
	uint8_t m[6] = { 0 };
	CHECK_EQ(config_parse_mac("52:54:00:12:AB:cd", m), 0);
	CHECK_EQ(m[0], 0x52);
	CHECK_EQ(m[4], 0xab);
	CHECK_EQ(m[5], 0xcd);
	static const char *const bad[] = {
		"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54:00:12:34:5", "52-54-00-12-34-56",
		"52:54:00:12:34:5g", "525400123456", "52:54:00:12:34:56 ", ":52:54:00:12:34:5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(config_parse_mac(bad[i], m), -EINVAL);
	CHECK_EQ(m[0], 0x52);
}

/* Every key, with a value that must be rejected. */
static const struct { const char *key, *bad; } bad_values[] = {
	{ "cpus", "0" }, { "cpus", "65" }, { "cpus", "two" },
	{ "cpu_affinity", "0-3," }, { "cpu_affinity", "3-1" }, { "cpu_affinity", "0,0" },
	{ "cpu_affinity", "0-64" }, { "cpu_topology", "1:2" }, { "cpu_topology", "1:0:1" },
	{ "cpu_topology", "a:b:c" }, { "cpu_topology", "1:2:3:4" },
	{ "mem", "12Q" }, { "mem", "-1" }, { "mem", "" }, { "mem", "99999999999T" },
	{ "mem_hugepages", "4M" }, { "mem_numa_node", "-1" }, { "mem_numa_node", "x" },
	{ "mem_prefault", "maybe" }, { "mem_thp", "" }, { "mem_merge", "2" },
	{ "serial", "tty" }, { "serial", "file:" }, { "balloon", "y" },
	{ "balloon.stats_period", "-5" }, { "balloon.free_page_reporting", "x" },
	{ "balloon.deflate_on_oom", "x" }, { "transport", "isa" }, { "timeout", "1h" },
	{ "on_reboot", "shutdown" }, { "debug_exit", "x" }, { "log_level", "trace" },
	{ "drop_caps", "x" }, { "name", "my vm" }, { "name", "" }, { "name", "a/b" },
	{ "name", "01234567890123456789012345678901234567890123456789012345678901234" },
	{ "disk0.readonly", "x" }, { "disk1.cache", "writethrough" }, { "disk2.io", "aio" },
	{ "disk3.queues", "65" }, { "disk3.submit_batch", "0" },
	{ "disk3.submit_batch", "257" }, { "disk4.serial", "012345678901234567890" },
	{ "net0.tap", "a-very-long-tap-name" }, { "net0.tap", "a/b" },
	{ "net1.mac", "52:54:00:12:34" }, { "net1.mac", "01:00:5e:00:00:01" },
	{ "net1.mac", "00:00:00:00:00:00" }, { "net2.vhost", "maybe" },
	{ "net3.queues", "0" }, { "net3.queues", "17" }, { "net0.mtu", "67" },
	{ "net0.mtu", "65536" },
};

static void test_bad_values(void)
{
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		struct vm_config c;
		struct capture cap;
		char want[128];
		config_init(&c);
		cap_open(&cap);
		CHECK_EQ(config_set(&c, bad_values[i].key, bad_values[i].bad, "t.conf", 7, &cap.d), -EINVAL);
		CHECK_EQ(cap.d.errors, 1);
		snprintf(want, sizeof(want), "t.conf:7: %s: ", bad_values[i].key);
		const char *t = cap_text(&cap);
		if (strncmp(t, want, strlen(want)) != 0)
			fprintf(stderr, "  %s=%s\n", bad_values[i].key, bad_values[i].bad);
		CHECK(strncmp(t, want, strlen(want)) == 0);
		CHECK(strchr(t, '\n') == t + strlen(t) - 1); /* one line */
		/* a rejected value leaves the device absent and the default in place */
		CHECK(!c.disks[0].present && !c.nets[0].present && !c.nets[1].present);
		CHECK_EQ(c.cpus, 1);
		CHECK_EQ(c.mem, 128 << 20);
		CHECK_STREQ(c.name, "kvmrun");
		cap_close(&cap);
		config_free(&c);
	}
}

static void test_every_key(void)
{
	static const char text[] =
		"kernel=/k\ninitrd=/i\ncmdline=\"console=ttyS0 quiet\"\ncpus=4\n"
		"cpu_affinity=0-1,3,2\ncpu_topology=1:2:2\nmem=2G\nmem_hugepages=on\n"
		"mem_numa_node=1\nmem_prefault=yes\nmem_thp=true\nmem_merge=1\n"
		"serial=file:/tmp/s.log\nballoon=on\nballoon.stats_period=5\n"
		"balloon.free_page_reporting=on\nballoon.deflate_on_oom=on\n"
		"transport=mmio\ncontrol=/run/x.sock\ntimeout=30\non_reboot=restart\n"
		"debug_exit=on\nlog_level=debug\ndrop_caps=off\nname=vm-1.a_b\n"
		"disk7.path=/d\ndisk7.readonly=on\ndisk7.cache=writeback\ndisk7.io=sync\n"
		"disk7.queues=2\ndisk7.serial=SER1\ndisk7.submit_batch=32\n"
		"net3.tap=tap0\nnet3.mac=52:54:00:aa:bb:cc\nnet3.vhost=off\nnet3.queues=4\n"
		"net3.mtu=9000\n";
	struct vm_config c;
	struct capture cap;

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, text, &cap), 0);
	CHECK_STREQ(cap_text(&cap), "");
	CHECK_STREQ(c.kernel, "/k");
	CHECK_STREQ(c.initrd, "/i");
	CHECK_STREQ(c.cmdline, "console=ttyS0 quiet");
	CHECK_EQ(c.cpus, 4);
	CHECK_EQ(c.nr_cpu_affinity, 4);
	CHECK_EQ(c.cpu_affinity[2], 3);
	CHECK_EQ(c.cpu_affinity[3], 2);
	CHECK(c.topology_set);
	CHECK_EQ(c.sockets * 100 + c.cores * 10 + c.threads, 122);
	CHECK_EQ(c.mem, 2ull << 30);
	CHECK_EQ(c.mem_hugepages, HUGEPAGES_2M);
	CHECK_EQ(c.mem_numa_node, 1);
	CHECK(c.mem_prefault && c.mem_thp && c.mem_merge);
	CHECK_EQ(c.serial, SERIAL_FILE);
	CHECK_STREQ(c.serial_path, "/tmp/s.log");
	CHECK(c.balloon && c.balloon_free_page_reporting && c.balloon_deflate_on_oom);
	CHECK_EQ(c.balloon_stats_period, 5);
	CHECK_EQ(c.transport, TRANSPORT_MMIO);
	CHECK_STREQ(c.control, "/run/x.sock");
	CHECK_EQ(c.timeout, 30);
	CHECK_EQ(c.on_reboot, ON_REBOOT_RESTART);
	CHECK(c.debug_exit);
	CHECK_EQ(c.log_level, LOG_DEBUG);
	CHECK(!c.drop_caps);
	CHECK_STREQ(c.name, "vm-1.a_b");
	CHECK(c.disks[7].present && !c.disks[0].present);
	CHECK_STREQ(c.disks[7].path, "/d");
	CHECK(c.disks[7].readonly);
	CHECK_EQ(c.disks[7].cache, DISK_CACHE_WRITEBACK);
	CHECK_EQ(c.disks[7].io, DISK_IO_SYNC);
	CHECK_EQ(c.disks[7].queues, 2);
	CHECK_EQ(c.disks[7].submit_batch, 32);
	CHECK_EQ(c.disks[0].submit_batch, 2);
	CHECK_STREQ(c.disks[7].serial, "SER1");
	CHECK(c.nets[3].present && !c.nets[0].present);
	CHECK_STREQ(c.nets[3].tap, "tap0");
	CHECK(c.nets[3].mac_set);
	CHECK_EQ(c.nets[3].mac[5], 0xcc);
	CHECK_EQ(c.nets[3].vhost, NET_VHOST_OFF);
	CHECK_EQ(c.nets[3].queues, 4);
	CHECK_EQ(c.nets[3].mtu, 9000);
	check_round_trip(&c);
	cap_close(&cap);
	config_free(&c);
}

static void test_defaults(void)
{
	struct vm_config c;
	config_init(&c);
	CHECK_EQ(c.cpus, 1);
	CHECK_EQ(c.mem, 128 << 20);
	CHECK_EQ(c.mem_numa_node, -1);
	CHECK_EQ(c.nets[0].queues, 1);
	CHECK_EQ(c.nets[0].mtu, 1500);
	CHECK_EQ(c.disks[0].queues, 0);
	char *s = print_str(&c);
	static const char *const lines[] = {
		"kernel=\n", "cpus=1\n", "cpu_affinity=\n", "cpu_topology=auto\n", "mem=128M\n",
		"mem_hugepages=off\n", "mem_numa_node=none\n", "serial=stdio\n", "serial.max_size=1G\n",
		"transport=pci\n",
		"timeout=0\n", "on_reboot=exit\n", "debug_exit=off\n", "log_level=warn\n",
		"drop_caps=on\n", "name=kvmrun\n", "balloon=off\n", "balloon.stats_period=0\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		CHECK_HAS(s, lines[i]);
	CHECK(strstr(s, "disk") == NULL); /* absent devices are not printed */
	check_round_trip(&c);
	free(s);
	config_free(&c);
}

static void check_suggest(const char *key, const char *want)
{
	char buf[80];
	const char *got = config_suggest_key(key, buf, sizeof(buf));
	if (!want) {
		if (got)
			fprintf(stderr, "  %s -> %s\n", key, got);
		CHECK(got == NULL);
	} else {
		CHECK_STREQ(got, want);
	}
}

static void test_suggest(void)
{
	check_suggest("memory", "mem");
	check_suggest("cpu_afinity", "cpu_affinity");
	check_suggest("disk0.pth", "disk0.path");
	check_suggest("disk3.pth", "disk3.path");
	check_suggest("disk.path", "disk0.path");
	check_suggest("net2.mtuu", "net2.mtu");
	check_suggest("kernle", "kernel");
	check_suggest("Kernel", "kernel");
	check_suggest("cpsu", "cpus");
	check_suggest("log-level", "log_level");
	check_suggest("balloon.stats_perod", "balloon.stats_period");
	check_suggest("balloon.stats_period_seconds", "balloon.stats_period");
	check_suggest("zzzzzzzz", NULL);
	check_suggest("x", NULL);
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	check_suggest(big, NULL);

	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_set(&c, "memory", "1G", "t.conf", 2, &cap.d), -EINVAL);
	CHECK_EQ(config_set(&c, "disk3.pth", "/x", "t.conf", 3, &cap.d), -EINVAL);
	CHECK_EQ(config_set(&c, "qqqqqqqq", "1", "t.conf", 4, &cap.d), -EINVAL);
	CHECK_EQ(config_set(&c, "disk8.path", "/x", "t.conf", 5, &cap.d), -EINVAL);
	CHECK_EQ(config_set(&c, "net4.tap", "t", "t.conf", 6, &cap.d), -EINVAL);
	CHECK_EQ(cap.d.errors, 5);
	CHECK_HAS(cap_text(&cap), "t.conf:2: memory: unknown key, did you mean 'mem'?\n");
	CHECK_HAS(cap_text(&cap), "t.conf:3: disk3.pth: unknown key, did you mean 'disk3.path'?\n");
	CHECK_HAS(cap_text(&cap), "t.conf:4: qqqqqqqq: unknown key\n");
	CHECK_HAS(cap_text(&cap), "t.conf:5: disk8.path: index 8 is out of range: disk0 to disk7\n");
	CHECK_HAS(cap_text(&cap), "t.conf:6: net4.tap: index 4 is out of range: net0 to net3\n");
	CHECK(!c.disks[3].present);
	cap_close(&cap);
	config_free(&c);
}

/* vsock.*: values, round trip, and each error naming its key. */
static void test_vsock_keys(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\nvsock.cid=42\nvsock.backend=userspace\n"
			   "vsock.uds=/run/v.sock\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	CHECK_STREQ(cap_text(&cap), "");
	CHECK_EQ(c.vsock_cid, 42);
	CHECK_EQ(c.vsock_backend, VSOCK_BACKEND_USERSPACE);
	CHECK_STREQ(c.vsock_uds, "/run/v.sock");
	check_round_trip(&c);
	cap_close(&cap);
	config_free(&c);

	/* no vsock by default, printed as an empty vsock.cid= */
	config_init(&c);
	CHECK_EQ(c.vsock_cid, 0);
	CHECK_EQ(c.vsock_backend, VSOCK_BACKEND_AUTO);
	check_round_trip(&c);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "vsock.cid=2\nvsock.cid=4294967295\nvsock.backend=kernel\n", &cap),
		 -EINVAL);
	CHECK_HAS(cap_text(&cap), "t.conf:1: vsock.cid: 2 is not a guest CID");
	CHECK_HAS(cap_text(&cap), "use 3..4294967294");
	CHECK_HAS(cap_text(&cap), "t.conf:3: vsock.backend: 'kernel' is not one of: auto, vhost, "
		  "userspace");
	cap_close(&cap);
	config_free(&c);

	/* cross-key: uds without a device, userspace without uds, a path
	 * PATH_<port> would not fit */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\nvsock.uds=/run/v.sock\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "t.conf:2: vsock.uds: there is no vsock device: set vsock.cid");
	cap_close(&cap);
	config_free(&c);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\nvsock.cid=3\nvsock.backend=userspace\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "t.conf:3: vsock.backend: userspace needs vsock.uds=PATH");
	cap_close(&cap);
	config_free(&c);
	config_init(&c);
	cap_open(&cap);
	char text[256];
	snprintf(text, sizeof(text), "kernel=/k\nvsock.cid=3\nvsock.uds=/%0100d\n", 0);
	CHECK_EQ(load_text(&c, text, &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "vsock.uds: path longer than 96 bytes");
	cap_close(&cap);
	config_free(&c);
}

static void test_duplicate_and_collect(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "cpus=2\n# x\n\nmem=1G\ncpus=3\ndisk0.path=/a\ndisk0.path=/b\n", &cap),
		 -EINVAL);
	CHECK_EQ(cap.d.errors, 2);
	CHECK_HAS(cap_text(&cap), "t.conf:5: cpus: duplicate key (first set at line 1)\n");
	CHECK_HAS(cap_text(&cap), "t.conf:7: disk0.path: duplicate key (first set at line 6)\n");
	CHECK_EQ(c.cpus, 2); /* the first value stays */
	CHECK_STREQ(c.disks[0].path, "/a");
	cap_close(&cap);
	config_free(&c);

	/* three bad lines, three errors, and the good lines still apply */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "cpus=x\nmem=256M\nmem_thp=perhaps\nname=ok\nbogus_key=1\n", &cap),
		 -EINVAL);
	CHECK_EQ(cap.d.errors, 3);
	CHECK_HAS(cap_text(&cap), "t.conf:1: cpus: 'x' is not a number\n");
	CHECK_HAS(cap_text(&cap), "t.conf:3: mem_thp: 'perhaps' is not on or off\n");
	CHECK_HAS(cap_text(&cap), "t.conf:5: bogus_key: unknown key\n");
	CHECK_EQ(c.mem, 256 << 20);
	CHECK_STREQ(c.name, "ok");
	cap_close(&cap);
	config_free(&c);
}

static void test_overrides(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "cpus=2\nkernel=/k\ncmdline=a\ncpu_topology=1:2:1\n", &cap), 0);
	CHECK_EQ(config_apply_arg(&c, "cpus=4", 1, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, " cmdline = \"x y\" ", 2, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "kernel=rel/k", 3, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "initrd=", 4, &cap.d), 0);
	CHECK_STREQ(cap_text(&cap), "");
	CHECK_EQ(c.cpus, 4);
	CHECK_STREQ(c.cmdline, "x y");
	CHECK_STREQ(c.kernel, "rel/k"); /* command line: relative to the cwd, kept */
	CHECK(c.initrd == NULL);
	char *printed = print_str(&c), *cwd = getcwd(NULL, 0), want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "kernel=%s/rel/k\n", cwd);
	CHECK_HAS(printed, want); /* printed as the effective, absolute path */
	check_round_trip(&c);
	free(printed);
	free(cwd);

	CHECK_EQ(config_apply_arg(&c, "cpus=8", 5, &cap.d), -EINVAL);
	CHECK_EQ(config_apply_arg(&c, "verbose", 6, &cap.d), -EINVAL);
	CHECK_EQ(config_apply_arg(&c, "", 7, &cap.d), -EINVAL);
	CHECK_EQ(config_apply_arg(&c, "=3", 8, &cap.d), -EINVAL);
	CHECK_EQ(config_apply_arg(&c, "mem=lots", 9, &cap.d), -EINVAL);
	CHECK_EQ(cap.d.errors, 5);
	CHECK_HAS(cap_text(&cap), "<command line>:5: cpus: duplicate key (first set at argument 1)\n");
	CHECK_HAS(cap_text(&cap), "<command line>:6: verbose: expected key=value\n");
	CHECK_HAS(cap_text(&cap), "<command line>:7: \"\": expected key=value\n");
	CHECK_HAS(cap_text(&cap), "<command line>:8: \"\": empty key before '='\n");
	CHECK_HAS(cap_text(&cap), "<command line>:9: mem: 'lots' is not a size like 512M or 2G\n");
	CHECK_EQ(c.cpus, 4);

	/* validation names where each key came from */
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap),
		  "t.conf:4: cpu_topology: 1:2:1 makes 2 CPUs but cpus=4 (set at <command line>:1)\n");
	cap_close(&cap);
	config_free(&c);
}

static void test_quotes(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c,
		"cmdline = \"a \\\"b\\\" c\\\\d\\te\\x01\"   \n"
		"control=/run/x#y\n"
		"  # indented comment\n"
		"initrd=/p # not a comment\n"
		"disk0.serial=\"\"\n"
		"disk0.path=\"/a b\"\n"
		"serial=file:/l o g\n", &cap), 0);
	CHECK_STREQ(cap_text(&cap), "");
	CHECK_STREQ(c.cmdline, "a \"b\" c\\d\te\x01");
	CHECK_STREQ(c.control, "/run/x#y");
	CHECK_STREQ(c.initrd, "/p # not a comment");
	CHECK(c.disks[0].serial == NULL);
	CHECK_STREQ(c.disks[0].path, "/a b");
	check_round_trip(&c);
	char *s = print_str(&c);
	CHECK_HAS(s, "cmdline=\"a \\\"b\\\" c\\\\d\\te\\x01\"\n");
	CHECK_HAS(s, "disk0.path=\"/a b\"\n");
	CHECK_HAS(s, "serial=\"file:/l o g\"\n");
	CHECK_HAS(s, "control=/run/x#y\n");
	free(s);
	cap_close(&cap);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "cmdline=\"abc\nkernel=\"/k\" x\ninitrd=\"\\q\"\nname=\"\\x00\"\n",
			   &cap), -EINVAL);
	CHECK_EQ(cap.d.errors, 4);
	CHECK_HAS(cap_text(&cap), "t.conf:1: cmdline: unterminated quote\n");
	CHECK_HAS(cap_text(&cap), "t.conf:2: kernel: text after the closing quote\n");
	CHECK_HAS(cap_text(&cap), "t.conf:3: initrd: unknown escape");
	CHECK_HAS(cap_text(&cap), "t.conf:4: name: \\x needs two hex digits");
	cap_close(&cap);
	config_free(&c);
}

static void test_weird_input(void)
{
	struct vm_config c;
	struct capture cap;

	/* NUL bytes, CRLF, non-UTF-8, no trailing newline */
	static const char text[] = "cpus=2\r\nna\0me=x\nmem=\xff\xfe\r\n# \0 in a comment\n"
				   "\xc3\x28=1\r\nname=\"caf\xc3\xa9\"\r\ncmdline=\xe2\x82\xac x\r\nkernel=/k";
	config_init(&c);
	cap_open(&cap);
	const char *path = write_file("w.conf", text, sizeof(text) - 1);
	CHECK_EQ(config_load_file(&c, path, &cap.d), -EINVAL);
	CHECK_EQ(cap.d.errors, 4);
	CHECK_HAS(cap_text(&cap), "w.conf:2: na: line contains a NUL byte\n");
	CHECK_HAS(cap_text(&cap), "w.conf:3: mem: '?" "?' is not a size like 512M or 2G\n");
	CHECK_HAS(cap_text(&cap), "w.conf:5: ?(: unknown key\n");
	CHECK_HAS(cap_text(&cap), "w.conf:6: name: 'caf?" "?' may only contain");
	CHECK_EQ(c.cpus, 2);
	CHECK_STREQ(c.cmdline, "\xe2\x82\xac x");
	CHECK_STREQ(c.kernel, "/k");
	check_round_trip(&c);
	cap_close(&cap);
	config_free(&c);

	/* a line over 64 KiB: one error, the next line still parses */
	size_t n = CONFIG_MAX_LINE + 1000;
	char *big = malloc(n + 32);
	memcpy(big, "cmdline=", 8);
	memset(big + 8, 'x', n - 8);
	strcpy(big + n, "\ncpus=3\n");
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, big, &cap), -EINVAL);
	CHECK_EQ(cap.d.errors, 1);
	CHECK_HAS(cap_text(&cap), "t.conf:1: cmdline: line is longer than 65536 bytes\n");
	CHECK_EQ(c.cpus, 3);
	CHECK(c.cmdline == NULL);
	cap_close(&cap);
	config_free(&c);

	/* just under the limit is fine */
	big[CONFIG_MAX_LINE] = '\0';
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, big, &cap), 0);
	CHECK_EQ(strlen(c.cmdline), CONFIG_MAX_LINE - 8);
	cap_close(&cap);
	config_free(&c);
	free(big);

	/* a file over the size limit stops with one error */
	size_t fn = CONFIG_MAX_FILE_SIZE + 10;
	char *huge = malloc(fn + 1);
	for (size_t i = 0; i < fn; i++)
		huge[i] = i % 8 == 7 ? '\n' : '#';
	huge[fn] = '\0';
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, huge, &cap), -EINVAL);
	CHECK_EQ(cap.d.errors, 1);
	CHECK_HAS(cap_text(&cap), "t.conf: file is larger than");
	cap_close(&cap);
	config_free(&c);
	free(huge);

	/* odd shapes */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "=\n==\n   \t \r\nkernel\n\n\r\n", &cap), -EINVAL);
	CHECK_EQ(cap.d.errors, 3);
	CHECK_HAS(cap_text(&cap), "t.conf:1: \"\": empty key before '='\n");
	CHECK_HAS(cap_text(&cap), "t.conf:4: kernel: expected key=value\n");
	cap_close(&cap);
	config_free(&c);

	/* an empty file is a valid (all-defaults) file */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "", &cap), 0);
	cap_close(&cap);
	config_free(&c);
}

static void test_missing_file(void)
{
	struct vm_config c;
	struct capture cap;
	char path[PATH_MAX];

	config_init(&c);
	cap_open(&cap);
	snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
	CHECK_EQ(config_load_file(&c, path, &cap.d), -EINVAL);
	CHECK_EQ(config_load_file(&c, tmpdir, &cap.d), -EINVAL);
	CHECK_EQ(cap.d.errors, 2);
	CHECK_HAS(cap_text(&cap), "nope.conf: cannot open: No such file or directory\n");
	CHECK_HAS(cap_text(&cap), ": cannot read: Is a directory\n");
	cap_close(&cap);
	config_free(&c);
}

static void test_relative_paths(void)
{
	struct vm_config c;
	struct capture cap;
	char sub[PATH_MAX], path[PATH_MAX + 16], want[PATH_MAX + 32], real[PATH_MAX];
	static const char text[] =
		"kernel=k.elf\ninitrd=../i.img\ncontrol=/abs.sock\nserial=file:log/s.txt\n"
		"disk0.path=d.img\n";

	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	CHECK_EQ(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/r.conf", sub);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	CHECK(realpath(sub, real) != NULL);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path, &cap.d), 0);
	snprintf(want, sizeof(want), "%s/k.elf", real);
	CHECK_STREQ(c.kernel, want);
	snprintf(want, sizeof(want), "%s/../i.img", real);
	CHECK_STREQ(c.initrd, want);
	CHECK_STREQ(c.control, "/abs.sock");
	snprintf(want, sizeof(want), "%s/log/s.txt", real);
	CHECK_STREQ(c.serial_path, want);
	snprintf(want, sizeof(want), "%s/d.img", real);
	CHECK_STREQ(c.disks[0].path, want);
	check_round_trip(&c);

	/* config_set and the command line keep paths as given */
	CHECK_EQ(config_set(&c, "initrd", "x.img", "api", 1, &cap.d), 0);
	CHECK_STREQ(c.initrd, "x.img");
	CHECK_STREQ(cap_text(&cap), "");
	cap_close(&cap);
	config_free(&c);
	unlink(path);
	rmdir(sub);
}

static void test_validate(void)
{
	struct vm_config c;
	struct capture cap;

	/* a minimal config is valid; topology defaults to 1:cpus:1 */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\ncpus=3\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	CHECK_EQ(c.sockets, 1);
	CHECK_EQ(c.cores, 3);
	CHECK_EQ(c.threads, 1);
	CHECK_STREQ(cap_text(&cap), "");
	cap_close(&cap);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c,
		"cpus=2\n"
		"cpu_topology=2:2:1\n"
		"cpu_affinity=0\n"
		"mem=8M\n"
		"disk1.readonly=on\n"
		"net2.mtu=9000\n"
		"disk0.path=/img\n"
		"disk2.path=/img\n"
		"net0.tap=tap0\n"
		"net1.tap=tap0\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	const char *t = cap_text(&cap);
	CHECK_HAS(t, "(default): kernel: no kernel given; set kernel=PATH\n");
	CHECK_HAS(t, "t.conf:2: cpu_topology: 2:2:1 makes 4 CPUs but cpus=2 (set at ");
	CHECK_HAS(t, "t.conf:3: cpu_affinity: lists 1 host CPUs but cpus=2 (set at ");
	CHECK_HAS(t, "t.conf:4: mem: 8M is less than the minimum 16M\n");
	CHECK_HAS(t, "t.conf:5: disk1.readonly: disk1 has no disk1.path\n");
	CHECK_HAS(t, "t.conf:6: net2.mtu: net2 has no net2.tap\n");
	CHECK_HAS(t, "t.conf:8: disk2.path: same image as disk0 (and not both readonly)\n");
	CHECK_HAS(t, "t.conf:10: net1.tap: tap tap0 is already used by net0\n");
	CHECK_EQ(cap.d.errors, 8);
	cap_close(&cap);
	config_free(&c);

	/* hugepage alignment, offline CPUs, values set behind the parser's back */
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\nmem=1025M\nmem_hugepages=1G\ncpu_affinity=0,65535\n", &cap), 0);
	c.nets[0].present = true;
	c.nets[0].tap = strdup("t0");
	c.nets[0].queues = 0;
	c.cpus = 0;
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	t = cap_text(&cap);
	CHECK_HAS(t, "t.conf:2: mem: 1025M is not a multiple of 1G (mem_hugepages, set at ");
	CHECK_HAS(t, "t.conf:4: cpu_affinity: host CPU 65535 is not online\n");
	CHECK_HAS(t, "(default): cpus: 0 is out of range 1..64\n");
	CHECK_HAS(t, "(default): net0.queues: 0 is out of range 1..16\n");
	cap_close(&cap);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\nmem=1023M\nmem_hugepages=2M\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "t.conf:2: mem: 1023M is not a multiple of 2M");
	CHECK_EQ(config_set(&c, "mem", "1G", "<command line>", 1, &cap.d), 0);
	cap.d.errors = 0;
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	cap_close(&cap);
	config_free(&c);
}

/* diskN.overlay, overlay_max, overlay_keep: values, printing, and the
 * combinations refused naming the key. */
static void test_overlay_keys(void)
{
	struct vm_config c;
	struct capture cap;

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\ndisk0.path=/base\ndisk0.overlay=memory\n"
			   "disk0.overlay_max=64M\ndisk1.path=/base\ndisk1.overlay=/o/d1\n"
			   "disk1.overlay_keep=on\ndisk2.path=/base\ndisk2.readonly=on\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	CHECK_STREQ(cap_text(&cap), "");
	CHECK_EQ(c.disks[0].overlay, OVERLAY_MEMORY);
	CHECK_EQ(c.disks[0].overlay_max, 64ull << 20);
	CHECK_EQ(c.disks[1].overlay, OVERLAY_FILE);
	CHECK_STREQ(c.disks[1].overlay_path, "/o/d1");
	CHECK(c.disks[1].overlay_keep && !c.disks[0].overlay_keep);
	CHECK_EQ(c.disks[2].overlay, OVERLAY_NONE);
	check_round_trip(&c);
	/* none takes an overlay away again */
	CHECK_EQ(config_set(&c, "disk1.overlay", "none", "api", 1, &cap.d), 0);
	CHECK_EQ(c.disks[1].overlay, OVERLAY_NONE);
	CHECK(c.disks[1].overlay_path == NULL);
	cap_close(&cap);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(load_text(&c, "kernel=/k\n"
			   "disk0.path=/a\ndisk0.readonly=on\ndisk0.overlay=memory\n"
			   "disk1.path=/b\ndisk1.overlay=memory\ndisk1.overlay_keep=on\n"
			   "disk2.path=/c\ndisk2.overlay_max=1G\n"
			   "disk3.path=/d\ndisk3.overlay=/d\n"
			   "disk4.path=/e\ndisk4.overlay=/o\ndisk5.path=/f\ndisk5.overlay=/o\n"
			   "disk6.path=/g\ndisk6.overlay=memory\ndisk6.overlay_max=100\n", &cap), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	const char *t = cap_text(&cap);
	CHECK_HAS(t, "t.conf:4: disk0.overlay: disk0.readonly=on takes no writes");
	CHECK_HAS(t, "t.conf:7: disk1.overlay_keep: on needs disk1.overlay=PATH (a memory overlay cannot be kept)");
	CHECK_HAS(t, "t.conf:9: disk2.overlay_max: bounds an overlay, but disk2.overlay is not set");
	CHECK_HAS(t, "t.conf:11: disk3.overlay: is the disk's own image, disk3.path");
	CHECK_HAS(t, "t.conf:15: disk5.overlay: is also disk4's overlay");
	CHECK_HAS(t, "t.conf:18: disk6.overlay_max: is less than one 4096-byte overlay block");
	CHECK_EQ(cap.d.errors, 6);
	cap_close(&cap);
	config_free(&c);
}

static void test_free_reuse(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(load_text(&c, "kernel=/k\nname=n\nserial=file:/s\nnet0.tap=t\n", &cap), 0);
		config_free(&c);
		CHECK(c.kernel == NULL);
		CHECK_STREQ(c.name, "kvmrun");
		CHECK_EQ(c.serial, SERIAL_STDIO);
	}
	CHECK_EQ(cap.d.errors, 0);
	cap_close(&cap);
}

/* The golden test: each example config loads, validates and round-trips. */
static int check_examples(const char *dir)
{
	static const char *const names[] = { "demo.conf", "ci-runner.conf", "bench.conf" };
	char path[PATH_MAX];

	unit.current = "examples";
	unit.tests++;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct vm_config c;
		struct capture cap;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		config_init(&c);
		cap_open(&cap);
		CHECK_EQ(config_load_file(&c, path, &cap.d), 0);
		CHECK_EQ(config_validate(&c, &cap.d), 0);
		CHECK_STREQ(cap_text(&cap), "");
		check_round_trip(&c);
		cap_close(&cap);
		config_free(&c);
	}
	return unit_done();
}

int main(int argc, char **argv)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kvmrun-config-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	int rc;
	if (argc > 1) {
		rc = check_examples(argv[1]);
	} else {
		RUN(test_sizes);
		RUN(test_uint_bool);
		RUN(test_mac);
		RUN(test_bad_values);
		RUN(test_every_key);
		RUN(test_defaults);
		RUN(test_suggest);
		RUN(test_duplicate_and_collect);
		RUN(test_vsock_keys);
		RUN(test_overrides);
		RUN(test_quotes);
		RUN(test_weird_input);
		RUN(test_missing_file);
		RUN(test_relative_paths);
		RUN(test_validate);
		RUN(test_overlay_keys);
		RUN(test_free_reuse);
		rc = unit_done();
	}
	static const char *const files[] = { "t.conf", "rt.conf", "w.conf" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
		unlink(p);
	}
	rmdir(tmpdir);
	return rc;
}
