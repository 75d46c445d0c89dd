/* Reading the configuration: config files line by line (with the limits
 * config.h gives) and command-line arguments, both split into key and
 * value here and handed to config_set_at(). */
#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/config_priv.h"

/* ---- key=value ---------------------------------------------------------- */

static char *trim(char *s)
{
	while (config_is_blank(*s))
		s++;
	size_t n = strlen(s);
	while (n && config_is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}
/* Splits "key = value" in place into trimmed key and unquoted value.
 * Returns NULL or what is wrong; *key is always set (for the message). */
static const char *split_kv(char *s, char **key, char **val)
{
	char *eq = strchr(s, '=');
	if (!eq) {
		s = trim(s);
		s[strcspn(s, " \t")] = '\0';
		*key = s;
		return "expected key=value";
	}
	*eq = '\0';
	*key = trim(s);
	*val = trim(eq + 1);
	if (!**key)
		return "empty key before '='";
	return **val == '"' ? config_unquote(*val) : NULL;
}

/* ---- reading files ---------------------------------------------------------- */

struct reader {
	FILE *f;
	char *buf;            /* CONFIG_MAX_LINE + 1 bytes */
	size_t len, total;
	bool too_long, has_nul, too_big;
};

/* Reads one line (without '\n'), keeping at most CONFIG_MAX_LINE bytes.
 * Returns 1 for a line, 0 at the end or once the file is too big. */
static int reader_next(struct reader *r)
{
	bool any = false;
	int ch;

	r->len = 0;
	r->too_long = r->has_nul = false;
	while ((ch = getc(r->f)) != EOF) {
		any = true;
		if (++r->total > CONFIG_MAX_FILE_SIZE) {
			r->too_big = true;
			return 0;
		}
		if (ch == '\n')
			break;
		if (ch == '\0')
			r->has_nul = true;
		if (r->len < CONFIG_MAX_LINE)
			r->buf[r->len++] = (char)ch;
		else
			r->too_long = true;
	}
	r->buf[r->len] = '\0';
	return any;
}

static void parse_line(struct vm_config *c, const struct reader *rd, struct set_ctx *x)
{
	char *s = rd->buf, *key, *val;
	while (config_is_blank(*s))
		s++;
	if (*s == '#' || (!*s && !rd->has_nul && !rd->too_long))
		return;

	const char *why = split_kv(s, &key, &val);
	x->key = key;
	if (rd->has_nul)
		set_error(x, "line contains a NUL byte");
	else if (rd->too_long)
		set_error(x, "line is longer than %d bytes", CONFIG_MAX_LINE);
	else if (why)
		set_error(x, "%s", why);
	else
		config_set_at(c, key, val, x);
}

/* The absolute directory of @path, for resolving relative paths in it. */
static char *config_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return NULL;
	char *abs = realpath(dir, NULL);
	if (!abs)
		return dir;
	free(dir);
	return abs;
}

static void read_lines(struct vm_config *c, struct reader *rd, struct set_ctx *x)
{
	unsigned line = 0;
	while (reader_next(rd)) {
		x->line = ++line;
		parse_line(c, rd, x);
	}
	x->key = NULL;
	x->line = 0;
	if (rd->too_big)
		set_error(x, "file is larger than %d bytes; stopped reading at line %u",
			  CONFIG_MAX_FILE_SIZE, line + 1);
	else if (ferror(rd->f))
		set_error(x, "read error: %s", strerror(errno));
}

int config_load_file(struct vm_config *c, const char *path, struct config_diag *d)
{
	unsigned before = d->errors;
	struct set_ctx x = { .d = d, .file = path };
	struct reader rd = { 0 };
	struct stat st;

	/* O_NONBLOCK: opening a FIFO with no writer would block for ever;
	 * only a regular file is read (then in blocking mode again) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		set_error(&x, "cannot open: %s", strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0) {
		set_error(&x, "cannot read: fstat: %s", strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		set_error(&x, "cannot read: %s", strerror(EISDIR));
	} else if (!S_ISREG(st.st_mode)) {
		set_error(&x, "cannot read: %s, not a regular file", config_file_kind(st.st_mode));
	} else {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			set_error(&x, "cannot read: fcntl: %s", strerror(errno));
		else if (!(rd.f = fdopen(fd, "r")))
			set_error(&x, "cannot read: fdopen: %s", strerror(errno));
	}
	if (!rd.f) {
		close(fd);
		return -EINVAL;
	}
	rd.buf = malloc(CONFIG_MAX_LINE + 1);
	if (!rd.buf)
		set_error(&x, "out of memory");
	else {
		char *dir = config_dir(path);
		x.basedir = dir;
		read_lines(c, &rd, &x);
		free(dir);
	}
	free(rd.buf);
	fclose(rd.f);
	return d->errors > before ? -EINVAL : 0;
}

int config_apply_arg(struct vm_config *c, const char *arg, unsigned position,
		     struct config_diag *d)
{
	struct set_ctx x = { .d = d, .file = CONFIG_CMDLINE_FILE, .line = position };
	char *copy = strdup(arg), *key, *val;
	int r = -EINVAL;

	if (!copy) {
		set_error(&x, "out of memory");
		return -ENOMEM;
	}
	const char *why = split_kv(copy, &key, &val);
	x.key = key;
	if (why)
		set_error(&x, "%s", why);
	else
		r = config_set_at(c, key, val, &x) ? -EINVAL : 0;
	free(copy);
	return r;
}
