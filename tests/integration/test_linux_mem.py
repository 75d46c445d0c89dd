"""Guest memory and vCPUs under a real kernel: virtio-balloon with Linux's
own virtio_balloon driver, hugepages, prefaulting, vCPU pinning and KSM
(Debian's cloud kernel, the agent of tests/linux/guest/agent.sh).

Balloon, on 4 KiB pages and again on 2 MiB hugepages (mem_hugepages=2M
with balloon.hugepage_giveback=on, without which hugepages stay reserved),
one boot each (balloon.stats_period=1, deflate_on_oom=on):
- the guest first writes, then frees, most of its memory, so the host holds
  it (RSS);
- `kvmrun ctl SOCK balloon target=256M`: the guest's MemAvailable falls by
  the target and kvmrun's RSS of guest RAM (/proc/PID/smaps) by at least
  90% of it; on hugepages, whole 2 MiB pages go back to the host's pool
  (HugePages_Free rises, at least 90% of the target);
- `balloon-stats` carries the guest's own figures: total_memory is its
  MemTotal, free_memory and available_memory are near its MemFree and
  MemAvailable, and they are fresh (stats_age_ms);
- target=0 gives the memory back: MemAvailable is as before;
- deflate_on_oom: with most memory in the balloon, the guest writes more
  than it has left, and the write succeeds because the driver deflates
  under memory pressure;
- with mem_hugepages=2M, /proc/PID/smaps shows guest RAM in 2 MiB pages.

Free page reporting, on 4 KiB and 2 MiB pages, one boot each
(balloon.free_page_reporting=on, no target): after the guest frees what it
wrote, kvmrun's RSS falls by at least 75% of it. The 4 KiB boot also runs
with mem_prefault=on (RSS is all of RAM when the control socket first
answers, against well under half without it) and cpus=2
cpu_affinity=0,1: while the guest keeps both vCPUs busy, each vCPU
thread is allowed on, and runs on, its own host CPU only.

KSM: two identical guests with mem_merge=on; with KSM running on the
host, kvmrun reports merged pages in both (`kvmrun ctl SOCK memory`).

Needs hardware virtualisation (tests/run runs this in the nested lane) and
root (hugepages, KSM); the host's hugepage and KSM settings are restored.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time

import kvmtest
import linuxguest
from kvmtest import Checker, MiB, ctl, fields, ram_rss, size
from linuxguest import VM

MEM = 512 * MiB
TARGET = 256 * MiB
KSM = '/sys/kernel/mm/ksm'


def guest_mem(vm: VM) -> dict[str, int]:
    """MemTotal, MemFree and MemAvailable of the guest, in bytes."""
    rc, out = vm.sh('grep -E "^(MemTotal|MemFree|MemAvailable):" /proc/meminfo')
    got = {}
    for l in out:
        m = re.match(r'^(\w+):\s+(\d+) kB$', l)
        if m:
            got[m.group(1)] = int(m.group(2)) << 10
    return got


def hugepages_free() -> int:
    with open('/proc/meminfo') as f:
        for l in f:
            if l.startswith('HugePages_Free:'):
                return int(l.split()[1])
    return 0


def first_answer(sock: str, vm: VM, timeout: float = 60) -> int | None:
    """RSS of guest RAM when the control socket first answers (after memory
    set-up, as the guest starts), or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and vm.proc.poll() is None:
        try:
            if ctl(sock, 'status', timeout=2).startswith('ok'):
                return ram_rss(vm.pid, MEM)
        except OSError:
            pass
        time.sleep(0.01)
    return None


def wait_actual(sock: str, want: int, timeout: float = 180) -> dict | None:
    """balloon-stats once `actual` reached @want, or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = fields(ctl(sock, 'balloon-stats'))
        if size(f.get('actual', '0')) == want:
            return f
        time.sleep(0.2)
    return None


def fill_and_free(vm: VM, keep: int) -> bool:
    """The guest writes all but @keep bytes of what it has available into a
    tmpfs file, then deletes it: the host now holds that memory, and the
    guest has it free."""
    avail = guest_mem(vm).get('MemAvailable', 0)
    mib = max(0, (avail - keep) >> 20)
    rc, _ = vm.sh(f'dd if=/dev/zero of=/mnt/m/fill bs=1M count={mib} 2>/dev/null && '
                  f'rm /mnt/m/fill', timeout=300)
    return rc == 0 and mib > 0


def balloon_boot(c: Checker, f: linuxguest.Files, huge: bool) -> None:
    w = 'balloon on 2M pages' if huge else 'balloon'
    d = tempfile.mkdtemp(prefix='kvmrun-lmem-')
    sock = os.path.join(d, 'ctl.sock')
    # Hugepages go back to the host's pool only when asked (README: Memory).
    extra = ['mem_hugepages=2M', 'balloon.hugepage_giveback=on'] if huge else []
    vm = VM(linuxguest.kvmrun_cmd(f, [f'mem={MEM >> 20}M', 'cpus=1', 'balloon=on',
                                      'balloon.stats_period=1', 'balloon.deflate_on_oom=on',
                                      f'control={sock}'] + extra), 'mem-' + ('2m' if huge else '4k'))
    try:
        early = first_answer(sock, vm)
        if not c.check(f'{w}: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return None
        if huge:
            with open(f'/proc/{vm.pid}/smaps') as fh:
                smaps = fh.read()
            ram = [t for s, e, t in kvmtest.smaps_mappings(vm.pid) if MEM <= e - s <= MEM + 8 * MiB]
            c.check('mem_hugepages=2M: smaps', len(ram) == 1 and
                    re.search(r'^KernelPageSize:\s+2048 kB', ram[0], re.M) is not None and
                    ram_rss(vm.pid, MEM) >= 32 * MiB,
                    f'guest RAM is one mapping of 2 MiB pages (KernelPageSize 2048 kB) holding '
                    f'{ram_rss(vm.pid, MEM) / MiB:.0f} MiB of Shared/Private_Hugetlb '
                    f'({len(smaps)} bytes of smaps)')
        vm.sh('mkdir -p /mnt/m && mount -t tmpfs -o size=100% tmpfs /mnt/m')
        fill_and_free(vm, 48 * MiB)
        time.sleep(1)
        g0, r0, h0 = guest_mem(vm), ram_rss(vm.pid, MEM), hugepages_free()
        resp = ctl(sock, f'balloon target={TARGET >> 20}M')
        t = time.monotonic()
        st = wait_actual(sock, TARGET)
        t = time.monotonic() - t
        if not c.check(f'{w}: inflate', resp.startswith('ok') and st is not None,
                       f'the guest holds {TARGET >> 20} MiB in the balloon after {t:.1f}s ({resp})'):
            print(vm.describe())
            return None
        time.sleep(0.5)
        g1, r1, h1 = guest_mem(vm), ram_rss(vm.pid, MEM), hugepages_free()
        drop = g0.get('MemAvailable', 0) - g1.get('MemAvailable', 0)
        c.check(f'{w}: guest memory shrinks', 0.9 * TARGET <= drop <= 1.1 * TARGET,
                f'the guest\'s MemAvailable fell by {drop / MiB:.0f} MiB '
                f'({g0.get("MemAvailable", 0) / MiB:.0f} -> {g1.get("MemAvailable", 0) / MiB:.0f})')
        c.check(f'{w}: host RSS falls', r0 - r1 >= 0.9 * TARGET,
                f'kvmrun\'s RSS of guest RAM fell by {(r0 - r1) / MiB:.0f} MiB '
                f'({r0 / MiB:.0f} -> {r1 / MiB:.0f}), at least 90% of the target')
        if huge:
            c.check(f'{w}: whole hugepages back', (h1 - h0) * 2 * MiB >= 0.9 * TARGET
                    and (r0 - r1) % (2 * MiB) == 0,
                    f'{h1 - h0} 2 MiB pages went back to the host\'s pool (HugePages_Free '
                    f'{h0} -> {h1}), the RSS drop is whole 2 MiB pages')
        # the guest's statistics
        time.sleep(1.5)
        raw = ctl(sock, 'balloon-stats')
        st = fields(raw)
        g = guest_mem(vm)
        tot, free, avail = (size(st[k]) if k in st else -1 for k in
                            ('total_memory', 'free_memory', 'available_memory'))
        age = int(st.get('stats_age_ms', '99999'))
        near = 24 * MiB
        c.check(f'{w}: balloon-stats', tot == g.get('MemTotal') and
                abs(free - g.get('MemFree', 0)) <= near and
                abs(avail - g.get('MemAvailable', 0)) <= near and age <= 2500,
                f'total_memory {tot / MiB:.1f} MiB is the guest\'s MemTotal '
                f'({g.get("MemTotal", 0) / MiB:.1f}); free {free / MiB:.0f} and available '
                f'{avail / MiB:.0f} MiB within 24 MiB of MemFree {g.get("MemFree", 0) / MiB:.0f} '
                f'and MemAvailable {g.get("MemAvailable", 0) / MiB:.0f}; {age} ms old'
                + ('' if 'stats_age_ms' in st else f' (got "{raw}")'))
        # deflate
        ctl(sock, 'balloon target=0')
        st = wait_actual(sock, 0)
        g2 = guest_mem(vm)
        back = g2.get('MemAvailable', 0) - g1.get('MemAvailable', 0)
        c.check(f'{w}: deflate', st is not None and back >= 0.9 * TARGET,
                f'target=0: the balloon empties and the guest\'s MemAvailable is back up by '
                f'{back / MiB:.0f} MiB ({g2.get("MemAvailable", 0) / MiB:.0f} MiB)')
        # deflate_on_oom: most memory in the balloon, then write more than is left
        big = (g2.get('MemAvailable', 0) - 64 * MiB) & ~(MiB - 1)
        ctl(sock, f'balloon target={big >> 20}M')
        st = wait_actual(sock, big)
        left = guest_mem(vm).get('MemAvailable', 0)
        want = left + 96 * MiB
        rc, out = vm.sh(f'dd if=/dev/zero of=/mnt/m/oom bs=1M count={want >> 20} 2>&1; '
                        f'echo "dd=$?"; ls -l /mnt/m/oom; rm -f /mnt/m/oom', timeout=300)
        st2 = fields(ctl(sock, 'balloon-stats'))
        actual = size(st2.get('actual', '0'))
        ok = st is not None and 'dd=0' in out and vm.proc.poll() is None and actual < big
        c.check(f'{w}: deflate_on_oom', ok,
                f'with {big >> 20} MiB in the balloon and {left / MiB:.0f} MiB available, '
                f'writing {want >> 20} MiB succeeds: the driver gave back '
                f'{(big - actual) / MiB:.0f} MiB under memory pressure ({out[-3:]})')
        ctl(sock, 'balloon target=0')
        rc = vm.finish()
        linuxguest.guest_ok(c, f'{w}: power-off', vm, rc, 'the guest powered off')
        if early is not None and not huge:
            print(f'info: without mem_prefault, RSS of guest RAM when the control socket first '
                  f'answered: {early / MiB:.0f} MiB', flush=True)
        return early
    finally:
        vm.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def thread_cpus(pid: int) -> dict[str, tuple[str, int, int]]:
    """vCPU thread name -> (Cpus_allowed_list, CPU it last ran on, CPU ticks)."""
    got = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/comm') as fh:
                name = fh.read().strip()
            if not name.startswith('vcpu'):
                continue
            with open(f'/proc/{pid}/task/{tid}/status') as fh:
                allowed = re.search(r'^Cpus_allowed_list:\s+(\S+)$', fh.read(), re.M).group(1)
            with open(f'/proc/{pid}/task/{tid}/stat') as fh:
                stat = fh.read().rsplit(')', 1)[1].split()
            got[name] = (allowed, int(stat[36]), int(stat[11]) + int(stat[12]))
        except (OSError, AttributeError):
            pass
    return got


def fpr_boot(c: Checker, f: linuxguest.Files, huge: bool, no_prefault: int | None) -> None:
    w = 'free page reporting on 2M pages' if huge else 'free page reporting'
    d = tempfile.mkdtemp(prefix='kvmrun-lmem-')
    sock = os.path.join(d, 'ctl.sock')
    extra = (['mem_hugepages=2M', 'balloon.hugepage_giveback=on'] if huge
             else ['mem_prefault=on', 'cpus=2', 'cpu_affinity=0,1'])
    vm = VM(linuxguest.kvmrun_cmd(f, [f'mem={MEM >> 20}M', 'balloon=on',
                                      'balloon.free_page_reporting=on', f'control={sock}'] + extra),
            'fpr-' + ('2m' if huge else '4k'))
    try:
        early = first_answer(sock, vm)
        if not huge:
            c.check('mem_prefault=on', early is not None and early >= MEM - 2 * MiB and
                    (no_prefault is None or no_prefault < MEM // 2),
                    f'RSS of guest RAM is {(early or 0) / MiB:.0f} MiB of {MEM >> 20} when the '
                    f'control socket first answers (without mem_prefault: '
                    f'{(no_prefault or 0) / MiB:.0f} MiB)')
        if not c.check(f'{w}: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return
        if not huge:
            # both vCPUs busy in the guest; each thread stays on its own CPU
            vm.sh('for i in 0 1; do taskset -c $i timeout 8 sh -c "while :; do :; done" & done')
            time.sleep(1)
            first = thread_cpus(vm.pid)
            seen: dict[str, set[int]] = {n: set() for n in first}
            for _ in range(25):
                for n, (_, cpu, _) in thread_cpus(vm.pid).items():
                    seen.setdefault(n, set()).add(cpu)
                time.sleep(0.2)
            last = thread_cpus(vm.pid)
            busy = {n: (last[n][2] - first[n][2]) / os.sysconf('SC_CLK_TCK')
                    for n in first if n in last}
            want = {'vcpu0': '0', 'vcpu1': '1'}
            ok = (set(first) == set(want) and all(first[n][0] == want[n] for n in want) and
                  all(seen[n] == {int(want[n])} for n in want) and
                  all(v >= 1.5 for v in busy.values()))
            c.check('cpu_affinity=0,1 under load', ok,
                    f'vcpu0 allowed on {first.get("vcpu0", ("?",))[0]}, ran on {seen.get("vcpu0")}; '
                    f'vcpu1 allowed on {first.get("vcpu1", ("?",))[0]}, ran on {seen.get("vcpu1")}; '
                    f'CPU seconds in 5 s: {busy}')
            vm.sh('wait')
        vm.sh('mkdir -p /mnt/m && mount -t tmpfs -o size=100% tmpfs /mnt/m')
        time.sleep(4)  # what the guest freed while booting is reported by now
        avail = guest_mem(vm).get('MemAvailable', 0)
        mib = (avail - 64 * MiB) >> 20
        rc, _ = vm.sh(f'dd if=/dev/zero of=/mnt/m/fill bs=1M count={mib} 2>/dev/null', timeout=300)
        time.sleep(1)
        r1 = ram_rss(vm.pid, MEM)
        vm.sh('rm /mnt/m/fill')
        t, r2 = time.monotonic(), r1
        while time.monotonic() - t < 30:
            time.sleep(0.5)
            r2 = ram_rss(vm.pid, MEM)
            if r1 - r2 >= 0.9 * (mib * MiB):
                break
        st = fields(ctl(sock, 'balloon-stats'))
        c.check(f'{w}: RSS falls', rc == 0 and r1 - r2 >= 0.75 * (mib * MiB) and
                size(st.get('target', '1')) == 0,
                f'the guest wrote {mib} MiB and deleted it; with no balloon target, kvmrun\'s RSS '
                f'of guest RAM fell by {(r1 - r2) / MiB:.0f} MiB ({r1 / MiB:.0f} -> {r2 / MiB:.0f}) '
                f'in {time.monotonic() - t:.1f}s; reported {st.get("reported")}')
        rc = vm.finish()
        linuxguest.guest_ok(c, f'{w}: power-off', vm, rc, 'the guest powered off')
    finally:
        vm.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def ksm_boot(c: Checker, f: linuxguest.Files) -> None:
    d = tempfile.mkdtemp(prefix='kvmrun-lmem-')
    keys = ('run', 'pages_to_scan', 'sleep_millisecs')
    saved = {}
    for k in keys:
        with open(f'{KSM}/{k}') as fh:
            saved[k] = fh.read().strip()
    vms = []
    try:
        socks = [os.path.join(d, f'ksm{i}.sock') for i in range(2)]
        for i, sock in enumerate(socks):
            vms.append(VM(linuxguest.kvmrun_cmd(f, ['mem=256M', 'mem_merge=on', f'control={sock}']),
                          f'ksm{i}'))
        if not c.check('mem_merge=on: two guests', all(vm.ready() for vm in vms),
                       'two identical guests run'):
            for vm in vms:
                print(vm.describe())
            return
        for k, v in (('pages_to_scan', '4000'), ('sleep_millisecs', '20'), ('run', '1')):
            with open(f'{KSM}/{k}', 'w') as fh:
                fh.write(v)
        t = time.monotonic()
        merged = [0, 0]
        while time.monotonic() - t < 90:
            time.sleep(1)
            for i, sock in enumerate(socks):
                v = fields(ctl(sock, 'memory')).get('ksm_merged_pages', '0')
                merged[i] = int(v) if v.isdigit() else 0
            if min(merged) >= 1024:
                break
        c.check('mem_merge=on: pages merged', min(merged) >= 1024,
                f'with KSM running, kvmrun reports {merged[0]} and {merged[1]} merged pages '
                f'(at least 4 MiB each) after {time.monotonic() - t:.0f}s')
        for i, vm in enumerate(vms):
            linuxguest.guest_ok(c, f'mem_merge=on: guest {i} power-off', vm, vm.finish(),
                                'the guest powered off')
    finally:
        for vm in vms:
            vm.cleanup()
        for k in ('run', 'pages_to_scan', 'sleep_millisecs'):
            try:
                with open(f'{KSM}/{k}', 'w') as fh:
                    fh.write(saved[k])
            except OSError:
                pass
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    linuxguest.require_linux()
    if os.geteuid() != 0:
        kvmtest.skip('needs root (hugepages, KSM)')
    f = linuxguest.files()
    t0 = time.monotonic()
    c = Checker()
    no_prefault = balloon_boot(c, f, huge=False)
    fpr_boot(c, f, huge=False, no_prefault=no_prefault)
    # each 2M boot: guest RAM plus room for what the pool must take back
    with kvmtest.extra_hugepages(c, MEM // (2 * MiB) + 8, 'mem_hugepages=2M') as old:
        if old is not None:
            balloon_boot(c, f, huge=True)
            fpr_boot(c, f, huge=True, no_prefault=None)
    if os.path.isdir(KSM):
        ksm_boot(c, f)
    else:
        c.skip('mem_merge=on', f'{KSM} is missing: this kernel has no KSM')
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
