/* A page allocator over the RAM in the start_info memory map, above this
 * image and clear of the boot data (start_info, memory map, command line).
 * Two ends: mem_alloc() hands out zeroed, identity-mapped pages from the
 * bottom (DMA buffers, rings); mem_top_take() takes single pages from the
 * top without touching them (a balloon's pages), mem_top_give() returns
 * the most recently taken one. The pages between the ends are free. */
#ifndef GUEST_MEM_H
#define GUEST_MEM_H

#include <stdbool.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull

/* Builds the range list; later calls do nothing. Returns false if the
 * memory map is missing (version-0 start_info) or holds no usable RAM. */
bool mem_init(void);
/* n contiguous zeroed pages below the identity-map limit; panics if none. */
void *mem_alloc(unsigned npages);
/* Physical address of the next page from the top, 0 when the ends meet. */
uint64_t mem_top_take(void);
/* Gives back the page that the last mem_top_take() returned; returns its
 * physical address (0 if nothing was taken). */
uint64_t mem_top_give(void);
/* RAM the allocator manages, and how much of it is still free. */
uint64_t mem_total_bytes(void);
uint64_t mem_free_bytes(void);
/* The i-th free extent [lo, hi) between the two ends (page aligned);
 * false once i is past the last one. */
bool mem_free_extent(unsigned i, uint64_t *lo, uint64_t *hi);

#endif
