"""The capability drop (drop_caps=on, the default; vmm/caps.c).

1. As root, kvmrun creates its tap (needs CAP_NET_ADMIN) in a network
   namespace, then drops everything: CapEff, CapPrm, CapInh, CapAmb and
   CapBnd in /proc/PID/task/*/status are empty for every thread (the vCPU
   threads and the I/O thread included) while the guest runs, and the
   guest's network still answers pings afterwards.
2. drop_caps=off keeps them (so the first check means something).
3. As an unprivileged user (nobody, in group kvm, no capabilities at all)
   with a tap made for it beforehand (ip tuntap add ... user nobody):
   kvmrun starts, has nothing to drop, and the network works.

Uses the namespace and ping helpers of test_net.py.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import sys

import guestrun
import kvmtest
import test_net as tn

CAP_KEYS = ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')


def caps_of(pid: int) -> dict[str, dict[str, int]]:
    """tid -> {CapEff: value, ...} for every thread of pid."""
    out = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/status') as f:
                text = f.read()
        except OSError:
            continue
        out[tid] = {k: int(v, 16) for k, v in re.findall(r'^(Cap\w+):\s+([0-9a-f]+)$', text, re.M)
                    if k in CAP_KEYS}
    return out


def test_dropped(c: kvmtest.Checker) -> None:
    with tn.Namespace('caps') as ns:
        vm = tn.boot(c, ns, tn.guest_args(120), 'drop')
        if not vm:
            return
        caps = caps_of(vm.pid)
        nonzero = {t: {k: hex(v) for k, v in cs.items() if v} for t, cs in caps.items()}
        nonzero = {t: cs for t, cs in nonzero.items() if cs}
        c.check('drop_caps=on: every set empty', len(caps) >= 2 and not nonzero,
                f'{len(caps)} threads, CapEff/CapPrm/CapInh/CapAmb/CapBnd all 0'
                if not nonzero else f'not dropped: {nonzero}')
        c.check('drop_caps=on: logged', 'dropped capabilities: ' in vm.errors() and
                'net_admin' in vm.errors(), 'info line lists what was dropped')
        tn.ping_check(c, 'drop_caps=on: network works afterwards', ns, vm, count=10)


def test_kept(c: kvmtest.Checker) -> None:
    with tn.Namespace('keep') as ns:
        vm = tn.boot(c, ns, tn.guest_args(120, ['drop_caps=off']), 'keep')
        if not vm:
            return
        caps = caps_of(vm.pid)
        main = caps.get(str(vm.pid), {})
        c.check('drop_caps=off: capabilities kept', main.get('CapEff', 0) != 0,
                f"CapEff={main.get('CapEff', 0):#x}")


def test_unprivileged(c: kvmtest.Checker) -> None:
    if not shutil.which('setpriv'):
        c.skip('unprivileged', 'setpriv (util-linux) is missing')
        return
    try:
        nobody = pwd.getpwnam('nobody')
        kvm_gid = grp.getgrnam('kvm').gr_gid
    except KeyError as e:
        c.skip('unprivileged', f'no such user or group: {e}')
        return
    st = os.stat('/dev/kvm')
    if st.st_gid != kvm_gid or not st.st_mode & 0o060 == 0o060:
        c.skip('unprivileged', '/dev/kvm is not read-write for group kvm')
        return
    for p in (kvmtest.kvmrun_binary(), guestrun.guest('net')):
        if not os.access(p, os.R_OK) or os.stat(p).st_mode & 0o004 == 0:
            c.skip('unprivileged', f'{p} is not world-readable')
            return
    with tn.Namespace('user') as ns:
        # what an administrator does once; then kvmrun needs no privilege
        tn.run('ip', '-n', ns.name, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap',
               'user', str(nobody.pw_uid))
        prefix = ['setpriv', f'--reuid={nobody.pw_uid}', f'--regid={nobody.pw_gid}',
                  f'--groups={kvm_gid}', '--inh-caps=-all', '--bounding-set=-all', '--']
        vm = ns.start_kvmrun(tn.guest_args(120), 'user', prefix=prefix)
        up = vm.wait_for(r'net: ip=10\.0\.2\.15', 120) is not None
        if not c.check('unprivileged: guest up', up, 'as nobody:kvm with a pre-made tap'):
            print(vm.describe())
            return
        ns.host_side('tap0')
        with open(f'/proc/{vm.pid}/status') as f:
            uid = re.search(r'^Uid:\s+(\d+)', f.read(), re.M).group(1)
        c.check('unprivileged: runs as nobody', uid == str(nobody.pw_uid) and
                'no capabilities held' in vm.errors(), f'uid {uid}, nothing to drop')
        tn.ping_check(c, 'unprivileged: ping', ns, vm, count=10)


def main() -> int:
    tn.require_usable()
    c = kvmtest.Checker()
    test_dropped(c)
    test_kept(c)
    test_unprivileged(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
