/* What --check catches (vmm/config_host.c, and the checks of config_check.c
 * and config_file.c that keep a config that passes --check from failing at
 * start-up): files that are missing, directories or FIFOs, RAM beyond what
 * the host could ever back or address, an empty control=, more virtio-mmio
 * devices than interrupt lines, and a FIFO given as the config file, which
 * used to block kvmrun for ever. Host facts are given, not probed, so the
 * limits are tested on both sides of their boundaries. And the errors the
 * disk and tap set-up finds at start-up name the key they came from. */
#define UNIT_CONFIG_CAPTURE /* unit.h: struct capture, cap_open() */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/image.h"
#include "net/tap.h"
#include "unit.h"
#include "vmm/config.h"

static char dir[64];

static const char *path_of(const char *name)
{
	static char p[4][PATH_MAX];
	static unsigned next;
	char *s = p[next++ % 4];
	snprintf(s, PATH_MAX, "%s/%s", dir, name);
	return s;
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(path_of(name), "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Sets "key=value" lines (on the command line) into @c; 0 or -EINVAL. */
static int set_all(struct vm_config *c, struct capture *cap, const char *const *kv)
{
	int rc = 0;
	for (unsigned i = 0; kv[i]; i++)
		if (config_apply_arg(c, kv[i], i + 1, &cap->d) < 0)
			rc = -EINVAL;
	return rc;
}

static const struct config_host host = {
	.ram = 8ull << 30, .swap = 2ull << 30, .phys_bits = 40,
};

/* Loads @kv, validates it and checks it against @h; returns the errors. */
static unsigned check(const char *const *kv, const struct config_host *h, struct capture *cap)
{
	struct vm_config c;
	config_init(&c);
	cap_open(cap);
	if (set_all(&c, cap, kv) == 0 && config_validate(&c, &cap->d) == 0)
		(void)config_check_host(&c, h, &cap->d);
	config_free(&c);
	return cap->d.errors;
}

/* ---- files ---- */

static void test_boot_files(void)
{
	struct capture cap;
	char k[PATH_MAX + 16], rd[PATH_MAX + 16];
	write_file("kernel", "\177ELF");
	write_file("empty", "");
	mkdir(path_of("adir"), 0700);
	CHECK_EQ(mkfifo(path_of("fifo"), 0600), 0);

	snprintf(k, sizeof(k), "kernel=%s", path_of("kernel"));
	const char *good[] = { k, NULL };
	CHECK_EQ(check(good, &host, &cap), 0);
	CHECK_STREQ(cap_text(&cap), "");
	cap_close(&cap);

	static const struct { const char *file, *key, *want; } bad[] = {
		{ "missing", "kernel", "missing: No such file or directory\n" },
		{ "adir", "kernel", "adir is a directory, not a regular file\n" },
		{ "fifo", "kernel", "fifo is a FIFO, not a regular file\n" },
		{ "empty", "kernel", "empty is empty\n" },
		{ "missing", "initrd", "missing: No such file or directory\n" },
		{ "adir", "initrd", "adir is a directory, not a regular file\n" },
		{ "fifo", "initrd", "fifo is a FIFO, not a regular file\n" },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *kv[3] = { k, rd, NULL };
		if (strcmp(bad[i].key, "kernel") == 0) {
			snprintf(k, sizeof(k), "kernel=%s", path_of(bad[i].file));
			kv[1] = NULL;
		} else {
			snprintf(k, sizeof(k), "kernel=%s", path_of("kernel"));
			snprintf(rd, sizeof(rd), "initrd=%s", path_of(bad[i].file));
		}
		CHECK_EQ(check(kv, &host, &cap), 1);
		char want[PATH_MAX + 128];
		snprintf(want, sizeof(want), "<command line>:%d: %s: %s/%s", bad[i].key[0] == 'k' ? 1 : 2,
			 bad[i].key, dir, bad[i].want);
		CHECK_HAS(cap_text(&cap), want);
		cap_close(&cap);
	}
	/* /dev/null: a character device, which reads as empty for ever */
	const char *dev[] = { "kernel=/dev/null", NULL };
	CHECK_EQ(check(dev, &host, &cap), 1);
	CHECK_HAS(cap_text(&cap), "kernel: /dev/null is a character device, not a regular file\n");
	cap_close(&cap);
}

static void test_disk_files(void)
{
	struct capture cap;
	char k[PATH_MAX + 16], d0[PATH_MAX + 16], d1[PATH_MAX + 32];
	write_file("kernel", "\177ELF");
	write_file("disk.img", "");
	snprintf(k, sizeof(k), "kernel=%s", path_of("kernel"));

	snprintf(d0, sizeof(d0), "disk0.path=%s", path_of("disk.img"));
	const char *good[] = { k, d0, NULL };
	CHECK_EQ(check(good, &host, &cap), 0); /* an empty image is a disk of 0 sectors */
	cap_close(&cap);

	snprintf(d0, sizeof(d0), "disk0.path=%s", path_of("adir"));
	snprintf(d1, sizeof(d1), "disk3.path=%s", path_of("fifo"));
	const char *bad[] = { k, d0, d1, "disk5.path=/nonexistent/x.img", NULL };
	CHECK_EQ(check(bad, &host, &cap), 3);
	const char *t = cap_text(&cap);
	CHECK_HAS(t, ":2: disk0.path: ");
	CHECK_HAS(t, "/adir is a directory, not a regular file or a block device\n");
	CHECK_HAS(t, ":3: disk3.path: ");
	CHECK_HAS(t, "/fifo is a FIFO, not a regular file or a block device\n");
	CHECK_HAS(t, ":4: disk5.path: /nonexistent/x.img: No such file or directory\n");
	cap_close(&cap);

	/* a read-only file: fine as a readonly disk, not as a writable one
	 * (root may write anything, so only checked as another user) */
	if (geteuid() != 0) {
		write_file("ro.img", "");
		chmod(path_of("ro.img"), 0400);
		snprintf(d0, sizeof(d0), "disk0.path=%s", path_of("ro.img"));
		const char *ro[] = { k, d0, "disk0.readonly=on", NULL };
		CHECK_EQ(check(ro, &host, &cap), 0);
		cap_close(&cap);
		const char *rw[] = { k, d0, NULL };
		CHECK_EQ(check(rw, &host, &cap), 1);
		CHECK_HAS(cap_text(&cap), "Permission denied (it is opened read-write;");
		cap_close(&cap);
	}
}

/* ---- memory ---- */

static unsigned check_mem(const char *mem, const char *extra, struct capture *cap)
{
	char k[PATH_MAX + 16], m[64];
	snprintf(k, sizeof(k), "kernel=%s", path_of("kernel"));
	snprintf(m, sizeof(m), "mem=%s", mem);
	const char *kv[] = { k, m, extra, NULL };
	return check(kv, &host, cap);
}

static void test_mem_limits(void)
{
	struct capture cap;
	write_file("kernel", "\177ELF");
	/* RAM + swap = 10G: exactly that passes, a page more does not */
	CHECK_EQ(check_mem("10G", NULL, &cap), 0);
	cap_close(&cap);
	CHECK_EQ(check_mem("10485764K", NULL, &cap), 1);
	CHECK_HAS(cap_text(&cap), "<command line>:2: mem: 10485764K is more than this host could "
		  "ever back (8G of RAM and 2G of swap); mem_overcommit=on allows it\n");
	cap_close(&cap);
	/* hugepages do not swap: RAM alone */
	CHECK_EQ(check_mem("8G", "mem_hugepages=2M", &cap), 0);
	cap_close(&cap);
	CHECK_EQ(check_mem("8194M", "mem_hugepages=2M", &cap), 1);
	CHECK_HAS(cap_text(&cap), "mem: 8194M is more than this host could ever back "
		  "(8G of RAM; hugepages do not swap)");
	cap_close(&cap);
	/* the override lifts the host's size, not the address space: 40 bits
	 * (1T) hold RAM up to 1T - 1G (the MMIO hole) - one page */
	CHECK_EQ(check_mem("1000G", "mem_overcommit=on", &cap), 0);
	cap_close(&cap);
	CHECK_EQ(check_mem("1072693244K", "mem_overcommit=on", &cap), 0);
	cap_close(&cap);
	CHECK_EQ(check_mem("1072693248K", "mem_overcommit=on", &cap), 1);
	CHECK_HAS(cap_text(&cap), "mem: 1023G does not fit the guest-physical address "
		  "space of this host (40 address bits: at most 1022G of RAM)\n");
	cap_close(&cap);
	/* what the issue found passing: 16777215T (2^64 - 2^40) */
	CHECK_EQ(check_mem("16777215T", "mem_overcommit=on", &cap), 1);
	CHECK_HAS(cap_text(&cap), "mem: 16777215T does not fit the guest-physical address space");
	cap_close(&cap);
	CHECK_EQ(check_mem("16777215T", NULL, &cap), 1);
	cap_close(&cap);
	/* below the MMIO hole nothing is added */
	struct config_host tiny = { .ram = 1ull << 40, .phys_bits = 32 };
	char k[PATH_MAX + 16];
	snprintf(k, sizeof(k), "kernel=%s", path_of("kernel"));
	const char *at_hole[] = { k, "mem=3G", NULL };
	CHECK_EQ(check(at_hole, &tiny, &cap), 0);
	cap_close(&cap);
	const char *past_hole[] = { k, "mem=3076M", NULL };
	CHECK_EQ(check(past_hole, &tiny, &cap), 1); /* 4 GiB + 4 MiB: past 32 bits */
	cap_close(&cap);
}

static void test_probe(void)
{
	struct config_host h;
	CHECK_EQ(config_host_probe(&h), 0);
	CHECK(h.ram >= 16ull << 20);
	CHECK(h.phys_bits >= 32 && h.phys_bits <= 64);
}

/* ---- keys ---- */

static void test_control_key(void)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_apply_arg(&c, "control=", 1, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "<command line>:1: control: empty path; give a socket path, "
		  "or none for no control socket\n");
	CHECK(c.control == NULL);
	cap_close(&cap);
	config_free(&c);

	/* none turns off a control socket the file set */
	config_init(&c);
	cap_open(&cap);
	write_file("ctl.conf", "kernel=/k\ncontrol=vm.sock\n");
	CHECK_EQ(config_load_file(&c, path_of("ctl.conf"), &cap.d), 0);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/vm.sock", dir);
	CHECK_STREQ(c.control, want);
	CHECK_EQ(config_apply_arg(&c, "control=none", 1, &cap.d), 0);
	CHECK(c.control == NULL);
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	config_print(&c, f);
	fclose(f);
	CHECK_HAS(s, "\ncontrol=none\n");
	CHECK_HAS(s, "\nmem_overcommit=off\n");
	/* and what is printed loads again */
	write_file("printed.conf", s);
	free(s);
	config_free(&c);
	config_init(&c);
	CHECK_EQ(config_load_file(&c, path_of("printed.conf"), &cap.d), 0);
	CHECK(c.control == NULL);
	CHECK_STREQ(cap_text(&cap), "");
	cap_close(&cap);
	config_free(&c);
}

/* virtio-mmio has eight interrupt lines for virtio devices. */
static void test_mmio_devices(void)
{
	struct capture cap;
	const char *eight[] = { "kernel=/k", "transport=mmio", "disk0.path=/a", "disk1.path=/b",
				"disk2.path=/c", "disk3.path=/d", "disk4.path=/e", "disk5.path=/f",
				"net0.tap=t0", "balloon=on", NULL };
	struct vm_config c;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(set_all(&c, &cap, eight), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "net1.tap=t1", 11, &cap.d), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "<command line>:2: transport: mmio has interrupt lines for 8 virtio "
		  "devices but this VM has 9 (6 disks, 2 nets, a balloon); use transport=pci\n");
	CHECK_EQ(config_apply_arg(&c, "transport=pci", 12, &cap.d), -EINVAL); /* a duplicate */
	cap_close(&cap);
	config_free(&c);
	const char *pci[] = { "kernel=/k", "disk0.path=/a", "disk1.path=/b", "disk2.path=/c",
			      "disk3.path=/d", "disk4.path=/e", "disk5.path=/f", "disk6.path=/g",
			      "disk7.path=/h", "net0.tap=t0", "net1.tap=t1", "net2.tap=t2",
			      "net3.tap=t3", "balloon=on", NULL };
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(set_all(&c, &cap, pci), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	cap_close(&cap);
	config_free(&c);
}

/* ---- the parser's and validator's limits, each on both sides ---- */

static unsigned set_errors(const char *arg)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	(void)config_apply_arg(&c, arg, 1, &cap.d);
	unsigned n = cap.d.errors;
	cap_close(&cap);
	config_free(&c);
	return n;
}

/* Validates "kernel=/k" after @tweak changed the config behind the
 * parser's back (as a library user may); returns the errors. */
static unsigned validate_with(void (*tweak)(struct vm_config *c), const char *want)
{
	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_apply_arg(&c, "kernel=/k", 1, &cap.d), 0);
	tweak(&c);
	(void)config_validate(&c, &cap.d);
	unsigned n = cap.d.errors;
	if (want)
		CHECK_HAS(cap_text(&cap), want);
	cap_close(&cap);
	config_free(&c);
	return n;
}

static void cpus_64(struct vm_config *c) { c->cpus = 64; }
static void cpus_65(struct vm_config *c) { c->cpus = 65; }
static void mtu_68(struct vm_config *c)
{
	c->nets[0].present = true;
	c->nets[0].tap = strdup("t0");
	c->nets[0].queues = 1;
	c->nets[0].mtu = 68;
}
static void mtu_67(struct vm_config *c) { mtu_68(c); c->nets[0].mtu = 67; }
static void mtu_65536(struct vm_config *c) { mtu_68(c); c->nets[0].mtu = 65536; }

static void test_limits(void)
{
	CHECK_EQ(set_errors("net0.tap=abcdefghijklmno"), 0);   /* 15: IFNAMSIZ - 1 */
	CHECK_EQ(set_errors("net0.tap=abcdefghijklmnop"), 1);
	CHECK_EQ(set_errors("cpu_affinity=2-2"), 0);
	CHECK_EQ(set_errors("cpu_affinity=3-2"), 1);
	CHECK_EQ(set_errors("cpus=64"), 0);
	CHECK_EQ(set_errors("cpus=65"), 1);
	CHECK_EQ(set_errors("cpus=0"), 1);
	CHECK_EQ(validate_with(cpus_64, NULL), 0);
	CHECK_EQ(validate_with(cpus_65, "cpus: 65 is out of range 1..64"), 1);
	CHECK_EQ(validate_with(mtu_68, NULL), 0);
	CHECK_EQ(validate_with(mtu_67, "net0.mtu: 67 is out of range 68..65535"), 1);
	CHECK_EQ(validate_with(mtu_65536, "net0.mtu: 65536 is out of range"), 1);

	struct capture cap;
	const char *m16[] = { "kernel=/k", "mem=16M", NULL };
	struct vm_config c;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(set_all(&c, &cap, m16), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	CHECK_EQ(config_set(&c, "mem", "16380K", "later", 1, &cap.d), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "mem: 16380K is less than the minimum 16M");
	cap_close(&cap);
	config_free(&c);

	/* a socket path is at most 107 bytes */
	char ctl[160] = "control=/";
	memset(ctl + 9, 's', 106);
	ctl[9 + 106] = '\0';
	const char *c107[] = { "kernel=/k", ctl, NULL };
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(set_all(&c, &cap, c107), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);
	cap_close(&cap);
	config_free(&c);
	strcat(ctl, "s");
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(set_all(&c, &cap, c107), 0);
	CHECK_EQ(config_validate(&c, &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "control: path is 108 bytes; a socket path is at most 107");
	cap_close(&cap);
	config_free(&c);
}

/* A line of CONFIG_MAX_LINE bytes is read whole, one more is an error; a
 * file of CONFIG_MAX_FILE_SIZE bytes is read, one more is an error. */
static void test_file_limits(void)
{
	static char text[CONFIG_MAX_FILE_SIZE + 2];
	struct vm_config c;
	struct capture cap;
	size_t n = (size_t)snprintf(text, sizeof(text), "cmdline=");
	memset(text + n, 'x', CONFIG_MAX_LINE - n);
	strcpy(text + CONFIG_MAX_LINE, "\n");
	write_file("line.conf", text);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path_of("line.conf"), &cap.d), 0);
	CHECK_EQ(strlen(c.cmdline), CONFIG_MAX_LINE - n);
	cap_close(&cap);
	config_free(&c);
	memset(text + n, 'x', CONFIG_MAX_LINE + 1 - n);
	strcpy(text + CONFIG_MAX_LINE + 1, "\n");
	write_file("line.conf", text);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path_of("line.conf"), &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "line.conf:1: cmdline: line is longer than 65536 bytes\n");
	cap_close(&cap);
	config_free(&c);

	/* 16 comment lines of 64 KiB (with their newlines): exactly 1 MiB */
	for (size_t i = 0; i < CONFIG_MAX_FILE_SIZE; i += CONFIG_MAX_LINE) {
		memset(text + i, '#', CONFIG_MAX_LINE - 1);
		text[i + CONFIG_MAX_LINE - 1] = '\n';
	}
	text[CONFIG_MAX_FILE_SIZE] = '\0';
	write_file("big.conf", text);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path_of("big.conf"), &cap.d), 0);
	cap_close(&cap);
	config_free(&c);
	strcpy(text + CONFIG_MAX_FILE_SIZE, "\n");
	write_file("big.conf", text);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path_of("big.conf"), &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "big.conf: file is larger than 1048576 bytes; stopped reading at "
		  "line 17\n");
	cap_close(&cap);
	config_free(&c);
	unlink(path_of("line.conf"));
	unlink(path_of("big.conf"));
}

/* ---- the config file itself ---- */

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL: reading a FIFO config file blocked\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

/* A FIFO nobody writes used to block config_load_file() in fopen() for
 * ever; it is refused at once (the alarm turns a hang into a failure). */
static void test_fifo_config(void)
{
	struct vm_config c;
	struct capture cap;
	signal(SIGALRM, on_alarm);
	alarm(10);
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_load_file(&c, path_of("fifo"), &cap.d), -EINVAL);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s/fifo: cannot read: a FIFO, not a regular file\n", dir);
	CHECK_STREQ(cap_text(&cap), want);
	CHECK_EQ(config_load_file(&c, "/dev/null", &cap.d), -EINVAL);
	CHECK_HAS(cap_text(&cap), "/dev/null: cannot read: a character device, not a regular file\n");
	cap_close(&cap);
	config_free(&c);
	alarm(0);
}

/* ---- errors found at start-up name the key ---- */

/* What @lg wrote into the pipe @fd, NUL-terminated. */
static const char *drain_log(int fd)
{
	static char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_startup_errors_name_keys(void)
{
	int p[2];
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct logger lg = { .level = LOG_ERROR, .fd = p[1] };
	struct image img;
	char want[PATH_MAX + 64];

	CHECK_EQ(image_open(&img, "disk3", "/nonexistent/x.img", false, DISK_CACHE_WRITEBACK, &lg),
		 -ENOENT);
	CHECK_HAS(drain_log(p[0]), "disk3: disk3.path=/nonexistent/x.img: opening read-write: "
		  "No such file or directory\n");
	CHECK_EQ(image_open(&img, "disk0", path_of("adir"), true, DISK_CACHE_WRITEBACK, &lg),
		 -EINVAL);
	snprintf(want, sizeof(want), "disk0.path=%s: a directory, not a regular file or a block "
		 "device\n", path_of("adir"));
	CHECK_HAS(drain_log(p[0]), want);
	/* read-only, a FIFO nobody writes used to block the open for ever */
	signal(SIGALRM, on_alarm);
	alarm(10);
	CHECK_EQ(image_open(&img, "disk1", path_of("fifo"), true, DISK_CACHE_WRITEBACK, &lg),
		 -EINVAL);
	alarm(0);
	snprintf(want, sizeof(want), "disk1.path=%s: a FIFO, not a regular file or a block "
		 "device\n", path_of("fifo"));
	CHECK_HAS(drain_log(p[0]), want);
	write_file("ok.img", "0123456789abcdef");
	CHECK_EQ(image_open(&img, "disk2", path_of("ok.img"), false, DISK_CACHE_WRITEBACK, &lg), 0);
	CHECK_EQ(img.size, 16);
	CHECK(!(fcntl(img.fd, F_GETFL) & O_NONBLOCK)); /* I/O on the image blocks */
	image_close(&img);
	unlink(path_of("ok.img"));

	struct tap t;
	struct tap_params tp = { .name = "a-name-too-long-for-a-tap", .nr_queues = 1, .mtu = 1500 };
	CHECK_EQ(tap_open(&t, &tp, &lg, "net2"), -EINVAL);
	CHECK_HAS(drain_log(p[0]), "net2: net2.tap=a-name-too-long-for-a-tap: the name is empty or "
		  "longer than 15 bytes\n");
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kvmrun-check-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_boot_files);
	RUN(test_disk_files);
	RUN(test_mem_limits);
	RUN(test_probe);
	RUN(test_control_key);
	RUN(test_mmio_devices);
	RUN(test_limits);
	RUN(test_file_limits);
	RUN(test_fifo_config);
	RUN(test_startup_errors_name_keys);
	static const char *const files[] = { "kernel", "empty", "fifo", "disk.img", "ro.img",
					     "ctl.conf", "printed.conf" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(path_of(files[i]));
	rmdir(path_of("adir"));
	rmdir(dir);
	return unit_done();
}
