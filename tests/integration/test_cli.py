"""The command line: help, version, config files plus overrides,
--print-config round trip, errors that name file, line and key and stop
kvmrun before it touches /dev/kvm, the bundled example configs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

HELLO = guestrun.guest('hello')


def test_help_version(c: Checker) -> None:
    r = run_kvmrun(['--help'])
    c.check('--help', r.rc == 0 and 'usage: kvmrun' in r.out and 'Exit codes' in r.out,
            'usage text on stdout, exit 0', r)
    r = run_kvmrun(['--version'])
    c.check('--version', r.rc == 0 and r.out.startswith('kvmrun '), 'prints the version', r)
    r = run_kvmrun([])
    c.check('no arguments', r.rc == 2 and 'usage' in r.err, 'usage error, exit 2', r)
    r = run_kvmrun(['--frobnicate'])
    c.check('unknown option', r.rc == 2 and '--frobnicate' in r.err, 'names the option, exit 2', r)


def test_demo_config(c: Checker) -> None:
    demo = os.path.join(kvmtest.source_root(), 'configs', 'demo.conf')
    # the demo config finds the guest relative to itself: ../build/...
    build = os.environ.get('BUILD_ROOT', '')
    if os.path.realpath(os.path.join(os.path.dirname(demo), '..', 'build')) != os.path.realpath(build):
        r = run_kvmrun([demo, f'kernel={HELLO}'])
    else:
        r = run_kvmrun([demo])
    c.check('demo.conf', r.rc == 0 and r.has_line('Hello from the kvmrun test guest'),
            'the demo config boots hello, which powers off', r)


def test_overrides_and_print(c: Checker) -> None:
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, 'vm.conf')
        with open(conf, 'w') as f:
            f.write(f'# test\nkernel={HELLO}\ncpus=1\nmem=64M\ncmdline="from the file"\n')
        r = run_kvmrun(['--print-config', conf, 'mem=256M', 'cpus=2', 'cpu_affinity=0,1'])
        c.check('overrides', r.rc == 0 and 'mem=256M' in r.out and 'cpus=2' in r.out
                and 'cpu_affinity=0-1' in r.out.replace('0,1', '0-1'),
                'command-line keys override the file', r)
        printed = os.path.join(d, 'printed.conf')
        with open(printed, 'w') as f:
            f.write(r.out)
        r2 = run_kvmrun(['--print-config', printed])
        c.check('print-config round trip', r2.rc == 0 and r2.out == r.out,
                'printing the printed config gives the same text', r2)
        r = run_kvmrun([conf, 'cmdline=overridden'])
        c.check('override boots', r.rc == 0 and r.has_line('cmdline: overridden'),
                'an overridden key reaches the guest', r)
        # relative paths in a file resolve against the file's directory
        local = os.path.join(d, 'guest.elf')
        shutil.copy(HELLO, local)
        rel = os.path.join(d, 'rel.conf')
        with open(rel, 'w') as f:
            f.write('kernel=guest.elf\n')
        r = run_kvmrun([rel], cwd='/')
        c.check('relative kernel path', r.rc == 0 and r.has_line('Hello from the kvmrun test guest'),
                'kernel= in a file is relative to the file', r)


def strace_opens_kvm(args: list[str]) -> bool | None:
    if not shutil.which('strace'):
        return None
    p = subprocess.run(['strace', '-f', '-e', 'trace=openat', kvmtest.kvmrun_binary()] + args,
                       capture_output=True, text=True)
    return '/dev/kvm' in p.stderr


def test_errors(c: Checker) -> None:
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, 'bad.conf')
        with open(conf, 'w') as f:
            f.write(f'kernel={HELLO}\nmemory=2G\ncpus=lots\n\ncpu_afinity=0\nmem=1G\nmem=2G\n')
        r = run_kvmrun([conf])
        c.check('typo suggestion', f"{conf}:2: memory: unknown key, did you mean 'mem'?" in r.err,
                'file:line: key: message with the nearest key', r)
        c.check('bad value', f'{conf}:3: cpus:' in r.err, 'a bad value names file, line and key', r)
        c.check('typo 2', f"{conf}:5: cpu_afinity" in r.err and 'cpu_affinity' in r.err,
                'every error is reported, not just the first', r)
        c.check('duplicate key', f'{conf}:7: mem' in r.err, 'a duplicate key is an error', r)
        c.check('exit 1', r.rc == 1 and r.out == '', 'exit 1 and the guest never ran', r)
        opened = strace_opens_kvm([conf])
        if opened is None:
            c.skip('no /dev/kvm on error', 'strace is not installed')
        else:
            c.check('no /dev/kvm on error', not opened, 'kvmrun stops before opening /dev/kvm')
    r = run_kvmrun(['/nonexistent/vm.conf'])
    c.check('missing config', r.rc == 1 and '/nonexistent/vm.conf' in r.err and 'No such file' in r.err,
            'a missing file is an error naming it', r)
    r = run_kvmrun([f'kernel={HELLO}', 'cpus=2', 'cpu_topology=1:3:1'])
    c.check('topology mismatch', r.rc == 1 and 'cpu_topology' in r.err,
            'a topology that does not multiply to cpus is an error', r)


def test_check(c: Checker) -> None:
    """--check catches what would fail at start-up, naming the key, and never
    blocks on a FIFO (no /dev/kvm needed)."""
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, 'fifo')
        os.mkfifo(fifo)
        r = run_kvmrun(['--check', f'kernel={HELLO}'])
        c.check('check ok', r.rc == 0 and r.err == '', 'a good config passes --check', r)
        r = run_kvmrun(['--check', f'kernel={HELLO}', 'mem=16777215T'])
        c.check('check mem', r.rc == 1 and '<command line>:2: mem: 16777215T does not fit' in r.err,
                'RAM beyond the address space fails --check, naming mem', r)
        # more than RAM + swap, yet within even a 39-bit address space
        meminfo = dict(line.split(':', 1) for line in open('/proc/meminfo'))
        kib = int(meminfo['MemTotal'].split()[0]) + int(meminfo['SwapTotal'].split()[0])
        big = f'{(kib >> 20) + 2}G'
        if (kib >> 20) + 2 > 500:
            c.skip('check mem backing', f'this host has {kib >> 20} GiB of RAM and swap')
        else:
            r = run_kvmrun(['--check', f'kernel={HELLO}', f'mem={big}'])
            c.check('check mem backing', r.rc == 1 and f'mem: {big} is more than this host could '
                    'ever back' in r.err and 'mem_overcommit=on' in r.err,
                    'RAM beyond the host\'s RAM + swap fails --check and names the override', r)
            r = run_kvmrun(['--check', f'kernel={HELLO}', f'mem={big}', 'mem_overcommit=on'])
            c.check('check mem override', r.rc == 0, 'mem_overcommit=on allows it', r)
        for what in ('kernel', 'initrd', 'disk0.path'):
            args = ['--check'] + ([f'kernel={HELLO}'] if what != 'kernel' else [])
            for path, why in ((os.path.join(d, 'missing'), 'No such file'),
                              (d, 'is a directory'), (fifo, 'is a FIFO')):
                r = run_kvmrun(args + [f'{what}={path}'], timeout=10)
                c.check(f'check {what} {why}', r.rc == 1 and f': {what}: {path}' in r.err
                        and why in r.err, f'{what} that {why} fails --check, naming the key', r)
        r = run_kvmrun(['--check', f'kernel={HELLO}', 'control='])
        c.check('check empty control', r.rc == 1 and 'control: empty path' in r.err,
                'an empty control= is an error', r)
        conf = os.path.join(d, 'vm.conf')
        with open(conf, 'w') as f:
            f.write(f'kernel={os.path.abspath(HELLO)}\ncontrol=/run/nothing-here.sock\n')
        r = run_kvmrun(['--check', conf, 'control=none'])
        c.check('check control none', r.rc == 0, 'control=none turns off a file\'s socket', r)
        r = run_kvmrun([fifo], timeout=10)
        c.check('fifo config', r.rc == 1 and f'{fifo}: cannot read: a FIFO' in r.err,
                'a FIFO as the config file is refused at once', r)
        r = run_kvmrun([f'kernel={fifo}'], timeout=10)
        c.check('fifo kernel', r.rc == 1 and 'kernel:' in r.err and 'is a FIFO' in r.err
                and r.out == '', 'a FIFO as the kernel is refused before start', r)
        disks = [f'disk{i}.path={d}/d{i}.img' for i in range(9)]
        r = run_kvmrun(['--check', f'kernel={HELLO}', 'transport=mmio'] + disks[:8] + ['balloon=on'])
        c.check('check mmio lines', r.rc == 1 and 'transport: mmio has interrupt lines for 8' in r.err,
                'more virtio-mmio devices than interrupt lines fails --check', r)


def test_many_queues(c: Checker) -> None:
    """cpus=64 with four disks (a kick eventfd per queue: more than 256 on
    the event loop) starts and powers off."""
    with tempfile.TemporaryDirectory() as d:
        disks = []
        for i in range(4):
            img = os.path.join(d, f'd{i}.img')
            with open(img, 'wb') as f:
                f.truncate(1 << 20)
            disks += [f'disk{i}.path={img}', f'disk{i}.cache=writeback']
        args = [f'kernel={HELLO}', 'cpus=64', 'mem=256M', 'timeout=120'] + disks
        r = run_kvmrun(['--check'] + args)
        c.check('many queues check', r.rc == 0, 'cpus=64 with 4 disks passes --check', r)
        r = run_kvmrun(args, timeout=180)
        c.check('many queues start', r.rc == 0 and r.has_line('Hello from the kvmrun test guest'),
                'and then starts: hello powers off, exit 0', r)


def main() -> int:
    c = Checker()
    test_help_version(c)
    test_errors(c)
    test_check(c)
    if c.failed:  # report them rather than skip for want of /dev/kvm
        return c.done()
    kvmtest.require_kvm()
    test_demo_config(c)
    test_overrides_and_print(c)
    test_many_queues(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
