"""virtio-balloon end to end: the balloon guest inflates to the target set
on the control socket and the host RSS of guest RAM (from /proc/PID/smaps)
drops by that much; hugepage-backed RAM comes back in whole 2 MiB pages;
the guest's statistics reach `balloon-stats`; two VMs with mem_merge=on
share pages through KSM."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import MiB, Checker, ctl, fields, ram_rss, size

BALLOON = guestrun.guest('balloon')
KSM = '/sys/kernel/mm/ksm'


class VM:
    """A balloon-guest VM in the background with a control socket."""

    def __init__(self, tag: str, mem: str, extra: list[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix='kvmrun-bal-')
        self.sock = os.path.join(self.dir, 'ctl.sock')
        self.mem = size(mem)
        self.bg = kvmtest.Background([f'kernel={BALLOON}', f'mem={mem}', 'balloon=on',
                                      f'control={self.sock}', 'timeout=300',
                                      'debug_exit=on'] + extra, tag=tag)

    def ready(self, timeout: float = 60) -> bool:
        return self.bg.wait_for_line(r'balloon: waiting for targets', timeout) is not None

    def ctl(self, line: str) -> str:
        return ctl(self.sock, line)

    def count(self, line: str) -> int:
        return sum(1 for l in self.bg.output().splitlines() if l.strip() == line)

    def wait_count(self, line: str, n: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(line) >= n:
                return True
            if self.bg.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def rss(self) -> int:
        return ram_rss(self.bg.pid, self.mem)

    def stop(self) -> int | None:
        try:
            self.ctl('stop')
        except OSError:
            pass
        rc = self.bg.wait(30)
        self.bg.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def test_rss_4k(c: Checker) -> None:
    vm = VM('rss', '256M', ['mem_prefault=on', 'balloon.stats_period=1',
                            'balloon.free_page_reporting=on', 'balloon.deflate_on_oom=on',
                            'cmdline=balloon.touch=1'])
    try:
        if not vm.ready():
            c.check('balloon guest', False, 'guest did not start: ' + vm.bg.errors() + vm.bg.output())
            return
        c.check('features', 'balloon: features=0x100000026 stats=1 deflate_on_oom=1 reporting=1'
                in vm.bg.output(), 'the guest negotiated stats, deflate-on-oom and reporting')
        rss0 = vm.rss()
        c.check('prefaulted', rss0 >= 250 * MiB, f'RAM is resident before ballooning ({rss0 >> 20} MiB)')
        r = vm.ctl('balloon target=64M')
        c.check('target answer', r == 'ok target=64M actual=0',
                f'balloon target=64M is answered at once with the target ({r})')
        t0 = time.monotonic()
        done = vm.wait_count('balloon: actual=16384 pages', 1, 120)
        took = time.monotonic() - t0
        c.check('inflated', done, f'the guest inflated 16384 pages ({took:.1f} s)')
        if not done:
            print(vm.bg.output())
            return
        time.sleep(0.5)  # the free page report follows the inflation
        st = fields(vm.ctl('balloon-stats'))
        reported = size(st.get('reported', '0'))
        rss1 = vm.rss()
        drop = rss0 - rss1
        want = 64 * MiB + reported
        print(f'  rss before {rss0 >> 10} KiB, after inflating 64 MiB {rss1 >> 10} KiB: '
              f'dropped {drop >> 10} KiB (free page reporting: {reported >> 10} KiB)')
        c.check('rss drop', abs(drop - want) <= 2 * MiB,
                f'host RSS of guest RAM dropped by the 64 MiB inflated + {reported >> 20} MiB '
                f'reported (dropped {drop / MiB:.1f} MiB)')
        c.check('actual', st.get('actual') == '64M' and st.get('inflated') == '64M'
                and st.get('host_freed') == '64M',
                f'balloon-stats: actual, inflated and host_freed are 64M ({st})')
        mem = fields(vm.ctl('memory'))
        c.check('memory report', abs(size(mem['ram_rss']) - rss1) <= 2 * MiB and mem['ram'] == '256M'
                and mem['page_size'] == '4K' and mem['numa_nodes'] != 'none',
                f'`memory` reports the RSS the test measured ({mem})')
        # statistics arrive every second
        ok = False
        for _ in range(30):
            st = fields(vm.ctl('balloon-stats'))
            if 'free_memory' in st and size(st['total_memory']) > 200 * MiB \
                    and int(st['stats_age_ms']) < 3000:
                ok = True
                break
            time.sleep(0.2)
        c.check('stats', ok and size(st['free_memory']) < size(st['total_memory']),
                f'the guest\'s free/total memory reach balloon-stats ({st})')
        # deflate
        r = vm.ctl('balloon target=0')
        c.check('deflate answer', r.startswith('ok target=0 actual='), r)
        done = vm.wait_count('balloon: actual=0 pages', 1, 120)
        st = fields(vm.ctl('balloon-stats'))
        c.check('deflated', done and st.get('actual') == '0' and st.get('inflated') == '0'
                and st.get('host_freed') == '0', f'the balloon is empty again ({st})')
        rss2 = vm.rss()
        print(f'  rss after deflating: {rss2 >> 10} KiB')
        c.check('rss rises after deflate', rss2 - rss1 >= 60 * MiB,
                f'the guest writes the 64 MiB it got back and host RSS rises by '
                f'{(rss2 - rss1) >> 20} MiB')
        rc = vm.stop()
        c.check('stop', rc == 0, f'`stop` ends the VM with exit code 0 (rc {rc})')
    finally:
        vm.stop()


def meminfo(key: str) -> int:
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return -1


def test_hugepages(c: Checker) -> None:
    with kvmtest.extra_hugepages(c, 64) as old:
        if old is None:
            return
        vm = VM('huge', '128M', ['mem_hugepages=on', 'mem_prefault=on',
                                 'balloon.hugepage_giveback=on'])
        try:
            if not vm.ready():
                c.check('hugepage guest', False, 'guest did not start: ' + vm.bg.errors())
                return
            rss0, free0 = vm.rss(), meminfo('HugePages_Free')
            # 63 MiB: 31 whole hugepages and half of one
            r = vm.ctl('balloon target=63M')
            ok = vm.wait_count(f'balloon: actual={63 * 256} pages', 1, 120)
            rss1, free1 = vm.rss(), meminfo('HugePages_Free')
            st = fields(vm.ctl('balloon-stats'))
            print(f'  hugetlb RSS {rss0 >> 20} MiB -> {rss1 >> 20} MiB, HugePages_Free '
                  f'{free0} -> {free1}; {st.get("inflated")} inflated, '
                  f'{st.get("host_freed")} freed')
            c.check('hugepages partial', ok and rss0 - rss1 == 62 * MiB and free1 - free0 == 31
                    and st.get('host_freed') == '62M' and st.get('inflated') == '63M',
                    f'63 MiB inflated gives back 31 whole 2 MiB pages, not the half one ({r})')
            vm.ctl('balloon target=64M')
            ok = vm.wait_count(f'balloon: actual={64 * 256} pages', 1, 60)
            rss2, free2 = vm.rss(), meminfo('HugePages_Free')
            c.check('hugepages whole', ok and rss0 - rss2 == 64 * MiB and free2 - free0 == 32,
                    f'the 32nd hugepage goes back once all its 512 pages are in '
                    f'(RSS {rss2 >> 20} MiB, HugePages_Free {free2})')
            mem = fields(vm.ctl('memory'))
            c.check('hugepages report', mem.get('page_size') == '2M'
                    and size(mem.get('hugetlb', '0')) == rss2,
                    f'`memory` shows 2M pages and the hugetlb bytes in use ({mem})')
            rc = vm.stop()
            c.check('hugepages stop', rc == 0, f'rc {rc}')
        finally:
            vm.stop()


def test_hugepages_kept(c: Checker) -> None:
    """Hugepage RAM without balloon.hugepage_giveback: the balloon takes
    pages from the guest but the host keeps them reserved, so emptying the
    host's hugepage pool while the VM runs cannot leave the guest without
    the pages it deflates and touches again (with give-back, the punched
    pages went back to the pool and the guest's touch faulted)."""
    with kvmtest.extra_hugepages(c, 32, 'hugepages kept') as old:
        if old is None:
            return
        vm = VM('kept', '64M', ['mem_hugepages=on', 'mem_prefault=on',
                                'balloon.free_page_reporting=on', 'cmdline=balloon.touch=1'])
        try:
            if not vm.ready():
                c.check('hugepages kept guest', False, 'guest did not start: ' + vm.bg.errors())
                return
            rss0, free0 = vm.rss(), meminfo('HugePages_Free')
            vm.ctl('balloon target=32M')
            ok = vm.wait_count(f'balloon: actual={32 * 256} pages', 1, 120)
            if vm.bg.proc.poll() is not None:
                c.check('hugepages kept', False, 'kvmrun ended while the guest inflated:\n'
                        + vm.bg.describe())
                return
            st = fields(vm.ctl('balloon-stats'))
            rss1, free1 = vm.rss(), meminfo('HugePages_Free')
            print(f'  inflated {st.get("inflated")}, host_freed {st.get("host_freed")}; '
                  f'hugetlb RSS {rss0 >> 20} -> {rss1 >> 20} MiB, HugePages_Free {free0} -> {free1}')
            c.check('hugepages kept', ok and st.get('inflated') == '32M'
                    and st.get('host_freed') == '0' and rss1 == rss0 == 64 * MiB and free1 == free0,
                    'the guest gave 32 MiB to the balloon; the host kept every hugepage')
            c.check('hugepages kept: no reporting', 'reporting=0' in vm.bg.output(),
                    'free page reporting is not offered for RAM that stays reserved')
            # empty the pool under the running VM, as another VM or an
            # administrator could
            kvmtest.set_hugepages(0)
            emptied = meminfo('HugePages_Free')
            vm.ctl('balloon target=0')
            ok = vm.wait_count('balloon: actual=0 pages', 1, 120)
            alive = vm.bg.proc.poll() is None
            if not alive:
                print(vm.bg.describe()[-3000:])
            c.check('hugepages kept: pool emptied', emptied == 0 and ok and alive,
                    f'with the pool emptied (HugePages_Free {emptied}) the guest takes its '
                    f'32 MiB back and writes it: still running ({alive}), no SIGBUS')
            errs = vm.bg.errors()
            rc = vm.stop()
            c.check('hugepages kept: stop', rc == 0, f'`stop` ends it with exit 0 (rc {rc})'
                    + ('' if rc == 0 else '\n' + errs[-2000:]))
        finally:
            vm.stop()


def ksm_read(name: str) -> str:
    with open(os.path.join(KSM, name)) as f:
        return f.read().strip()


def ksm_write(name: str, value: str) -> None:
    with open(os.path.join(KSM, name), 'w') as f:
        f.write(value)


def test_ksm(c: Checker) -> None:
    if not os.path.isdir(KSM):
        c.skip('ksm', f'{KSM} is absent (kernel without KSM)')
        return
    keys = ('run', 'pages_to_scan', 'sleep_millisecs')
    try:
        saved = {k: ksm_read(k) for k in keys}
        ksm_write('sleep_millisecs', '10')
    except OSError as e:
        c.skip('ksm', f'cannot configure KSM ({e.strerror}; not root?)')
        return
    vms = []
    try:
        ksm_write('pages_to_scan', '10000')
        ksm_write('run', '1')
        # the same guest, the same RAM, prefaulted: identical pages in both
        for i in range(2):
            vms.append(VM(f'ksm{i}', '128M', ['mem_merge=on', 'mem_prefault=on']))
        if not all(vm.ready() for vm in vms):
            c.check('ksm guests', False, 'guests did not start')
            return
        merged = [0, 0]
        end = time.monotonic() + 60
        while time.monotonic() < end and min(merged) < 16384:
            time.sleep(0.5)
            merged = [int(fields(vm.ctl('status')).get('ksm_merged_pages', '0')) for vm in vms]
        sharing = ksm_read('pages_sharing')
        print(f'  ksm_merged_pages per VM: {merged}; pages_sharing={sharing}')
        c.check('ksm merged', min(merged) >= 16384,
                f'both VMs report merged pages through the control socket ({merged})')
        st = fields(vms[0].ctl('status'))
        c.check('ksm merge flag', st.get('merge') == 'on', f'status says merge=on ({st.get("merge")})')
    finally:
        for vm in vms:
            vm.stop()
        for k in ('run', 'pages_to_scan', 'sleep_millisecs'):
            try:
                ksm_write(k, saved[k])
            except OSError:
                pass


def main() -> int:
    kvmtest.require_kvm()
    kvmtest.require_guest('balloon')
    c = Checker()
    test_rss_4k(c)
    test_hugepages(c)
    test_hugepages_kept(c)
    test_ksm(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
