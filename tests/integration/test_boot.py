"""kvmrun boots the test guests: serial output, exit codes, timeout,
signals, serial backends, a clean terminal, bad kernels."""
from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

HELLO = guestrun.guest('hello')


def elf_with_code(code: bytes) -> bytes:
    """A minimal ELF64 with a PVH note whose entry (1 MiB) runs @code."""
    load = 0x100000
    note = struct.pack('<III', 4, 8, 18) + b'Xen\0' + struct.pack('<Q', load)
    ehdr_size, phdr_size = 64, 56
    text_off = 0x1000
    note_off = ehdr_size + 2 * phdr_size
    ehdr = (b'\x7fELF' + bytes([2, 1, 1]) + bytes(9) +
            struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, load, ehdr_size, 0, 0,
                        ehdr_size, phdr_size, 2, 0, 0, 0))
    ph_load = struct.pack('<IIQQQQQQ', 1, 5, text_off, load, load, len(code), len(code), 0x1000)
    ph_note = struct.pack('<IIQQQQQQ', 4, 4, note_off, 0, 0, len(note), len(note), 4)
    img = ehdr + ph_load + ph_note + note
    return img + bytes(text_off - len(img)) + code


def write_temp(data: bytes, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    os.write(fd, data)
    os.close(fd)
    return path


def test_hello(c: Checker) -> None:
    r = run_kvmrun([f'kernel={HELLO}', 'cmdline=kvmrun-test greeting=1', 'timeout=60'])
    c.check('hello greeting', r.has_line('Hello from the kvmrun test guest'),
            'the guest greets on the serial console', r)
    c.check('hello cmdline', r.has_line('cmdline: kvmrun-test greeting=1'),
            'the cmdline reaches the guest through PVH start_info', r)
    c.check('hello poweroff', r.rc == 0, f'ACPI poweroff ends kvmrun with 0 (got {r.rc})', r)


def test_debug_exit(c: Checker) -> None:
    # mov dx, 0x501; mov al, 42; out dx, al; hlt
    path = write_temp(elf_with_code(b'\x66\xba\x01\x05\xb0\x2a\xee\xf4'), '.elf')
    try:
        r = run_kvmrun([f'kernel={path}', 'debug_exit=on', 'timeout=30'])
        c.check('debug-exit passthrough', r.rc == 42 * 2 + 1,
                f'debug_exit(42) gives 85, as QEMU isa-debug-exit does (got {r.rc})', r)
        r = run_kvmrun([f'kernel={path}', 'timeout=2'])
        c.check('debug-exit off', r.rc == 124,
                f'without debug_exit=on the port is not there (timeout, got {r.rc})', r)
    finally:
        os.unlink(path)


def test_pvpanic(c: Checker) -> None:
    # mov dx, 0x505; in al, dx; mov bl, al; mov al, 1; out dx, al; hlt
    code = b'\x66\xba\x05\x05\xec\x88\xc3\xb0\x01\xee\xf4'
    path = write_temp(elf_with_code(code), '.elf')
    try:
        r = run_kvmrun([f'kernel={path}', 'timeout=30'])
        c.check('pvpanic', r.rc == 3 and 'panic' in r.err,
                f'a guest kernel reporting a panic through pvpanic gives 3 (got {r.rc})', r)
    finally:
        os.unlink(path)


def test_crash(c: Checker) -> None:
    path = write_temp(elf_with_code(b'\x0f\x0b'), '.elf')  # ud2 with no IDT
    try:
        r = run_kvmrun([f'kernel={path}', 'timeout=30'])
        c.check('triple fault', r.rc == 3, f'a guest that triple-faults gives 3 (got {r.rc})', r)
        c.check('triple fault message', 'triple fault' in r.err, 'stderr says triple fault', r)
    finally:
        os.unlink(path)


def test_bad_kernels(c: Checker) -> None:
    good = open(HELLO, 'rb').read()
    cases = {
        'truncated ELF': good[:200],
        'not a kernel': b'hello world\n' * 100,
        'empty': b'',
    }
    for name, data in cases.items():
        path = write_temp(data, '.bin')
        try:
            r = run_kvmrun([f'kernel={path}', 'timeout=10'])
            c.check(f'bad kernel: {name}', r.rc == 1 and 'kernel' in r.err and path in r.err,
                    f'exit 1 with an error naming the kernel file (got {r.rc})', r)
        finally:
            os.unlink(path)
    r = run_kvmrun(['kernel=/nonexistent/kernel.elf'])
    c.check('missing kernel', r.rc == 1 and 'No such file' in r.err,
            f'exit 1 naming the file and strerror (got {r.rc})', r)


def test_reboot(c: Checker) -> None:
    # mov al, 0xfe; out 0x64, al (i8042 pulse reset); hlt
    path = write_temp(elf_with_code(b'\xb0\xfe\xe6\x64\xf4'), '.elf')
    try:
        r = run_kvmrun([f'kernel={path}', 'timeout=30'])
        c.check('reboot on_reboot=exit', r.rc == 0,
                f'a guest reset request ends kvmrun with 0 (got {r.rc})', r)
        r = run_kvmrun([f'kernel={path}', 'on_reboot=restart', 'timeout=3', 'log_level=info'],
                       timeout=60)
        boots = r.err.count('guest requested a reset')
        c.check('reboot on_reboot=restart', boots >= 2,
                f'the guest is booted again after each reset ({boots} resets before the timeout)', r)
        c.check('restart keeps the deadline', r.rc == 124 and r.wall < 20,
                f'timeout= covers all the restarts (exit {r.rc} after {r.wall:.1f}s)', r)
    finally:
        os.unlink(path)


def test_timeout(c: Checker) -> None:
    r = run_kvmrun([f'kernel={guestrun.guest("memtest")}', 'mem=2G', 'timeout=1'], timeout=60)
    c.check('timeout', r.rc == 124, f'timeout=1 ends a long guest with 124 (got {r.rc})', r)
    warned = r.err.count('timeout=1 expired')
    c.check('timeout warning', warned == 1, f'says "timeout=1 expired" once (got {warned})', r)
    c.check('timeout fast', r.wall < 10, f'and promptly ({r.wall:.1f}s)', r)


def test_signals(c: Checker) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        bg = kvmtest.Background([f'kernel={guestrun.guest("memtest")}', 'mem=2G',
                                 'timeout=120'], tag=f'sig{sig}')
        try:
            started = bg.wait_for_line(r'memtest: ram=', 60)
            if started is None:
                c.check(f'signal {sig.name}', False, 'guest did not start: ' + bg.errors())
                continue
            os.kill(bg.pid, sig)
            rc = bg.wait(20)
            c.check(f'signal {sig.name}', rc == 128 + sig,
                    f'exit code 128+{int(sig)} after a clean teardown (got {rc})')
        finally:
            bg.stop()


def test_serial_backends(c: Checker) -> None:
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, 'console.log')
        r = run_kvmrun([f'kernel={HELLO}', f'serial=file:{log}', 'timeout=60'])
        text = open(log).read() if os.path.exists(log) else ''
        c.check('serial=file', r.rc == 0 and 'Hello from the kvmrun test guest' in text
                and 'Hello' not in r.out, 'the console goes to the file, not stdout', r)
    r = run_kvmrun([f'kernel={HELLO}', 'serial=none', 'timeout=60'])
    c.check('serial=none', r.rc == 0 and r.out == '', 'no console output at all', r)


HOSTILE = guestrun.guest('hostile')
FLOOD_SERIAL = 'cmdline=hostile.flood=serial'


def pipe_bytes(fd: int) -> int:
    """Bytes waiting in the pipe whose read end is @fd (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b'\0\0\0\0')
    return struct.unpack('i', buf)[0]


def test_serial_unread(c: Checker) -> None:
    """A harness that never reads kvmrun's stdout (a blocking pipe) while
    the guest prints without end: no vCPU may block in write(), so
    timeout= and SIGTERM still end kvmrun, at once."""
    for how in ('timeout', 'SIGTERM'):
        limit = 10 if how == 'timeout' else 120
        with tempfile.TemporaryFile() as err:
            t0 = time.monotonic()
            proc = subprocess.Popen([kvmtest.kvmrun_binary(), f'kernel={HOSTILE}', FLOOD_SERIAL,
                                     f'timeout={limit}'], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=err, start_new_session=True)

            def stderr() -> str:
                err.seek(0)
                return err.read().decode('utf-8', 'replace')
            try:
                # the smallest pipe there is, so that it fills at once even
                # where the guest prints slowly (nested virtualisation)
                cap = fcntl.fcntl(proc.stdout.fileno(), 1031, 4096)  # F_SETPIPE_SZ
                full = dropping = False
                # SIGTERM: once the UART's own buffer is full too (or 30 s)
                while time.monotonic() - t0 < min(limit, 30) and proc.poll() is None:
                    full = full or pipe_bytes(proc.stdout.fileno()) >= cap - 4096
                    dropping = 'nobody is reading the output' in stderr()
                    if (full and how == 'timeout') or dropping:
                        break
                    time.sleep(0.05)
                c.check(f'serial unread {how}: pipe full', full or dropping,
                        f'the guest filled the {cap >> 10} KiB pipe nobody reads '
                        f'{time.monotonic() - t0:.1f}s after start')
                if how == 'SIGTERM':
                    time.sleep(0.5)
                    t0 = time.monotonic()
                    os.kill(proc.pid, signal.SIGTERM)
                    limit = 0
                try:
                    rc = proc.wait(limit + 20)
                except subprocess.TimeoutExpired:
                    rc = None
                took = time.monotonic() - t0
                want = 124 if how == 'timeout' else 143
                c.check(f'serial unread {how}', rc == want and took < limit + 1,
                        f'exit {rc} (want {want}) {took:.2f}s after '
                        f'{f"start, timeout={limit}" if limit else "SIGTERM"}: the vCPU never '
                        'blocked on the full pipe')
                if how == 'SIGTERM':
                    log = stderr()
                    c.check('serial unread: said once',
                            log.count('nobody is reading the output') == 1 and
                            'bytes of console output were dropped' in log,
                            f'dropping is said once, and counted at the end ({log.strip()[:300]})')
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                proc.stdout.close()


def fd_flags(pid: int, path: str) -> int | None:
    """The open flags of @pid's file descriptor for @path, from fdinfo."""
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            if os.readlink(f'/proc/{pid}/fd/{fd}') == path:
                with open(f'/proc/{pid}/fdinfo/{fd}') as f:
                    for line in f:
                        if line.startswith('flags:'):
                            return int(line.split()[1], 8)
        except OSError:
            pass
    return None


def test_serial_file_safety(c: Checker) -> None:
    """serial=file: follows no symbolic link, creates the file 0600, keeps
    it from child processes, and stops at serial.max_size."""
    with tempfile.TemporaryDirectory() as d:
        victim = os.path.join(d, 'victim')
        with open(victim, 'w') as f:
            f.write('precious\n')
        link = os.path.join(d, 'console.log')
        os.symlink(victim, link)
        r = run_kvmrun([f'kernel={HELLO}', f'serial=file:{link}', 'timeout=60'])
        c.check('serial=file symlink', r.rc == 1 and 'symbolic link' in r.err
                and open(victim).read() == 'precious\n',
                'a symbolic link at the path is refused, its target left alone', r)
        log = os.path.join(d, 'flood.log')
        old = os.umask(0o022)
        try:
            bg = kvmtest.Background([f'kernel={HOSTILE}', FLOOD_SERIAL, f'serial=file:{log}',
                                     'serial.max_size=64K', 'timeout=120'], tag='maxsize')
        finally:
            os.umask(old)
        try:
            mode = None
            for _ in range(200):
                if os.path.exists(log):
                    mode = os.stat(log).st_mode & 0o777
                    break
                time.sleep(0.05)
            c.check('serial=file mode', mode == 0o600, f'created with mode 0600 ({mode:o})'
                    if mode is not None else 'the file was not created')
            flags = fd_flags(bg.pid, log)
            c.check('serial=file cloexec', flags is not None and flags & os.O_CLOEXEC != 0,
                    f'opened O_CLOEXEC (flags {flags:o})' if flags is not None
                    else 'no fd open on the log')
            size, end = -1, time.monotonic() + 60
            while time.monotonic() < end:
                size = os.path.getsize(log)
                if size >= 64 << 10 and 'serial.max_size' in bg.errors():
                    break
                time.sleep(0.1)
            time.sleep(1)
            size = os.path.getsize(log)
            os.kill(bg.pid, signal.SIGTERM)
            rc = bg.wait(20)
            errs = bg.errors()
            c.check('serial.max_size', size == 64 << 10 and os.path.getsize(log) == 64 << 10
                    and rc == 143, f'the log stops at 64 KiB ({size} bytes) while the guest '
                    f'prints on, and the VM still ends on SIGTERM (exit {rc})')
            c.check('serial.max_size said once', errs.count('reached serial.max_size') == 1,
                    f'reaching the limit is said once ({errs.strip()[:300]})')
        finally:
            bg.stop()


def test_terminal_restored(c: Checker) -> None:
    """With a terminal on stdin, kvmrun makes it raw and restores it."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    # hello ends within milliseconds, too fast to be sure of seeing raw mode;
    # the one-second timeout run must show it.
    for args, what, must_see_raw in (
            ([f'kernel={HELLO}'], 'after a guest power-off', False),
            ([f'kernel={guestrun.guest("memtest")}', 'mem=2G', 'timeout=1'], 'after a timeout',
             True)):
        proc = subprocess.Popen([kvmtest.kvmrun_binary()] + args, stdin=slave,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        saw_raw = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if not (termios.tcgetattr(slave)[3] & termios.ICANON):
                saw_raw = True
            time.sleep(0.005)
        proc.wait(30)
        after = termios.tcgetattr(slave)
        if must_see_raw:
            c.check(f'terminal raw {what}', saw_raw,
                    'while the guest runs, the terminal is in raw mode (no ICANON)')
        c.check(f'terminal restored {what}', after == before,
                f'termios identical afterwards (raw mode seen: {saw_raw})')
    os.close(master)
    os.close(slave)


def main() -> int:
    kvmtest.require_kvm()
    c = Checker()
    for t in (test_hello, test_debug_exit, test_crash, test_pvpanic, test_bad_kernels, test_reboot, test_timeout,
              test_signals, test_serial_backends, test_serial_unread, test_serial_file_safety,
              test_terminal_restored):
        t(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
