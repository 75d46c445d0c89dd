/* Logging: every line names the VM and the component that speaks.
 *
 * No global state: a struct logger hangs off each VM and is passed to devices
 * at creation. Lines go to the logger's sink when it has one, else to its fd
 * (stderr by default; -1 drops them) with one write(2) each, so lines from
 * vCPU threads never interleave mid-line. */
#ifndef KVMRUN_LOG_H
#define KVMRUN_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Receives each formatted line (no '\n') instead of the fd. Called from
 * whichever thread logs (vCPU threads included), so it must be
 * thread-safe; @line is valid during the call only. */
typedef void (*log_sink)(void *cookie, enum log_level level, const char *line);

struct logger {
	enum log_level level;
	int fd;              /* -1: lines are dropped (unless sink) */
	const char *vm_name; /* borrowed; may be NULL */
	log_sink sink;       /* NULL: write to fd */
	void *sink_cookie;
};

/* For messages about guest misbehaviour, which a hostile guest could
 * otherwise use to flood the host's log: at most one line per interval,
 * with a count of what was suppressed. Owned by the device that logs. */
struct log_ratelimit {
	uint64_t last_ns;
	unsigned suppressed;
};

/* @level, stderr, @vm_name and no sink. */
void log_init(struct logger *lg, enum log_level level, const char *vm_name);

__attribute__((format(printf, 4, 5)))
void log_msg(const struct logger *lg, enum log_level level, const char *who,
	     const char *fmt, ...);

/* Logs at WARN unless a line went out through @rl in the last second. */
__attribute__((format(printf, 4, 5)))
void log_ratelimited(const struct logger *lg, struct log_ratelimit *rl,
		     const char *who, const char *fmt, ...);

const char *log_level_name(enum log_level level);
/* Returns 0 and sets *out, or -EINVAL for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);

#define log_err(lg, who, ...)   log_msg((lg), LOG_ERROR, (who), __VA_ARGS__)
#define log_warn(lg, who, ...)  log_msg((lg), LOG_WARN, (who), __VA_ARGS__)
#define log_info(lg, who, ...)  log_msg((lg), LOG_INFO, (who), __VA_ARGS__)
#define log_debug(lg, who, ...) log_msg((lg), LOG_DEBUG, (who), __VA_ARGS__)

#endif
