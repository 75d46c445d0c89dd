"""Guest RAM: the memtest guest sees and can use all the RAM asked for
(below and above the 32-bit hole); RAM is bound to the NUMA node asked
for and backed by hugepages when asked."""
from __future__ import annotations

import os
import re
import sys

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

MEMTEST = guestrun.guest('memtest')


def test_sizes(c: Checker) -> None:
    # 3328M: 3 GiB below the hole and 256 MiB above 4 GiB.
    for mem, high in (('64M', False), ('256M', False), ('3328M', True)):
        r = run_kvmrun([f'kernel={MEMTEST}', f'mem={mem}', 'timeout=240'], timeout=300)
        mib = int(mem[:-1])
        ram = r.find(r'memtest: ram=(\d+) MiB')
        # the legacy area below 1 MiB is partly reserved, so allow < 1 MiB short
        c.check(f'memtest mem={mem}', r.has_line('memtest: ok pages=' + (
            r.find(r'memtest: ok pages=(\d+)')[0].group(1) if r.find(r'memtest: ok pages=(\d+)') else 'x'))
            and ram and mib - 1 <= int(ram[0].group(1)) <= mib and r.rc == 0,
            f'the guest finds {mib} MiB in its memory map and every page holds a pattern', r)
        if high:
            c.check(f'memtest mem={mem} high', any(
                m for m in r.find(r'e820: 0x0*100000000 - 0x0*110000000 type 1')),
                'RAM beyond 3 GiB continues at 4 GiB', r)


def numa_maps_nodes(pid: int, size: int) -> dict[str, str]:
    """The policy and node counts of the mapping of guest RAM (the one
    mapping of about @size bytes)."""
    ranges = [(start, text) for start, end, text in kvmtest.smaps_mappings(pid)
              if end - start == size]  # exactly: sanitizer shadow maps are bigger
    with open(f'/proc/{pid}/numa_maps') as f:
        for line in f:
            addr = int(line.split()[0], 16)
            if any(addr == s for s, _ in ranges):
                return {'line': line.strip(), 'smaps': ranges[0][1]}
    return {}


def test_numa(c: Checker) -> None:
    bg = kvmtest.Background([f'kernel={MEMTEST}', 'mem=1G', 'mem_numa_node=0', 'timeout=120'],
                            tag='numa')
    try:
        if bg.wait_for_line(r'memtest: ram=', 60) is None:
            c.check('numa bind', False, 'guest did not start: ' + bg.errors())
            return
        info = numa_maps_nodes(bg.pid, 1 << 30)
        line = info.get('line', '')
        c.check('numa bind', 'bind:0' in line and re.search(r'\bN0=\d+', line) is not None
                and re.search(r'\bN[1-9]\d*=', line) is None,
                f'guest RAM has policy bind:0 and pages only on node 0 ({line})')
    finally:
        bg.stop()
    nodes = sorted(int(d[4:]) for d in os.listdir('/sys/devices/system/node')
                   if re.fullmatch(r'node\d+', d))
    bad = max(nodes) + 1
    r = run_kvmrun([f'kernel={MEMTEST}', f'mem_numa_node={bad}'])
    c.check('numa bad node', r.rc == 1 and f'mem_numa_node={bad}' in r.err and 'no such NUMA node' in r.err,
            'a node that does not exist is a clear error', r)
    if len(nodes) < 2:
        c.skip('numa second node', 'this host has one NUMA node')


def test_hugepages(c: Checker) -> None:
    with kvmtest.extra_hugepages(c, 64) as old:
        if old is None:
            return
        bg = kvmtest.Background([f'kernel={MEMTEST}', 'mem=128M', 'mem_hugepages=on',
                                 'timeout=120'], tag='huge')
        try:
            if bg.wait_for_line(r'memtest: ram=', 60) is None:
                c.check('hugepages', False, 'guest did not start: ' + bg.errors())
            else:
                with open(f'/proc/{bg.pid}/smaps') as f:
                    smaps = f.read()
                huge = re.findall(r'KernelPageSize:\s+2048 kB', smaps)
                c.check('hugepages backing', len(huge) >= 1,
                        'guest RAM is a 2 MiB-page mapping (smaps KernelPageSize 2048 kB)')
            rc = bg.wait(120)
            c.check('hugepages memtest', rc == 0 and 'memtest: ok' in bg.output(),
                    f'memtest passes on hugepage RAM (rc {rc})')
        finally:
            bg.stop()
        kvmtest.set_hugepages(old)
        r = run_kvmrun([f'kernel={MEMTEST}', 'mem=1G', 'mem_hugepages=on'])
        c.check('hugepages shortage', r.rc == 1 and 'nr_hugepages' in r.err,
                'too few hugepages is an error naming /proc/sys/vm/nr_hugepages', r)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    test_sizes(c)
    test_numa(c)
    test_hugepages(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
