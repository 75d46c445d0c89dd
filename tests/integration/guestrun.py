"""Run a VMM (kvmrun or QEMU) on a test guest and capture what it did.

Standard library only. Integration tests import it:

    import guestrun
    r = guestrun.run([...], timeout=60)          # any command
    r = guestrun.run_qemu(guestrun.guest('hello'), ['-smp', '2'])
    r.rc, r.out, r.err, r.wall, r.timed_out, r.lines(), r.has_line('...')

Guest exit conventions (tests/guest/README.md): ACPI poweroff -> status 0;
debug_exit(v) on port 0x501 -> status v*2+1 (EXIT_PASS=1, EXIT_FAIL=3,
EXIT_PANIC=5).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import time

STATUS_POWEROFF = 0


def debug_exit_status(value: int) -> int:
    """Host exit status for a guest's debug_exit(value)."""
    return value * 2 + 1


STATUS_PASS = debug_exit_status(0)
STATUS_FAIL = debug_exit_status(1)
STATUS_PANIC = debug_exit_status(2)

SKIP = 77  # meson's exit code for a skipped test


@dataclasses.dataclass
class Result:
    cmd: list[str]
    rc: int | None  # None when the command timed out and was killed
    out: str
    err: str
    wall: float
    timed_out: bool = False
    accel: str | None = None  # set by run_qemu

    def lines(self) -> list[str]:
        """stdout (the guest's serial output) as lines, '\\r' removed."""
        return self.out.replace('\r', '').splitlines()

    def has_line(self, text: str) -> bool:
        return text in self.lines()

    def find(self, pattern: str) -> list[re.Match]:
        """Matches of a regex against each whole output line."""
        rx = re.compile(pattern)
        return [m for m in (rx.fullmatch(l) for l in self.lines()) if m]

    def describe(self) -> str:
        """Everything needed to debug a failed check."""
        rc = 'timeout' if self.timed_out else self.rc
        return (f'command: {" ".join(self.cmd)}\nexit: {rc} after {self.wall:.1f}s'
                f'\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}')


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to @proc's process group (it was started with
    start_new_session). The process may have ended on its own already,
    which is not an error."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(cmd: list[str], timeout: float, env: dict | None = None,
        stdin: bytes | None = None, cwd: str | None = None) -> Result:
    """Runs cmd with a wall-clock timeout; on timeout kills its whole
    process group and returns what it had printed, with rc=None."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        timed_out = True
    wall = time.monotonic() - start
    return Result(cmd=list(cmd), rc=None if timed_out else proc.returncode,
                  out=out.decode('utf-8', 'replace'), err=err.decode('utf-8', 'replace'),
                  wall=wall, timed_out=timed_out)


def guest_dir() -> str:
    """Where the built guests are ($GUEST_DIR, set by meson)."""
    d = os.environ.get('GUEST_DIR')
    if d:
        return d
    root = os.environ.get('BUILD_ROOT', 'build')
    return os.path.join(root, 'tests', 'guest')


def guest(name: str) -> str:
    """Path of a built test guest, e.g. guest('hello')."""
    return os.path.join(guest_dir(), name + '.elf')


def qemu_binary() -> str | None:
    return shutil.which('qemu-system-x86_64')


def qemu_accel() -> str:
    """kvm where /dev/kvm can be opened, else tcg."""
    try:
        os.close(os.open('/dev/kvm', os.O_RDWR))
        return 'kvm'
    except OSError:
        return 'tcg'


def qemu_cmd(kernel: str, extra: list[str] | tuple = (), accel: str = 'kvm',
             append: str | None = None, machine: str = 'pc',
             qemu: str | None = None) -> list[str]:
    """The QEMU command line the guests are tested with: COM1 on stdout,
    isa-debug-exit at 0x501, no reboot, no display, no default devices."""
    cmd = [qemu or qemu_binary() or 'qemu-system-x86_64',
           '-M', machine, '-accel', accel, '-nodefaults', '-display', 'none',
           '-no-reboot', '-serial', 'stdio',
           '-device', 'isa-debug-exit,iobase=0x501,iosize=2',
           '-kernel', kernel]
    if append is not None:
        cmd += ['-append', append]
    return cmd + list(extra)


_KVM_FAILED = re.compile(r'(failed to initiali[sz]e kvm|could not access kvm|'
                         r'kvm.*(not supported|unavailable|permission denied)|'
                         r'no accelerator found)', re.I)


def run_qemu(kernel: str, extra: list[str] | tuple = (), append: str | None = None,
             timeout: float = 120, machine: str = 'pc') -> Result:
    """Boots kernel under QEMU with KVM, or with TCG if KVM cannot start
    (then stderr said so and the guest printed nothing). r.accel says which."""
    r = run(qemu_cmd(kernel, extra, 'kvm', append, machine), timeout)
    r.accel = 'kvm'
    if r.rc not in (None, 0) and not r.out and _KVM_FAILED.search(r.err):
        r = run(qemu_cmd(kernel, extra, 'tcg', append, machine), timeout)
        r.accel = 'tcg'
    return r
