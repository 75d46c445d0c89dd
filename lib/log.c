#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_init(struct logger *lg, enum log_level level, const char *vm_name)
{
	lg->level = level;
	lg->fd = STDERR_FILENO;
	lg->vm_name = vm_name;
	lg->sink = NULL;
	lg->sink_cookie = NULL;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_vmsg(const struct logger *lg, enum log_level level,
		     const char *who, const char *fmt, va_list ap)
{
	char line[1024];
	int n;
	if (lg->vm_name)
		n = snprintf(line, sizeof(line), "kvmrun[%s]: %s: %s: ",
			     lg->vm_name, log_level_name(level), who);
	else
		n = snprintf(line, sizeof(line), "kvmrun: %s: %s: ",
			     log_level_name(level), who);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (lg->sink) {
		line[n] = '\0';
		lg->sink(lg->sink_cookie, level, line);
		return;
	}
	if (lg->fd < 0)
		return;
	line[n++] = '\n';
	ssize_t r = write(lg->fd, line, (size_t)n);
	(void)r; /* nowhere left to report a failed log write */
}

void log_msg(const struct logger *lg, enum log_level level, const char *who,
	     const char *fmt, ...)
{
	if (level > lg->level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lg, level, who, fmt, ap);
	va_end(ap);
}

void log_ratelimited(const struct logger *lg, struct log_ratelimit *rl,
		     const char *who, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (rl->last_ns && now - rl->last_ns < 1000000000ull) {
		rl->suppressed++;
		return;
	}
	if (rl->suppressed)
		log_msg(lg, LOG_WARN, who, "%u similar messages suppressed", rl->suppressed);
	rl->last_ns = now;
	rl->suppressed = 0;
	if (LOG_WARN > lg->level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lg, LOG_WARN, who, fmt, ap);
	va_end(ap);
}
