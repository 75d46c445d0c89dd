"""The jail on a real VM (issue 18; vmm/seccomp.c, vmm/jail.c,
vmm/landlock.c, vmm/cgroup.c). What a forbidden syscall does is proved in
tests/unit/test_seccomp.c; here, that the VM runs with every layer on:

1. seccomp=on (the default): every vCPU thread and the event thread show
   Seccomp: 2 (filter mode) in /proc/PID/task/TID/status while the net
   guest answers pings; NoNewPrivs: 1 on every thread.
2. seccomp=off: no thread is filtered.
3. Everything on, as root: user=nobody group=nogroup, landlock=on,
   cgroup=PATH with cgroup.memory_max= (where the cgroup2 root offers the
   memory controller): every thread runs as uid 65534, sits in the group
   (/proc/PID/task/*/cgroup, io_uring's iou-wrk workers included), the
   guest pings; and the blk guest, with the same layers, writes, flushes
   and reads back its disk.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time

import guestrun
import kvmtest
import test_net as tn

GROUP_ROOT = f'kvmrun-test-{os.getpid()}'


def threads(pid: int) -> dict[str, dict[str, str]]:
    """tid -> {'comm', 'Seccomp', 'NoNewPrivs', 'Uid', 'cgroup'} of every thread."""
    out = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        base = f'/proc/{pid}/task/{tid}'
        try:
            with open(f'{base}/status') as f:
                status = f.read()
            with open(f'{base}/comm') as f:
                comm = f.read().strip()
            with open(f'{base}/cgroup') as f:
                cg = [ln[3:] for ln in f.read().splitlines() if ln.startswith('0::')]
        except OSError:
            continue
        d = dict(re.findall(r'^(Seccomp|NoNewPrivs|Uid):\s+(.*)$', status, re.M))
        d['comm'] = comm
        d['cgroup'] = cg[0] if cg else ''
        out[tid] = d
    return out


def summary(ts: dict[str, dict[str, str]], key: str) -> str:
    return ', '.join(f"{t['comm']}={t.get(key, '?')}" for t in ts.values())


def test_seccomp_on(c: kvmtest.Checker) -> None:
    with tn.Namespace('sc-on') as ns:
        vm = tn.boot(c, ns, tn.guest_args(120), 'seccomp-on')
        if not vm:
            return
        ts = threads(vm.pid)
        # the caller's (main) thread only waits for the event thread
        jailed = {t: d for t, d in ts.items() if t != str(vm.pid)}
        names = sorted(d['comm'] for d in jailed.values())
        c.check('seccomp=on: threads', 'event' in names and any(n.startswith('vcpu') for n in names),
                f'threads besides main: {names}')
        c.check('seccomp=on: every vcpu and event thread filtered',
                all(d.get('Seccomp') == '2' for d in jailed.values()),
                f'Seccomp: {summary(jailed, "Seccomp")}')
        c.check('seccomp=on: no new privileges', all(d.get('NoNewPrivs') == '1' for d in ts.values()),
                f'NoNewPrivs: {summary(ts, "NoNewPrivs")}')
        tn.ping_check(c, 'seccomp=on: ping', ns, vm, count=10)
        c.check('seccomp=on: logged', 'filters on: vcpu and event threads' in vm.errors(),
                'info line')


def test_seccomp_off(c: kvmtest.Checker) -> None:
    with tn.Namespace('sc-off') as ns:
        vm = tn.boot(c, ns, tn.guest_args(120, ['seccomp=off']), 'seccomp-off')
        if not vm:
            return
        ts = threads(vm.pid)
        c.check('seccomp=off: no thread filtered', all(d.get('Seccomp') == '0' for d in ts.values()),
                f'Seccomp: {summary(ts, "Seccomp")}')


def cgroup_root() -> tuple[str | None, str]:
    with open('/proc/self/mountinfo') as f:
        for ln in f:
            if ' - cgroup2 ' in ln:
                root = ln.split()[4]
                try:
                    with open(f'{root}/cgroup.controllers') as g:
                        return root, g.read()
                except OSError:
                    return root, ''
    return None, ''


def jail_args(tag: str, controllers: str) -> list[str]:
    args = ['user=nobody', 'group=nogroup', 'landlock=on', f'cgroup={GROUP_ROOT}/{tag}']
    if 'memory' in controllers.split():
        args.append('cgroup.memory_max=1G')
    return args


def test_everything_net(c: kvmtest.Checker, root: str, controllers: str) -> None:
    with tn.Namespace('jail') as ns:
        # `ip netns exec` gives kvmrun a mount namespace with a fresh /sys,
        # where cgroup2 is not mounted: mount it there, as an administrator
        # running kvmrun so would (kvmrun's own error says how)
        prefix = ['sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"', 'sh']
        vm = ns.start_kvmrun(tn.guest_args(120, jail_args('net', controllers)), 'jail',
                             prefix=prefix)
        up = ns.wait_tap('tap0') and vm.wait_for(r'net: ip=10\.0\.2\.15', 120) is not None
        if not c.check('jail: guest up', up, 'tap0 exists and the guest printed its ip'):
            print(vm.describe())
            return
        ns.host_side('tap0')
        ts = threads(vm.pid)
        c.check('jail: every thread runs as nobody',
                all(d.get('Uid', '').split() == ['65534'] * 4 for d in ts.values()),
                f'Uid: {summary(ts, "Uid")}')
        want = f'/{GROUP_ROOT}/net'
        c.check('jail: every thread in the cgroup', all(d['cgroup'] == want for d in ts.values()),
                f'cgroup: {summary(ts, "cgroup")}')
        if 'memory' in controllers.split():
            with open(f'{root}{want}/memory.max') as f:
                v = f.read().strip()
            c.check('jail: memory.max written', v == str(1 << 30), f'memory.max = {v}')
        jailed = {t: d for t, d in ts.items() if t != str(vm.pid)}
        c.check('jail: filtered', all(d.get('Seccomp') == '2' for d in jailed.values()),
                f'Seccomp: {summary(jailed, "Seccomp")}')
        tn.ping_check(c, 'jail: ping', ns, vm, count=10)
        c.check('jail: landlock on', 'landlock: file system restricted' in vm.errors(),
                'info line' if 'landlock' in vm.errors() else vm.errors()[-2000:])


def test_everything_blk(c: kvmtest.Checker, controllers: str) -> None:
    """The blk guest with every layer on; its threads sampled while it runs."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        path = os.path.join(d, 'disk.img')
        with open(path, 'wb') as f:
            f.truncate(64 << 20)
        args = [f'kernel={guestrun.guest("blk")}', 'debug_exit=on', 'timeout=120', 'log_level=info',
                f'disk0.path={path}', 'disk0.cache=writeback', 'disk0.io=io_uring',
                'serial=stdio'] + jail_args('blk', controllers)
        vm = kvmtest.Background(args, tag='jail-blk')
        seen: dict[str, dict[str, str]] = {}
        while vm.proc.poll() is None:
            try:
                for tid, t in threads(vm.pid).items():
                    seen[tid] = t  # the latest: the process moves in at its start
            except OSError:
                pass
            time.sleep(0.002)
        rc = vm.proc.wait()
        ok = rc == 0 and 'blk: all ok' in vm.output()
        c.check('jail: blk guest reads and writes its disk', ok,
                f'exit {rc}; writes, flush, read-back, discard pass' if ok else vm.describe())
        want = f'/{GROUP_ROOT}/blk'
        inside = [t for t in seen.values() if t['cgroup'] and t['cgroup'] != want]
        iou = [t['comm'] for t in seen.values() if t['comm'].startswith('iou-')]
        c.check('jail: blk threads in the cgroup', not inside and len(seen) >= 3,
                f'{len(seen)} threads seen ({sorted(t["comm"] for t in seen.values())}); '
                f'outside: {inside}')
        c.check('jail: io_uring workers in the cgroup', bool(iou),
                f'{len(iou)} iou-* workers seen, all in {want}')
        vm.close()


def main() -> int:
    tn.require_usable()
    if os.geteuid() != 0:
        kvmtest.skip('needs root (user=, cgroup=)')
    c = kvmtest.Checker()
    test_seccomp_on(c)
    test_seccomp_off(c)
    root, controllers = cgroup_root()
    if root is None:
        c.skip('jail', 'cgroup v2 is not mounted here')
    else:
        try:
            test_everything_net(c, root, controllers)
            test_everything_blk(c, controllers)
        finally:
            for leaf in ('net', 'blk'):
                try:
                    os.rmdir(f'{root}/{GROUP_ROOT}/{leaf}')
                except OSError:
                    pass
            try:
                os.rmdir(f'{root}/{GROUP_ROOT}')
            except OSError:
                pass
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
