"""vCPUs: every vCPU of the smp guest checks in with the APIC ID that
cpu_topology= implies; vCPU threads are pinned where cpu_affinity= says."""
from __future__ import annotations

import os
import sys

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

SMP = guestrun.guest('smp')


def bits(n: int) -> int:
    b = 0
    while (1 << b) < n:
        b += 1
    return b


def expected_apic_ids(sockets: int, cores: int, threads: int) -> list[int]:
    tb, cb = bits(threads), bits(cores)
    ids = []
    for i in range(sockets * cores * threads):
        t, c, s = i % threads, (i // threads) % cores, i // (threads * cores)
        ids.append((s << (tb + cb)) | (c << tb) | t)
    return ids


def test_topologies(c: Checker) -> None:
    cases = [(1, None), (2, None), (4, None), (3, None),
             (4, (1, 2, 2)), (4, (2, 2, 1)), (6, (2, 3, 1)), (8, (2, 2, 2))]
    for cpus, topo in cases:
        args = [f'kernel={SMP}', f'cpus={cpus}', 'timeout=120']
        if topo:
            args.append('cpu_topology=%d:%d:%d' % topo)
        s, co, t = topo or (1, cpus, 1)
        want = expected_apic_ids(s, co, t)
        r = run_kvmrun(args, timeout=180)
        name = f'smp cpus={cpus} topology={s}:{co}:{t}'
        c.check(name + ' up', r.has_line(f'smp: {cpus} of {cpus} cpus up') and r.rc == 0,
                f'all {cpus} vCPUs start through INIT/SIPI and the guest powers off', r)
        got = sorted(int(m.group(1)) for m in r.find(r'cpu \d+ apic_id=(\d+) lapic_id=\d+'))
        lapic = sorted(int(m.group(1)) for m in r.find(r'cpu \d+ apic_id=\d+ lapic_id=(\d+)'))
        c.check(name + ' apic ids', got == sorted(want) and lapic == sorted(want),
                f'CPUID and LAPIC IDs {got} == {sorted(want)}', r)


def read_affinity(pid: int, tid: int) -> str:
    with open(f'/proc/{pid}/task/{tid}/status') as f:
        for line in f:
            if line.startswith('Cpus_allowed_list:'):
                return line.split(':', 1)[1].strip()
    return ''


def test_affinity(c: Checker) -> None:
    online = os.sched_getaffinity(0)
    if len(online) < 2:
        c.skip('cpu_affinity', 'needs 2 host CPUs')
        return
    a, b = sorted(online)[:2]
    bg = kvmtest.Background([f'kernel={guestrun.guest("memtest")}', 'mem=1G', 'cpus=2',
                             f'cpu_affinity={b},{a}', 'timeout=120'], tag='aff')
    try:
        if bg.wait_for_line(r'memtest: ram=', 60) is None:
            c.check('cpu_affinity', False, 'guest did not start: ' + bg.errors())
            return
        threads = bg.threads()
        got = {name: read_affinity(bg.pid, tid) for name, tid in threads.items()
               if name.startswith('vcpu')}
        c.check('cpu_affinity', got == {'vcpu0': str(b), 'vcpu1': str(a)},
                f'vcpu0 pinned to {b}, vcpu1 to {a} (from /proc: {got})')
    finally:
        bg.stop()
    r = run_kvmrun([f'kernel={SMP}', 'cpus=2', 'cpu_affinity=0'])
    c.check('cpu_affinity too short', r.rc == 1 and 'cpu_affinity' in r.err,
            'a list shorter than cpus is an error naming the key', r)
    r = run_kvmrun([f'kernel={SMP}', 'cpus=1', 'cpu_affinity=4095'])
    c.check('cpu_affinity offline', r.rc == 1 and '4095' in r.err,
            'a host CPU that is not online is an error naming it', r)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    test_topologies(c)
    test_affinity(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
