"""Shared helpers for the tests that run kvmrun itself (standard library).

    import kvmtest
    c = kvmtest.Checker()
    r = kvmtest.run_kvmrun(['kernel=...', 'debug_exit=on'])
    c.check('name', cond, 'what was expected', r)
    sys.exit(c.done())
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import guestrun


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

    def skip(self, name: str, why: str) -> None:
        print(f'skip {name}: {why}', flush=True)

    def done(self) -> int:
        print(f'{self.passed} passed, {self.failed} failed')
        return 1 if self.failed else 0


class Background:
    """kvmrun running in the background, for tests that look at /proc
    while the guest runs. Output goes to files so pipes never fill."""

    def __init__(self, args: list[str], tag: str = 'bg') -> None:
        self.out_path = f'/tmp/kvmrun-test-{os.getpid()}-{tag}.out'
        self.err_path = f'/tmp/kvmrun-test-{os.getpid()}-{tag}.err'
        self.out = open(self.out_path, 'wb')
        self.err = open(self.err_path, 'wb')
        self.proc = subprocess.Popen([kvmrun_binary()] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.err, start_new_session=True)
        self.pid = self.proc.pid

    def output(self) -> str:
        self.out.flush()
        with open(self.out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')

    def errors(self) -> str:
        with open(self.err_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match | None:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.output().splitlines():
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
