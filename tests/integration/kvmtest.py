"""Shared helpers for the tests that run kvmrun itself (standard library).

    import kvmtest
    c = kvmtest.Checker()
    r = kvmtest.run_kvmrun(['kernel=...', 'debug_exit=on'])
    c.check('name', cond, 'what was expected', r)
    sys.exit(c.done())
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from typing import Iterator, NoReturn

import guestrun

MiB = 1 << 20
NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages'


def kvmrun_binary() -> str:
    return os.environ.get('KVMRUN', os.path.join(os.environ.get('BUILD_ROOT', 'build'), 'kvmrun'))


def source_root() -> str:
    return os.environ.get('SOURCE_ROOT', os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))


def run_kvmrun(args: list[str], timeout: float = 60, stdin: bytes | None = None,
               cwd: str | None = None) -> guestrun.Result:
    return guestrun.run([kvmrun_binary()] + list(args), timeout, stdin=stdin, cwd=cwd)


def require_kvm() -> None:
    """Skips the whole test (exit 77) when /dev/kvm cannot be opened."""
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
        os.close(fd)
    except OSError as e:
        print(f'SKIP: /dev/kvm is not usable here ({e.strerror})')
        sys.exit(guestrun.SKIP)


def host_kvm() -> tuple[str, str]:
    """What this host's KVM is, and why it was judged so: 'none' (no usable
    /dev/kvm), 'emulated' (a /dev/kvm without hardware virtualisation under
    it, like kvm-pvm, which runs guests through KVM's instruction emulator)
    or 'native' (the CPU has VMX or SVM). tests/nested/host-kvm prints the
    same for tests/run."""
    try:
        os.close(os.open('/dev/kvm', os.O_RDWR))
    except OSError as e:
        return 'none', f'this host has no usable /dev/kvm ({e.strerror})'
    if os.path.isdir('/sys/module/kvm_pvm'):
        return 'emulated', ("this host's /dev/kvm is kvm-pvm, which runs guests through "
                            "KVM's instruction emulator")
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((l.split(':', 1)[1].split() for l in f if l.startswith('flags')), [])
    except OSError:
        flags = []
    if 'vmx' not in flags and 'svm' not in flags:
        return 'emulated', ("this host's CPU has neither VMX nor SVM, so its /dev/kvm runs "
                            "guests through KVM's instruction emulator")
    return 'native', 'this host has /dev/kvm on hardware virtualisation'


def skip(why: str) -> NoReturn:
    """Skips the whole test (exit 77) with one line saying why."""
    print(f'SKIP: {why}')
    sys.exit(guestrun.SKIP)


def require_guest(name: str) -> str:
    """The path of test guest @name; skips the whole test when it is not built."""
    path = guestrun.guest(name)
    if not os.path.exists(path):
        skip(f'the {name} test guest is not built ({path})')
    return path


def require_qemu_guests(names: list[str] | tuple[str, ...]) -> None:
    """For the tests that check the guests under QEMU: skips the whole test
    without qemu-system-x86_64, fails it (exit 1) when a guest is not built."""
    if not guestrun.qemu_binary():
        skip('qemu-system-x86_64 not installed')
    for g in names:
        if not os.path.exists(guestrun.guest(g)):
            print(f'FAIL {g}: {guestrun.guest(g)} was not built')
            sys.exit(1)


# ---- the control socket (control=PATH) ----

def ctl(path: str, line: str, timeout: float = 10) -> str:
    """One request on the control socket; returns the response line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line.encode() + b'\n')
        buf = b''
        while not buf.endswith(b'\n'):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode().rstrip('\n')


def size(v: str) -> int:
    """Bytes of a size as the control socket writes it: 64M, 4K, 0."""
    m = re.fullmatch(r'(\d+)([KMGT]?)', v.upper())
    if not m:
        raise ValueError(v)
    return int(m.group(1)) << (10 * ' KMGT'.index(m.group(2) or ' '))


def fields(resp: str) -> dict[str, str]:
    """The key=value tokens of a response line after its first word."""
    return dict(t.split('=', 1) for t in resp.split()[1:] if '=' in t)


# ---- guest RAM as the host sees it ----

def smaps_mappings(pid: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, text) of each mapping in /proc/PID/smaps; text is the
    header line and its fields."""
    with open(f'/proc/{pid}/smaps') as f:
        text = f.read()
    for m in re.finditer(r'^([0-9a-f]+)-([0-9a-f]+) .*\n(?:(?![0-9a-f]+-[0-9a-f]+ ).*\n)*',
                         text, re.M):
        yield int(m.group(1), 16), int(m.group(2), 16), m.group(0)


def ram_rss(pid: int, mem: int) -> int:
    """Resident bytes of the guest RAM mapping of @pid: Rss plus hugetlb
    pages (which smaps counts apart) of the mapping(s) @mem to @mem + 8 MiB
    long (not larger ones: sanitizer shadow maps are terabytes)."""
    total = 0
    for start, end, text in smaps_mappings(pid):
        if not mem <= end - start <= mem + 8 * MiB:
            continue
        for key in ('Rss', 'Shared_Hugetlb', 'Private_Hugetlb'):
            k = re.search(rf'^{key}:\s+(\d+) kB', text, re.M)
            if k:
                total += int(k.group(1)) << 10
    return total


def set_hugepages(n: int) -> int | None:
    """Sets vm.nr_hugepages; returns what the kernel granted, None if it refused."""
    try:
        with open(NR_HUGEPAGES, 'w') as f:
            f.write(str(n))
        with open(NR_HUGEPAGES) as f:
            return int(f.read())
    except OSError:
        return None


@contextlib.contextmanager
def extra_hugepages(c: 'Checker', n: int, name: str = 'hugepages') -> Iterator[int | None]:
    """Reserves @n more hugepages for the block and gives them back after.
    Yields the count there was before, or None (with a skip line) when the
    reservation is not possible here."""
    try:
        with open(NR_HUGEPAGES) as f:
            old = int(f.read())
    except OSError:
        c.skip(name, f'{NR_HUGEPAGES} is not readable')
        yield None
        return
    try:
        got = set_hugepages(old + n)
        if got is None or got < old + n:
            c.skip(name, f'cannot reserve {n} hugepages (have {got}; not root?)')
            yield None
        else:
            yield old
    finally:
        set_hugepages(old)


class Checker:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, name: str, ok: bool, detail: str, r: guestrun.Result | None = None) -> bool:
        print(f'{"ok  " if ok else "FAIL"} {name}: {detail}', flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            if r is not None:
                print(r.describe(), flush=True)
        return ok

    def line(self, name: str, r: guestrun.Result, text: str) -> bool:
        return self.check(name, r.has_line(text), f'prints "{text}"', r)

    def status(self, name: str, r: guestrun.Result, want: int | tuple[int, ...], what: str) -> bool:
        want = want if isinstance(want, tuple) else (want,)
        return self.check(name, r.rc in want,
                          f'exit status {r.rc}, want {" or ".join(map(str, want))} ({what})', r)

    def skip(self, name: str, why: str) -> None:
        print(f'skip {name}: {why}', flush=True)

    def done(self) -> int:
        print(f'{self.passed} passed, {self.failed} failed')
        return 1 if self.failed else 0


def thread_states(pid: int) -> str:
    """Where each thread of a live process is: state, the syscall it is in
    and its kernel stack (root only), for a VM that stopped making
    progress without ending."""
    def read(path: str) -> str:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return '?'
    out = ['--- threads ---']
    try:
        tids = sorted(os.listdir(f'/proc/{pid}/task'), key=int)
    except OSError:
        return ''
    for tid in tids:
        base = f'/proc/{pid}/task/{tid}'
        state = next((l.split(':', 1)[1].strip() for l in read(f'{base}/status').splitlines()
                      if l.startswith('State:')), '?')
        out.append(f'{tid} {read(base + "/comm")}: {state}, wchan {read(base + "/wchan")}, '
                   f'syscall {read(base + "/syscall").split(" ")[0]}')
        stack = read(f'{base}/stack')
        if stack != '?':
            out += ['    ' + l for l in stack.splitlines()[:8]]
    return '\n' + '\n'.join(out)


class Background:
    """kvmrun running in the background, for tests that look at /proc
    while the guest runs. Output goes to files so pipes never fill."""

    def __init__(self, args: list[str], tag: str = 'bg', cmd: list[str] | None = None) -> None:
        """Runs kvmrun with @args, or @cmd as it is when given."""
        self.out_path = f'/tmp/kvmrun-test-{os.getpid()}-{tag}.out'
        self.err_path = f'/tmp/kvmrun-test-{os.getpid()}-{tag}.err'
        self.out = open(self.out_path, 'wb')
        self.err = open(self.err_path, 'wb')
        self.cmd = list(cmd) if cmd is not None else [kvmrun_binary()] + list(args)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.err, start_new_session=True)
        self.pid = self.proc.pid

    def output(self, complete: bool = False) -> str:
        """The console so far. With @complete, only whole lines while the
        VM runs: a line being written must not match a pattern half-way."""
        self.out.flush()
        with open(self.out_path, 'rb') as f:
            text = f.read().decode('utf-8', 'replace').replace('\r', '')
        if complete and self.proc.poll() is None:
            text = text[:text.rfind('\n') + 1]
        return text

    def errors(self) -> str:
        with open(self.err_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def describe(self) -> str:
        """Everything needed to debug a failed check."""
        return (f'command: {" ".join(self.cmd)}\nexit: {self.proc.poll()}\n'
                f'--- stdout ---\n{self.output()}\n--- stderr ---\n{self.errors()}' +
                (thread_states(self.pid) if self.proc.poll() is None else ''))

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match | None:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.output(complete=True).splitlines():
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def threads(self) -> dict[str, int]:
        """Thread name -> TID."""
        names = {}
        for tid in os.listdir(f'/proc/{self.pid}/task'):
            try:
                with open(f'/proc/{self.pid}/task/{tid}/comm') as f:
                    names[f.read().strip()] = int(tid)
            except OSError:
                pass
        return names

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        self.close()
        return rc

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        for f in (self.out, self.err):
            f.close()
        for p in (self.out_path, self.err_path):
            try:
                os.unlink(p)
            except OSError:
                pass
