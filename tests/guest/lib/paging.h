/* The identity map. The boot page tables (entry.S, initialised data, so
 * booting costs no page-table writes) map [0, 4 GiB) with 2 MiB pages,
 * 3-4 GiB uncached. Guests that need more call paging_map_8g(). */
#ifndef GUEST_PAGING_H
#define GUEST_PAGING_H

#include <stdint.h>

/* Extends the identity map to [0, 8 GiB) (write-back). Idempotent. */
void paging_map_8g(void);
/* End of the identity-mapped range: 4 GiB, or 8 GiB after paging_map_8g(). */
uint64_t paging_mapped_limit(void);

#endif
