"""Stock Linux guests driven step by step, for the driver tests
(test_linux_blk.py, test_linux_net.py, test_linux_mem.py) and
tests/bench/compare (standard library only).

The guest is Debian's cloud kernel with the test initramfs
(tests/linux/make-initramfs.sh) started as `kvmrun.run=agent`: it loads the
virtio drivers, mounts the tools disk (tests/linux/make-tools-disk.sh: fio,
iperf3, e2fsprogs, ethtool) from the virtio disk whose serial is
`kvmrun-tools`, and runs tests/linux/guest/agent.sh, a command loop on the
serial console. The host sends shell commands through the VMM's stdin
(COM1's input) and reads their output and status back from the console:

    files = linuxguest.files()                  # skips without a kernel
    vm = linuxguest.VM(linuxguest.kvmrun_cmd(files, ['mem=512M']), 'blk')
    vm.ready()
    rc, out = vm.sh('cat /sys/block/vda/serial')
    vm.finish()                                  # 'exit': init powers off

The same works for QEMU (`qemu-system-x86_64 -serial stdio`), which
tests/bench/compare uses.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import guestrun
import kvmtest

TOOLS_SERIAL = 'kvmrun-tools'
# One boot in the nested lane takes 15-40 s; natively well under a second.
BOOT_TIMEOUT = 240
CMDLINE = 'console=ttyS0 quiet panic=-1 kvmrun.run=agent'

TS = re.compile(r'^\[\s*\d+\.\d+\] ')
# What the guest kernel prints when a block request or a file system fails.
IO_ERROR = re.compile(r'I/O error|blk_update_request|print_req_error|Buffer I/O error|'
                      r'EXT4-fs error|EXT4-fs \(vd\w+\): (?:error|warning)|critical medium error|'
                      r'virtio_blk.*error', re.I)


class Files:
    def __init__(self, kernel: str, initrd: str, tools: str, cache: str) -> None:
        self.kernel, self.initrd, self.tools, self.cache = kernel, initrd, tools, cache


def in_lane() -> bool:
    return os.environ.get('KVMRUN_LANE') == 'nested'


def require_linux() -> None:
    """Skips (exit 77) where stock Linux cannot run: no /dev/kvm, or one
    without hardware virtualisation under it (tests/run then runs the
    suite in the nested lane)."""
    kvmtest.require_kvm()
    kind, why = kvmtest.host_kvm()
    if kind != 'native':
        kvmtest.skip(f'{why}; Linux needs hardware virtualisation: tests/run runs this in the '
                     'nested lane')


def files(cache: str | None = None) -> Files:
    """The kernel, initramfs and tools disk from scripts/fetch-linux-kernel
    (cached in BUILD_ROOT/linux; fetched on this host before the nested
    lane, which has no network). Skips (exit 77) without a kernel or
    initramfs; fails (exit 1) without a tools disk, which needs no root."""
    cache = cache or os.path.join(os.environ.get('BUILD_ROOT', 'build'), 'linux')
    script = os.path.join(kvmtest.source_root(), 'scripts', 'fetch-linux-kernel')
    try:
        p = subprocess.run([script, cache], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        kvmtest.skip(f'scripts/fetch-linux-kernel did not run: {e}')
    kernel = p.stdout.strip().splitlines()[0] if p.stdout.strip() else ''
    why = (p.stderr.strip().splitlines() or ['no reason given'])[-1]
    if p.returncode not in (0, 2) or not os.path.isfile(kernel):
        kvmtest.skip(f'no Debian cloud kernel to boot (scripts/fetch-linux-kernel: {why})')
    initrd = os.path.join(cache, 'kvmrun-initrd.cpio.gz')
    if p.returncode != 0 or not os.path.isfile(initrd):
        kvmtest.skip(f'no initramfs (scripts/fetch-linux-kernel: {why}; it needs root)')
    tools = os.path.join(cache, 'kvmrun-tools.img')
    if not os.path.isfile(tools):
        print(f'FAIL tools disk: {tools} was not built: {why}')
        sys.exit(1)
    return Files(kernel, initrd, tools, cache)


def kvmrun_cmd(f: Files, extra: list[str], cmdline: str = CMDLINE,
               tools_index: int = 0, timeout: int = 900) -> list[str]:
    """kvmrun with the kernel, the initramfs and the tools disk (read-only,
    disk@tools_index), the agent's command line and @extra keys."""
    t = f'disk{tools_index}'
    return [kvmtest.kvmrun_binary(), f'kernel={f.kernel}', f'initrd={f.initrd}',
            f'{t}.path={f.tools}', f'{t}.readonly=on', f'{t}.serial={TOOLS_SERIAL}',
            f'cmdline={cmdline}', f'timeout={timeout}'] + list(extra)


KERNEL_TROUBLE = re.compile(r'WARNING:|BUG:|Oops|double fault|general protection|Kernel panic')

class VM:
    """A VMM running a Linux guest with the agent, in the background, with
    its console in a file and its stdin a pipe to COM1."""

    def __init__(self, cmd: list[str], tag: str, netns: str | None = None) -> None:
        self.tag = tag
        self.cmd = (['ip', 'netns', 'exec', netns] if netns else []) + list(cmd)
        d = tempfile.gettempdir()
        self.out_path = os.path.join(d, f'kvmrun-linux-{os.getpid()}-{tag}.out')
        self.err_path = os.path.join(d, f'kvmrun-linux-{os.getpid()}-{tag}.err')
        self.out = open(self.out_path, 'wb')
        self.err = open(self.err_path, 'wb')
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=self.out,
                                     stderr=self.err, start_new_session=True)
        self.pid = self.proc.pid
        self.rc: int | None = None
        self.seq = 0
        self.pos = 0  # console offset where the last command's output was looked for
        self.t_ready: float | None = None
        # set when a command outlived its timeout: the agent runs one
        # command at a time, so every later one would wait out its own
        # timeout behind it (a guest wedged in the emulated nested lane
        # cost a CI run 20 minutes that way)
        self.wedged: str | None = None

    # ---- the console ----
    def output(self) -> str:
        with open(self.out_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\r', '')

    def lines(self, kernel: bool = True) -> list[str]:
        """Whole console lines, printk timestamps removed; without the
        kernel's own lines when not @kernel."""
        text = self.output()
        if self.proc.poll() is None:
            text = text[:text.rfind('\n') + 1]
        if not kernel:
            return [l for l in text.splitlines() if not TS.match(l)]
        return [TS.sub('', l) for l in text.splitlines()]

    def errors(self) -> str:
        with open(self.err_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def io_errors(self) -> list[str]:
        """Console lines where the guest kernel reports a failed I/O."""
        return [l for l in self.lines() if IO_ERROR.search(l)]

    def describe(self, tail: int = 60) -> str:
        out = self.output().splitlines()
        # a guest kernel's first complaint, which the tail may have lost
        first = next((i for i, l in enumerate(out) if KERNEL_TROUBLE.search(l)), None)
        early = ''
        if first is not None and first < len(out) - tail:
            early = (f'--- console from the kernel\'s first complaint (line {first + 1}) ---\n' +
                     '\n'.join(out[first:first + 40]) + '\n')
        return (f'command: {" ".join(self.cmd)}\nexit: {self.proc.poll()}\n' + early +
                f'--- console (last {tail} lines) ---\n' + '\n'.join(out[-tail:]) +
                f'\n--- stderr ---\n{self.errors()[-3000:]}' +
                (kvmtest.thread_states(self.pid) if self.proc.poll() is None else ''))

    def wait_line(self, pattern: str, timeout: float) -> re.Match | None:
        """The first console line matching @pattern, waiting up to
        @timeout s; None if the VMM ended or time ran out first."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            for l in self.lines():
                m = rx.search(l)
                if m:
                    return m
            if self.proc.poll() is not None or time.monotonic() > end:
                return None
            time.sleep(0.05)

    def ready(self, timeout: float = BOOT_TIMEOUT) -> bool:
        """Waits for the agent's first line; False if it never came."""
        ok = self.wait_line(r'^kvmrun-t: ready$', timeout) is not None
        if ok:
            self.t_ready = time.monotonic() - self.start
        return ok

    # ---- commands ----
    def send(self, text: str) -> None:
        """Writes a line to the guest's console. A VMM that has ended is
        reported with its exit status (negative: killed by that signal,
        -9 often the OOM killer) and its stderr, not a bare BrokenPipe."""
        try:
            self.proc.stdin.write(text.encode() + b'\n')
            self.proc.stdin.flush()
        except BrokenPipeError:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            raise RuntimeError(f'{self.tag}: the VMM is gone before "{text[:60]}" '
                               f'could be sent\n{self.describe()}') from None

    def start_cmd(self, cmd: str) -> int:
        """Sends @cmd without waiting; returns its id for wait_cmd()."""
        if '\n' in cmd:
            raise ValueError('one line per command')
        if self.wedged and cmd != 'exit':
            raise RuntimeError(f'{self.tag}: not sending "{cmd[:60]}": {self.wedged}')
        self.seq += 1
        self.send(f'@{self.seq} {cmd}')
        return self.seq

    def wait_cmd(self, cid: int, timeout: float) -> tuple[int | None, list[str]]:
        """(exit status, output lines) of command @cid; status None when it
        did not finish in @timeout s or the VMM ended."""
        # The end marker may follow output that did not end its line.
        begin, end = f'kvmrun-t: begin {cid}', re.compile(rf'kvmrun-t: end {cid} rc=(\d+)$')
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines(kernel=False)
            if begin in lines:
                i = lines.index(begin)
                for j in range(i + 1, len(lines)):
                    m = end.search(lines[j])
                    if m:
                        last = [lines[j][:m.start()]] if m.start() else []
                        return int(m.group(1)), lines[i + 1:j] + last
            if self.proc.poll() is None and time.monotonic() > deadline:
                self.wedged = f'command @{cid} did not finish in {timeout:.0f}s'
                print(f'info: {self.tag}: {self.wedged}; the VM as it stands:\n{self.describe()}',
                      flush=True)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return None, lines[lines.index(begin) + 1:] if begin in lines else []
            time.sleep(0.05)

    def sh(self, cmd: str, timeout: float = 120) -> tuple[int | None, list[str]]:
        """Runs @cmd in the guest: (exit status or None, output lines)."""
        return self.wait_cmd(self.start_cmd(cmd), timeout)

    def value(self, cmd: str, timeout: float = 120) -> str | None:
        """The last output line of @cmd when it succeeded, else None."""
        rc, out = self.sh(cmd, timeout)
        return out[-1].strip() if rc == 0 and out else None

    # ---- the end ----
    def finish(self, timeout: float = 120) -> int | None:
        """Ends the agent (init then powers off) and waits for the VMM;
        kills it if it does not end. Returns its exit status (None: killed)."""
        if self.proc.poll() is None:
            try:
                self.start_cmd('exit')
            except (OSError, RuntimeError):  # it ended on its own
                pass
        return self.wait(min(timeout, 10) if self.wedged else timeout)

    def wait(self, timeout: float) -> int | None:
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.rc = None
        self.close()
        return self.rc

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """@sig to the VMM's whole process group (ip netns exec included)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for f in (self.out, self.err, self.proc.stdin):
            try:
                f.close()
            except OSError:
                pass

    def cleanup(self) -> None:
        self.close()
        for p in (self.out_path, self.err_path):
            try:
                os.unlink(p)
            except OSError:
                pass

    def vmm_pid(self) -> int:
        """The VMM's own pid: through `ip netns exec` it is the same
        process (exec), so this is self.pid."""
        return self.pid


def image(path: str, size: int, fill: bool = False) -> str:
    """A raw image of @size bytes: sparse, or written in full with @fill
    (a sparse file reads its holes without any I/O)."""
    with open(path, 'wb') as f:
        if fill:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        else:
            f.truncate(size)
    return path


def allocated(path: str) -> int:
    """Bytes the file system holds for @path (what `du` shows)."""
    return os.stat(path).st_blocks * 512


def scratch_dir(tag: str) -> str:
    """A directory for images on a file system that takes O_DIRECT: $TMPDIR
    (the nested lane's ext4 scratch disk), else /var/tmp."""
    return tempfile.mkdtemp(prefix=f'kvmrun-{tag}-', dir=os.environ.get('TMPDIR', '/var/tmp'))


def guest_ok(c: kvmtest.Checker, name: str, vm: VM, rc: int | None, detail: str) -> bool:
    ok = c.check(name, rc == 0, f'{detail} (kvmrun exit {rc})')
    if not ok:
        print(vm.describe(), flush=True)
    return ok


def check_io_errors(c: kvmtest.Checker, name: str, vm: VM) -> None:
    errs = vm.io_errors()
    c.check(f'{name}: no I/O errors', not errs,
            'the guest kernel logged no I/O or file-system error'
            + (f' (got {errs[:5]})' if errs else ''))
