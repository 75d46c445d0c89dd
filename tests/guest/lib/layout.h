/* Constants shared by the assembly boot code and C. */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

#define LOAD_ADDR 0x100000       /* the image is linked and loaded at 1 MiB */
#define BOOT_STACK_SIZE 0x4000   /* BSP stack, in .bss */
#define BOOT_MAP_GIB 4           /* the boot page tables map [0, 4 GiB) */
#define IDENTITY_MAP_GIB 8       /* paging_map_8g() extends it to [0, 8 GiB) */

/* GDT selectors (the same table for the BSP and the APs). */
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/* The AP real-mode trampoline is copied here; SIPI vector = page number. */
#define TRAMPOLINE_ADDR 0x8000
#define AP_STACK_SIZE 0x1000
#define AP_MAX 64

#endif
