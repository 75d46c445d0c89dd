#include "vmm/caps.h"

#include <cap-ng.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Threads of this process other than the caller (they keep their sets). */
static unsigned other_threads(void)
{
	DIR *dir = opendir("/proc/self/task");
	unsigned n = 0;
	if (!dir)
		return 0;
	for (struct dirent *e; (e = readdir(dir));)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n ? n - 1 : 0;
}

int caps_drop(const struct logger *lg, bool others_expected)
{
	if (capng_get_caps_process() < 0) {
		log_err(lg, "caps", "reading this process's capabilities failed");
		return -EIO;
	}
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE) {
		log_info(lg, "caps", "no capabilities held: nothing to drop");
		return 0;
	}
	char *held = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_PERMITTED);
	bool bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	int rc = capng_apply(bounds ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS);
	if (rc < 0 && bounds) {
		bounds = false;
		capng_clear(CAPNG_SELECT_ALL);
		rc = capng_apply(CAPNG_SELECT_CAPS);
	}
	if (rc == 0 && capng_get_caps_process() == 0 &&
	    capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
		rc = -1;
	if (rc < 0) {
		log_err(lg, "caps", "dropping capabilities (%s) failed (libcap-ng %d)",
			held ? held : "?", rc);
		free(held);
		return -EPERM;
	}
	log_info(lg, "caps", "dropped capabilities: %s; bounding set %s", held ? held : "?",
		 bounds ? "cleared" : "kept (no CAP_SETPCAP)");
	free(held);
	unsigned others = other_threads();
	if (others)
		log_msg(lg, others_expected ? LOG_INFO : LOG_WARN, "caps",
			"%u other thread%s keep%s their capabilities", others,
			others == 1 ? "" : "s", others == 1 ? "s" : "");
	return 0;
}
