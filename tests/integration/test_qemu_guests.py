"""Boots the test guests (tests/guest/) under QEMU and checks what they
print and how they exit. This validates the guests themselves, so that a
kvmrun test failing on the same guest points at kvmrun."""
from __future__ import annotations

import sys

import guestrun
import kvmtest

TIMEOUT = 120


class Checker(kvmtest.Checker):
    def boot(self, name: str, guest: str, extra: list[str], append: str | None = None,
             machine: str = 'pc') -> guestrun.Result:
        r = guestrun.run_qemu(guestrun.guest(guest), extra, append, TIMEOUT, machine)
        self.check(name, not r.timed_out,
                   f'booted with -accel {r.accel}, finished in {r.wall:.1f}s', r)
        return r


def main() -> int:
    kvmtest.require_qemu_guests(('hello', 'smp', 'memtest'))
    c = Checker()

    # hello: greeting, the command line handed over by PVH, ACPI poweroff.
    r = c.boot('hello', 'hello', [], append='kvmrun-test greeting=1')
    c.line('hello', r, 'Hello from the kvmrun test guest')
    c.line('hello', r, 'cmdline: kvmrun-test greeting=1')
    c.line('hello', r, 'poweroff: acpi pm1a_cnt=0x604 slp_typ=0')
    c.status('hello', r, guestrun.STATUS_POWEROFF, 'ACPI S5 poweroff')

    # Without ACPI tables poweroff falls back to debug_exit(0).
    r = c.boot('hello-noacpi', 'hello', [], machine='pc,acpi=off')
    c.line('hello-noacpi', r, 'poweroff: debug-exit (no rsdp)')
    c.status('hello-noacpi', r, guestrun.STATUS_PASS, 'debug_exit(0)')

    # smp: CPU count from the MADT, both CPUs in long mode with their IDs.
    r = c.boot('smp', 'smp', ['-smp', '2'])
    c.line('smp', r, 'smp: expecting 2 cpus (from madt)')
    c.line('smp', r, 'cpu 0 apic_id=0 lapic_id=0')
    c.line('smp', r, 'cpu 1 apic_id=1 lapic_id=1')
    c.line('smp', r, 'smp: 2 of 2 cpus up')
    c.status('smp', r, guestrun.STATUS_POWEROFF, 'ACPI S5 poweroff')

    # smp without ACPI: CPU count from CPUID leaf 0xB.
    r = c.boot('smp-cpuid', 'smp', ['-smp', '2,sockets=1,cores=2'], machine='pc,acpi=off')
    c.line('smp-cpuid', r, 'smp: expecting 2 cpus (from cpuid)')
    c.line('smp-cpuid', r, 'smp: 2 of 2 cpus up')
    c.status('smp-cpuid', r, guestrun.STATUS_PASS, 'debug_exit(0)')

    # memtest: the e820 map from start_info and a clean pattern test.
    r = c.boot('memtest', 'memtest', ['-m', '256'])
    e820 = r.find(r'e820: 0x([0-9a-f]{16}) - 0x([0-9a-f]{16}) type (\d+)')
    c.check('memtest', any(int(m[1], 16) == 0x100000 and m[3] == '1' for m in e820),
            f'memory map has {len(e820)} entries, one of them RAM from 1 MiB', r)
    ram = r.find(r'memtest: ram=(\d+) MiB')
    c.check('memtest', bool(ram) and 250 <= int(ram[0][1]) <= 256,
            f'reports ram={ram[0][1] if ram else "?"} MiB for -m 256', r)
    ok = r.find(r'memtest: ok pages=(\d+)')
    c.check('memtest', bool(ok) and int(ok[0][1]) > 60000,
            f'pattern verified on {ok[0][1] if ok else "no"} pages', r)
    c.check('memtest', not r.find(r'memtest: FAIL.*'), 'no FAIL line', r)
    c.status('memtest', r, guestrun.STATUS_POWEROFF, 'ACPI S5 poweroff')

    return c.done()


if __name__ == '__main__':
    sys.exit(main())
