/* Boot-time register state of the boot CPU, from a loader's boot_entry. */
#ifndef KVMRUN_REGS_H
#define KVMRUN_REGS_H

#include "cpu/boot.h"
#include "mem/guest_mem.h"

/* Writes the boot GDT (and, for BOOT_LINUX64, identity page tables for the
 * first 4 GiB) into guest memory at the places mem/layout.h names. Call
 * once per boot, before regs_setup_boot_cpu(). */
__attribute__((warn_unused_result))
int regs_write_boot_tables(struct guest_mem *m, const struct boot_entry *b);

/* Sets the boot vCPU's general, segment, control and FPU registers for @b,
 * and its local APIC's LINT0/LINT1 for ExtINT/NMI. Returns 0 or -errno from
 * the failing ioctl (the caller names it). */
__attribute__((warn_unused_result))
int regs_setup_boot_cpu(int vcpu_fd, const struct boot_entry *b, const char **what);

/* Sets LINT0/LINT1 on any vCPU's local APIC (every vCPU, at creation). */
__attribute__((warn_unused_result))
int regs_setup_lapic(int vcpu_fd);

#endif
