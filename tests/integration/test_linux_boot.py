"""kvmrun boots a stock distribution kernel (the Debian 12 cloud kernel):
what the kernel reports of the machine kvmrun built, through both boot
paths (an uncompressed ELF vmlinux and the bzImage), and, where the host runs
guests natively, full boots into a busybox initramfs that power off,
reboot and panic.

The kernel and initramfs come from scripts/fetch-linux-kernel (the host's
/boot/vmlinuz-*-cloud-amd64, or the Debian package unpacked into
build/linux/ without installing it); without them the test skips.

On a host whose KVM runs guests through its instruction emulator (the
calibration guest measures a few MIPS; see /work/shared/TESTING.md) the
kernel gets through early boot -- banner, command line, e820 map, KVM
detection, kvm-clock, the ACPI tables, the CPUs in the MADT, the memory
map summary -- and then stops when SLUB's first `lock cmpxchg16b` reaches
an emulator that lacks it (KVM internal error, kvmrun exit 3): about 60 s
for the vmlinux; the bzImage needs 2.5 to 4 minutes before its banner, as its LZ4
decompression runs under emulation (the Debian kernel is built without
CONFIG_X86_VERBOSE_BOOTUP, so its decompressor prints nothing). The tests
that need a kernel that finishes booting then skip with one line each.

Budget on such a host (2 cores): 5 to 6 minutes in all (measured: 293 s and
342 s), of which the bzImage takes 3 to 4.
"""
from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

import guestrun
import kvmtest
from kvmtest import Checker

MEM_MIB = 512
NATIVE_MIPS = 200          # the calibration guest's threshold for "native KVM"
EARLY_CMDLINE = 'console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 kvmrun.test=poweroff'
VMLINUX_DEADLINE = 240     # s until the vmlinux has printed its MADT summary
VMLINUX_RUN_DEADLINE = 240 # s for the run that watches where the kernel stops
BZIMAGE_BANNER_DEADLINE = 480  # s for the bzImage to decompress and print its banner
BZIMAGE_AFTER_BANNER = 120     # s more for the rest of its early boot
FULL_BOOT_TIMEOUT = 120    # s for a full boot into the initramfs (native KVM)

TS = re.compile(r'^\[\s*\d+\.\d+\] ')


def kernel_lines(text: str) -> list[str]:
    """Console lines with the printk timestamps removed."""
    return [TS.sub('', l) for l in text.replace('\r', '').splitlines()]


def fetch() -> tuple[str, str | None, str]:
    """(vmlinuz, initrd or None, cache dir) from scripts/fetch-linux-kernel;
    exits 77 when there is no kernel."""
    cache = os.path.join(os.environ.get('BUILD_ROOT', 'build'), 'linux')
    script = os.path.join(kvmtest.source_root(), 'scripts', 'fetch-linux-kernel')
    try:
        p = subprocess.run([script, cache], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f'SKIP: scripts/fetch-linux-kernel did not run: {e}')
        sys.exit(guestrun.SKIP)
    kernel = p.stdout.strip().splitlines()[0] if p.stdout.strip() else ''
    if p.returncode not in (0, 2) or not os.path.isfile(kernel):
        why = (p.stderr.strip().splitlines() or ['no reason given'])[-1]
        print(f'SKIP: no Debian cloud kernel to boot (scripts/fetch-linux-kernel: {why})')
        sys.exit(guestrun.SKIP)
    initrd = os.path.join(cache, 'kvmrun-initrd.cpio.gz')
    if p.returncode != 0 or not os.path.isfile(initrd):
        print('note: no initramfs: ' + (p.stderr.strip().splitlines() or ['?'])[-1])
        initrd = None
    return kernel, initrd, cache


# --- the uncompressed kernel inside a bzImage --------------------------------

def _lz4_block(src: memoryview, out: bytearray) -> None:
    """One LZ4 block (the format the kernel's legacy LZ4 frames carry)."""
    i, n = 0, len(src)
    while i < n:
        tok = src[i]
        i += 1
        lit = tok >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        if lit:
            out += src[i:i + lit]
            i += lit
        if i >= n:
            break
        off = src[i] | (src[i + 1] << 8)
        i += 2
        ml = tok & 15
        if ml == 15:
            while True:
                b = src[i]
                i += 1
                ml += b
                if b != 255:
                    break
        ml += 4
        if off == 0 or off > len(out):
            raise ValueError('bad LZ4 match offset')
        start = len(out) - off
        if ml <= off:
            out += out[start:start + ml]
        else:  # overlapping match: the pattern repeats
            pat = bytes(out[start:])
            while ml > 0:
                take = pat[:ml]
                out += take
                ml -= len(take)


def lz4_legacy_decompress(data: bytes) -> bytes:
    """The LZ4 legacy frame (`lz4 -l`, the kernel's CONFIG_KERNEL_LZ4)."""
    magic = 0x184C2102
    if struct.unpack_from('<I', data, 0)[0] != magic:
        raise ValueError('not an LZ4 legacy frame')
    i, out = 4, bytearray()
    view = memoryview(data)
    while i + 4 <= len(data):
        size, = struct.unpack_from('<I', data, i)
        if size == magic:
            i += 4
            continue
        if i + 4 + size > len(data):
            raise ValueError('truncated LZ4 block')
        block = bytearray()
        _lz4_block(view[i + 4:i + 4 + size], block)
        out += block
        i += 4 + size
    return bytes(out)


def _tool(cmd: list[str], data: bytes) -> bytes:
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise ValueError(f'{cmd[0]}: {p.stderr.decode(errors="replace").strip()}')
    return p.stdout


def extract_vmlinux(bz: bytes) -> tuple[bytes | None, str]:
    """(the ELF vmlinux, how) or (None, why not), from the bzImage's setup
    header: the payload at payload_offset/payload_length from the start of
    the protected-mode code, compressed, followed by its uncompressed size
    (4 bytes, little-endian; the kernel build's size_append)."""
    if len(bz) < 0x264 or bz[0x202:0x206] != b'HdrS':
        return None, 'not a bzImage (no HdrS setup header)'
    version, = struct.unpack_from('<H', bz, 0x206)
    if version < 0x208:
        return None, f'boot protocol {version >> 8}.{version & 0xff} has no payload fields'
    setup_sects = bz[0x1f1] or 4
    pm_start = (setup_sects + 1) * 512
    poff, plen = struct.unpack_from('<II', bz, 0x248)
    payload = bz[pm_start + poff:pm_start + poff + plen]
    if len(payload) != plen or plen < 8:
        return None, f'payload {poff:#x}+{plen:#x} runs past the file'
    want, = struct.unpack_from('<I', payload, plen - 4)
    body = payload[:-4]
    try:
        if body.startswith(b'\xfd7zXZ\x00'):
            how, out = 'xz', lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(body)
        elif body.startswith(b'\x1f\x8b'):
            how, out = 'gzip', zlib.decompressobj(31).decompress(body)
        elif body.startswith(b'\x28\xb5\x2f\xfd'):
            if not shutil.which('zstd'):
                return None, 'the payload is zstd and the zstd command is missing (apt-get install zstd)'
            how, out = 'zstd', _tool(['zstd', '-dcq'], body)
        elif body.startswith(b'\x02\x21\x4c\x18'):
            if shutil.which('lz4'):
                how, out = 'lz4 (lz4 command)', _tool(['lz4', '-dcq'], body)
            else:
                how, out = 'lz4 (in Python)', lz4_legacy_decompress(body)
        elif body.startswith(b'\x5d\x00\x00'):
            how, out = 'lzma', lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(body)
        else:
            return None, f'unsupported payload compression (magic {body[:4].hex()})'
    except (ValueError, lzma.LZMAError, zlib.error, OSError, subprocess.TimeoutExpired) as e:
        return None, f'decompressing the payload failed: {e}'
    if len(out) != want:
        return None, f'{how}: got {len(out)} bytes, the size trailer says {want}'
    if not out.startswith(b'\x7fELF\x02'):
        return None, f'{how}: the payload is not an ELF64 vmlinux'
    return out, how


def vmlinux_for(kernel: str, cache: str, c: Checker) -> str | None:
    name = os.path.join(cache, 'vmlinux-' + os.path.basename(kernel).removeprefix('vmlinuz-'))
    if os.path.isfile(name) and os.path.getmtime(name) >= os.path.getmtime(kernel):
        c.check('vmlinux extracted', True, f'{name} (cached)')
        return name
    t = time.monotonic()
    with open(kernel, 'rb') as f:
        data, how = extract_vmlinux(f.read())
    if data is None:
        c.skip('vmlinux boot', f'no vmlinux from {kernel}: {how}')
        return None
    os.makedirs(cache, exist_ok=True)
    with open(name + '.tmp', 'wb') as f:
        f.write(data)
    os.replace(name + '.tmp', name)
    c.check('vmlinux extracted', True,
            f'{len(data) >> 20} MiB ELF from the bzImage payload ({how}, {time.monotonic() - t:.1f}s)')
    return name


# --- calibration ------------------------------------------------------------

def calibrate(c: Checker) -> float | None:
    """Guest MIPS measured by the calibration guest, or None."""
    r = kvmtest.run_kvmrun([f'kernel={guestrun.guest("calibrate")}', 'timeout=60'], timeout=90)
    m = r.find(r'calibrate: kips=(\d+)')
    if r.rc != 0 or not m:
        c.check('calibration guest', False, f'prints calibrate: kips=N and powers off (rc {r.rc})', r)
        return None
    mips = int(m[0].group(1)) / 1000
    src = r.find(r'calibrate: tsc_hz=(\d+) source=(\S+)')
    how = f'TSC {int(src[0].group(1)) / 1e9:.2f} GHz from {src[0].group(2)}' if src else ''
    print(f'info: this host runs guest code at {mips:.1f} M instructions/s ({how}); '
          f'native KVM is >= {NATIVE_MIPS}', flush=True)
    return mips


def emulated_reason(mips: float | None) -> str | None:
    if mips is None:
        return 'the calibration guest did not run, so the host speed is unknown'
    if mips < NATIVE_MIPS:
        return (f"this host runs guests through KVM's instruction emulator ({mips:.1f} M instr/s); "
                'a full Linux boot needs native KVM')
    return None


# --- watching an early boot --------------------------------------------------

class Boot:
    """kvmrun on a Linux kernel in the background; the console is read as
    it arrives."""

    def __init__(self, args: list[str], tag: str) -> None:
        self.args = args
        self.start = time.monotonic()
        self.bg = kvmtest.Background(args, tag=tag)
        self.rc: int | None = None
        self.out = ''
        self.err = ''

    def lines(self) -> list[str]:
        return kernel_lines(self.out if self.rc is not None else self.bg.output(complete=True))

    def wait_for(self, pattern: str, deadline: float) -> float | None:
        """Seconds since start when a line matched, or None (deadline or exit)."""
        rx = re.compile(pattern)
        while True:
            if any(rx.search(l) for l in self.lines()):
                return time.monotonic() - self.start
            if self.bg.proc.poll() is not None or time.monotonic() - self.start > deadline:
                return None
            time.sleep(0.2)

    def wait_exit(self, deadline: float) -> int | None:
        left = deadline - (time.monotonic() - self.start)
        return self.bg.wait(max(left, 0.1))

    def stop(self) -> int | None:
        """SIGTERM (if still running), wait, and collect everything."""
        proc = self.bg.proc
        if proc.poll() is None:
            proc.terminate()
        try:
            self.rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.rc = proc.wait()
        self.out = self.bg.output()
        self.err = self.bg.errors()
        self.bg.close()
        return self.rc

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def describe(self) -> str:
        tail = '\n'.join(self.lines()[-25:])
        return (f'command: kvmrun {" ".join(self.args)}\nexit: {self.rc}'
                f'\n--- last console lines ---\n{tail}\n--- stderr ---\n{self.err}')


def expected_e820(mem_mib: int) -> list[tuple[int, int, str]]:
    return [(0, 0x9fbff, 'usable'), (0x9fc00, 0xfffff, 'reserved'),
            (0x100000, (mem_mib << 20) - 1, 'usable')]


ACPI_TABLE = re.compile(r'^ACPI: (RSDP|XSDT|FACP|DSDT|APIC) 0x([0-9A-F]+) ([0-9A-F]+) \((v\d\d) '
                        r'(\S+)(?: +(\S+) +([0-9A-F]{8}) +(\S+) +([0-9A-F]{8}))?\)$')


def check_early(c: Checker, b: Boot, what: str, cmdline: str, cpus: int,
                initrd_len: int | None) -> None:
    """What the kernel printed of kvmrun's machine in early boot."""
    lines = b.lines()
    fail = b.describe()

    def chk(name: str, ok: bool, detail: str) -> None:
        c.check(f'{what}: {name}', ok, detail)
        if not ok:
            print(fail, flush=True)

    chk('banner', any(l.startswith('Linux version ') for l in lines),
        'the kernel prints "Linux version ..."')
    got = [l[len('Command line: '):] for l in lines if l.startswith('Command line: ')]
    chk('command line', got == [cmdline], f'"Command line:" is ours exactly (got {got})')

    e820 = []
    for l in lines:
        m = re.match(r'^BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (.+)$', l)
        if m:
            e820.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    want = expected_e820(MEM_MIB)
    chk('e820 map', e820 == want,
        'BIOS-e820: ' + ', '.join(f'{a:#x}-{e:#x} {t}' for a, e, t in want)
        + ('' if e820 == want else f' (got {e820})'))

    chk('KVM detected', 'Hypervisor detected: KVM' in lines,
        '"Hypervisor detected: KVM" (the CPUID 0x40000000 signature)')
    chk('kvm-clock', any(l.startswith('kvm-clock: Using msrs') for l in lines)
        and any(l.startswith('clocksource: kvm-clock:') for l in lines),
        'kvm-clock is registered as a clocksource')

    tables = {}
    for l in lines:
        m = ACPI_TABLE.match(l)
        if m:
            tables.setdefault(m.group(1), m)
    missing = [t for t in ('RSDP', 'XSDT', 'FACP', 'DSDT', 'APIC') if t not in tables]
    bad_oem = [t for t, m in tables.items()
               if m.group(5) != 'KVMRUN' or (t != 'RSDP' and (m.group(6), m.group(8)) != ('KVMRUNVM', 'KVMR'))]
    rsdp_ok = 'RSDP' in tables and tables['RSDP'].group(4) == 'v02'
    chk('ACPI tables', not missing and not bad_oem and rsdp_ok,
        'RSDP (v02), XSDT, FACP, DSDT, APIC, OEM KVMRUN/KVMRUNVM, creator KVMR'
        + (f' (missing {missing})' if missing else '') + (f' (wrong ids: {bad_oem})' if bad_oem else ''))
    chk('ACPI MADT used', 'ACPI: Using ACPI (MADT) for SMP configuration information' in lines,
        'the kernel takes its CPUs from the MADT')
    allow = [l for l in lines if l.startswith('smpboot: Allowing ')]
    chk('CPUs in the MADT', allow == [f'smpboot: Allowing {cpus} CPUs, 0 hotplug CPUs'],
        f'"smpboot: Allowing {cpus} CPUs, 0 hotplug CPUs" (got {allow})')
    if initrd_len is not None:
        rd = [re.match(r'^RAMDISK: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]$', l) for l in lines]
        rd = [m for m in rd if m]
        size = (initrd_len + 4095) & ~4095
        ok = len(rd) == 1 and int(rd[0].group(2), 16) + 1 - int(rd[0].group(1), 16) == size \
            and 0x100000 <= int(rd[0].group(1), 16) and int(rd[0].group(2), 16) < MEM_MIB << 20
        chk('initrd found', ok, f'"RAMDISK: [mem ...]" spans the initrd ({size:#x} bytes) inside RAM'
            + ('' if ok else f' (got {[m.group(0) for m in rd]})'))


def last_words(b: Boot, n: int = 3) -> str:
    tail = [l for l in b.lines() if l.strip()][-n:]
    err = [l for l in b.err.splitlines() if l.strip()][-1:]
    return ' | '.join(tail) + (f'  [kvmrun: {err[0]}]' if err else '')


# --- c. the vmlinux -----------------------------------------------------------

def test_vmlinux_early(c: Checker, vmlinux: str, initrd: str | None) -> None:
    args = [f'kernel={vmlinux}', f'cmdline={EARLY_CMDLINE}', 'cpus=2', f'mem={MEM_MIB}M',
            f'timeout={VMLINUX_DEADLINE + 60}']
    if initrd:
        args.append(f'initrd={initrd}')
    b = Boot(args, 'vmlinux')
    t_banner = b.wait_for(r'^Linux version ', VMLINUX_DEADLINE)
    t_madt = b.wait_for(r'^smpboot: Allowing \d+ CPUs', VMLINUX_DEADLINE)
    running = b.bg.proc.poll() is None
    rc = b.stop()
    print(f'info: vmlinux: banner after {t_banner or -1:.1f}s, MADT summary after '
          f'{t_madt or -1:.1f}s', flush=True)
    c.check('vmlinux: early boot', t_madt is not None,
            f'the kernel reaches "smpboot: Allowing N CPUs" within {VMLINUX_DEADLINE}s')
    if t_madt is None:
        print(b.describe(), flush=True)
    check_early(c, b, 'vmlinux', EARLY_CMDLINE, 2,
                os.path.getsize(initrd) if initrd else None)
    if running:
        c.check('vmlinux: SIGTERM', rc == 143, f'kvmrun stops on SIGTERM with 143 (got {rc})')


# --- the topology -------------------------------------------------------------

def test_topology(c: Checker, vmlinux: str, initrd: str | None, emulated: str | None) -> None:
    """cpu_topology as the kernel sees it. The kernel reports packages only
    after it has started its secondary CPUs, which an emulating host never
    gets to: there, run 2 sockets once to see where the kernel stops."""
    shapes = [('2:1:1', 2), ('1:2:1', 1)]  # (topology, packages)
    if emulated:
        topo, _ = shapes[0]
        b = Boot([f'kernel={vmlinux}', f'cmdline={EARLY_CMDLINE}', 'cpus=2',
                  f'cpu_topology={topo}', f'mem={MEM_MIB}M', f'timeout={VMLINUX_RUN_DEADLINE}'],
                 'topo')
        t_madt = b.wait_for(r'^smpboot: Allowing \d+ CPUs', VMLINUX_RUN_DEADLINE)
        rc = b.wait_exit(VMLINUX_RUN_DEADLINE)
        b.stop()
        allow = [l for l in b.lines() if l.startswith('smpboot: Allowing ')]
        c.check(f'topology {topo}: CPUs in the MADT',
                allow == ['smpboot: Allowing 2 CPUs, 0 hotplug CPUs'],
                f'2 sockets: the MADT lists both CPUs (got {allow})')
        if t_madt is None:
            print(b.describe(), flush=True)
        packages = [l for l in b.lines() if l.startswith('smpboot: Max logical packages:')]
        if packages:
            c.check(f'topology {topo}: packages', packages == ['smpboot: Max logical packages: 2'],
                    f'the kernel counts 2 packages (got {packages})')
        else:
            how = f'kvmrun exit {rc}' if rc is not None else f'still running after {VMLINUX_RUN_DEADLINE}s'
            print(f'info: on this host the kernel stops {b.elapsed():.0f}s into the boot ({how}); '
                  f'last words: {last_words(b)}', flush=True)
            c.skip(f'topology {topo}: packages', 'the kernel stopped before it reports its packages '
                   f'(it does so after bringing up the secondary CPUs): {emulated}')
        c.skip('topology 1:2:1', 'its MADT is the same as 2:1:1 (APIC IDs 0 and 1); the difference '
               'shows only in CPUID, after SMP bring-up, which this host never reaches')
        return
    for topo, packages in shapes:
        args = [f'kernel={vmlinux}', 'cmdline=console=ttyS0 panic=-1 kvmrun.test=poweroff', 'cpus=2',
                f'cpu_topology={topo}', f'mem={MEM_MIB}M', f'timeout={FULL_BOOT_TIMEOUT}']
        if initrd:
            args.append(f'initrd={initrd}')
        r = kvmtest.run_kvmrun(args, timeout=FULL_BOOT_TIMEOUT + 30)
        lines = kernel_lines(r.out)
        c.check(f'topology {topo}: packages', f'smpboot: Max logical packages: {packages}' in lines,
                f'the kernel counts {packages} package(s)', r)
        c.check(f'topology {topo}: CPUs up', 'smp: Brought up 1 node, 2 CPUs' in lines,
                'both CPUs come up', r)
        if initrd:
            c.check(f'topology {topo}: nproc', 'kvmrun-init: nproc 2' in lines and r.rc == 0,
                    f'init sees 2 CPUs and powers off (rc {r.rc})', r)


# --- d. the bzImage -------------------------------------------------------------

def test_bzimage_early(c: Checker, kernel: str, initrd: str | None, emulated: str | None) -> None:
    """The bzImage through the boot protocol, one CPU (decompression runs on
    the boot CPU alone; an emulating host takes minutes)."""
    deadline = BZIMAGE_BANNER_DEADLINE + BZIMAGE_AFTER_BANNER
    args = [f'kernel={kernel}', f'cmdline={EARLY_CMDLINE}', 'cpus=1', f'mem={MEM_MIB}M',
            f'timeout={deadline + 60}']
    if initrd:
        args.append(f'initrd={initrd}')
    b = Boot(args, 'bzimage')
    t_banner = b.wait_for(r'^Linux version ', BZIMAGE_BANNER_DEADLINE)
    t_madt = None
    if t_banner is not None:
        t_madt = b.wait_for(r'^smpboot: Allowing \d+ CPUs', t_banner + BZIMAGE_AFTER_BANNER)
    running = b.bg.proc.poll() is None
    rc = b.stop()
    print(f'info: bzImage: decompressed and printed its banner after {t_banner or -1:.0f}s, '
          f'MADT summary after {t_madt or -1:.0f}s', flush=True)
    if t_banner is None:
        c.check('bzImage: decompression', False,
                f'the kernel decompresses and prints its banner within {BZIMAGE_BANNER_DEADLINE}s')
        print(b.describe(), flush=True)
        return
    c.check('bzImage: decompression', True,
            f'the decompressor ran at pref_address and entered the kernel ({t_banner:.0f}s)')
    c.check('bzImage: early boot', t_madt is not None,
            f'the kernel reaches "smpboot: Allowing N CPUs" within {BZIMAGE_AFTER_BANNER}s of its banner')
    check_early(c, b, 'bzImage', EARLY_CMDLINE, 1, os.path.getsize(initrd) if initrd else None)
    if running:
        c.check('bzImage: SIGTERM', rc == 143, f'kvmrun stops on SIGTERM with 143 (got {rc})')


# --- e. full boots (native KVM only) ---------------------------------------------

def full_boot(kernel: str, initrd: str, action: str, extra: list[str] = (),
              timeout: float = FULL_BOOT_TIMEOUT) -> guestrun.Result:
    return kvmtest.run_kvmrun([f'kernel={kernel}', f'initrd={initrd}', 'cpus=2', f'mem={MEM_MIB}M',
                               f'cmdline=console=ttyS0 panic=-1 kvmrun.test={action}',
                               f'timeout={int(timeout)}'] + list(extra), timeout=timeout + 30)


def test_full_boots(c: Checker, kernel: str, initrd: str) -> None:
    version = os.path.basename(kernel).removeprefix('vmlinuz-')

    r = full_boot(kernel, initrd, 'poweroff')
    lines = kernel_lines(r.out)
    c.check('init starts', 'kvmrun-init: start' in lines, 'the initramfs init runs', r)
    c.check('init kernel', f'kvmrun-init: kernel {version}' in lines, f'uname -r is {version}', r)
    c.check('init nproc', 'kvmrun-init: nproc 2' in lines, 'both CPUs are online', r)
    mt = [re.match(r'^kvmrun-init: MemTotal: +(\d+) kB$', l) for l in lines]
    mt = [int(m.group(1)) for m in mt if m]
    c.check('init MemTotal', len(mt) == 1 and MEM_MIB * 1024 * 0.6 < mt[0] < MEM_MIB * 1024,
            f'MemTotal is most of {MEM_MIB} MiB (got {mt} kB)', r)
    c.check('poweroff', r.rc == 0 and 'reboot: Power down' in lines,
            f'poweroff -f (ACPI S5) ends kvmrun with 0 (got {r.rc})', r)

    r = full_boot(kernel, initrd, 'reboot', ['on_reboot=exit'])
    c.check('reboot on_reboot=exit', r.rc == 0 and 'kvmrun-init: test=reboot' in kernel_lines(r.out),
            f'reboot -f (ACPI reset register) ends kvmrun with 0 (got {r.rc})', r)

    b = Boot([f'kernel={kernel}', f'initrd={initrd}', 'cpus=2', f'mem={MEM_MIB}M', 'on_reboot=restart',
              'cmdline=console=ttyS0 panic=-1 kvmrun.test=reboot', f'timeout={FULL_BOOT_TIMEOUT * 2}'],
             'restart')
    deadline = time.monotonic() + FULL_BOOT_TIMEOUT * 2
    while time.monotonic() < deadline and b.bg.proc.poll() is None:
        if sum(l == 'kvmrun-init: start' for l in b.lines()) >= 2:
            break
        time.sleep(0.2)
    rc = b.stop()
    starts = sum(l == 'kvmrun-init: start' for l in b.lines())
    banners = sum(l.startswith('Linux version ') for l in b.lines())
    ok = starts >= 2 and banners >= 2 and rc in (143, 124)
    c.check('reboot on_reboot=restart', ok,
            f'the kernel boots again after its reboot ({banners} banners, {starts} init starts, '
            f'then SIGTERM: rc {rc})')
    if not ok:
        print(b.describe(), flush=True)

    r = full_boot(kernel, initrd, 'panic', ['on_reboot=exit'], timeout=60)
    lines = kernel_lines(r.out)
    c.check('panic', any(l.startswith('Kernel panic - not syncing') for l in lines) and r.rc == 3
            and 'kvmrun-init: loaded pvpanic' in r.out,
            'a kernel panic reaches kvmrun through the pvpanic port (the initramfs loads '
            f'pvpanic) and ends it with the crash exit code 3 (got {r.rc} after {r.wall:.0f}s)', r)


def main() -> int:
    kvmtest.require_kvm()
    t0 = time.monotonic()
    kernel, initrd, cache = fetch()
    c = Checker()
    print(f'info: kernel {kernel}, initramfs {initrd or "(none)"}', flush=True)
    mips = calibrate(c)
    emulated = emulated_reason(mips)

    vmlinux = vmlinux_for(kernel, cache, c)
    if vmlinux:
        test_vmlinux_early(c, vmlinux, initrd)
        test_topology(c, vmlinux, initrd, emulated)
    test_bzimage_early(c, kernel, initrd, emulated)

    full = ['init starts', 'init kernel', 'init nproc', 'init MemTotal', 'poweroff',
            'reboot on_reboot=exit', 'reboot on_reboot=restart', 'panic']
    if emulated:
        for name in full:
            c.skip(name, emulated)
    elif not initrd:
        for name in full:
            c.skip(name, 'no initramfs (scripts/fetch-linux-kernel must run as root to build it)')
    else:
        test_full_boots(c, kernel, initrd)
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
