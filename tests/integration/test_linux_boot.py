"""Stock Linux under kvmrun, end to end: the Debian 12 cloud kernel, as a
bzImage (the Linux x86 boot protocol) and as the uncompressed ELF vmlinux
inside it, boots into the project's busybox initramfs
(tests/linux/make-initramfs.sh) and ends as the guest asks:

- the machine the kernel reports in early boot (e820 map, ACPI tables, the
  CPUs in the MADT, kvm-clock, the initrd);
- init runs with 1, 2 and 4 vCPUs, and sees them all (nproc) and the RAM
  it was given (MemTotal);
- `poweroff -f` ends kvmrun with 0; `reboot -f` with 0 under
  on_reboot=exit, and boots the guest again under on_reboot=restart;
- a panic ends it with 3 through pvpanic;
- cpu_topology=2:2:1 is what /sys/devices/system/cpu/*/topology shows;
- the guest's clock runs at the host's rate (within 2% over 10 s of guest
  uptime, timed by the guest between edges of the RTC, which reads the
  host's clock).

Needs hardware virtualisation: on a host without it (no /dev/kvm, or one
backed by KVM's instruction emulator, where Linux stops at its first
cmpxchg16b) tests/run runs this suite in the nested lane (tests/nested/l1).
Run directly on such a host, it skips with the reason.

The kernel and initramfs come from scripts/fetch-linux-kernel (the host's
/boot/vmlinuz-*-cloud-amd64, or the Debian package unpacked into
build/linux/ without installing it).
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
# A boot in the nested lane takes 15-40 s (2 host cores, TCG under it);
# natively well under a second.
BOOT_TIMEOUT = 300
CLOCK_TOLERANCE = 0.02

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
        c.check('vmlinux extracted', False, f'no vmlinux from {kernel}: {how}')
        return None
    os.makedirs(cache, exist_ok=True)
    with open(name + '.tmp', 'wb') as f:
        f.write(data)
    os.replace(name + '.tmp', name)
    c.check('vmlinux extracted', True,
            f'{len(data) >> 20} MiB ELF from the bzImage payload ({how}, {time.monotonic() - t:.1f}s)')
    return name


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



class Boot:
    """One kvmrun run of a Linux kernel, in the background, its console
    read as it arrives."""

    def __init__(self, kernel: str, initrd: str, cpus: int, cmdline: str,
                 extra: list[str] = (), tag: str = 'linux') -> None:
        self.args = [f'kernel={kernel}', f'initrd={initrd}', f'cpus={cpus}', f'mem={MEM_MIB}M',
                     f'cmdline={cmdline}', f'timeout={BOOT_TIMEOUT}'] + list(extra)
        self.start = time.monotonic()
        self.bg = kvmtest.Background(self.args, tag=tag)
        self.rc: int | None = None
        self.out = ''
        self.err = ''
        self.t_init: float | None = None

    def lines(self) -> list[str]:
        return kernel_lines(self.out if self.rc is not None else self.bg.output(complete=True))

    def wait_for(self, pattern: str, count: int = 1) -> float | None:
        """Seconds since start when @count lines have matched, or None
        (kvmrun ended first, or BOOT_TIMEOUT passed)."""
        rx = re.compile(pattern)
        while True:
            if sum(bool(rx.search(l)) for l in self.lines()) >= count:
                return time.monotonic() - self.start
            if self.bg.proc.poll() is not None or time.monotonic() - self.start > BOOT_TIMEOUT + 30:
                return None
            time.sleep(0.1)

    def finish(self, stop: bool = False) -> int | None:
        """Waits for kvmrun to end (SIGTERM first with @stop), collects
        everything, and returns its exit status (None if it hung)."""
        proc = self.bg.proc
        if stop and proc.poll() is None:
            proc.terminate()
        try:
            self.rc = proc.wait(max(1.0, BOOT_TIMEOUT + 30 - (time.monotonic() - self.start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.rc = None
        self.out = self.bg.output()
        self.err = self.bg.errors()
        self.bg.close()
        return self.rc

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def describe(self) -> str:
        tail = '\n'.join(self.lines()[-40:])
        return (f'command: kvmrun {" ".join(self.args)}\nexit: {self.rc} after {self.elapsed():.0f}s'
                f'\n--- last console lines ---\n{tail}\n--- stderr ---\n{self.err}')


def cmdline(action: str, reports: str = '', quiet: bool = True) -> str:
    c = f'console=ttyS0 panic=-1 kvmrun.test={action}'
    if reports:
        c += f' kvmrun.report={reports}'
    return c + (' quiet' if quiet else '')


def init_lines(b: Boot) -> list[str]:
    return [l for l in b.lines() if l.startswith('kvmrun-init: ')]


def check_init(c: Checker, what: str, b: Boot, cpus: int, version: str) -> bool:
    """init ran and saw the kernel, the vCPUs and the RAM it was given."""
    lines = b.lines()
    mt = [int(m.group(1)) for m in
          (re.match(r'^kvmrun-init: MemTotal: +(\d+) kB$', l) for l in lines) if m]
    ok = ('kvmrun-init: start' in lines and f'kvmrun-init: kernel {version}' in lines
          and f'kvmrun-init: nproc {cpus}' in lines
          and len(mt) == 1 and MEM_MIB * 1024 * 0.8 < mt[0] <= MEM_MIB * 1024)
    c.check(f'{what}: init', ok, f'init runs on {version} and sees {cpus} vCPU(s) and most of '
            f'{MEM_MIB} MiB (got: {"; ".join(init_lines(b)[:5])})')
    if not ok:
        print(b.describe(), flush=True)
    return ok


def check_end(c: Checker, what: str, b: Boot, ok: bool, detail: str) -> None:
    c.check(what, ok, f'{detail} (exit {b.rc} after {b.elapsed():.0f}s)')
    if not ok:
        print(b.describe(), flush=True)


def test_format(c: Checker, fmt: str, kernel: str, initrd: str, version: str) -> dict:
    """Every ending and vCPU count for one kernel format; returns timings."""
    times = {}

    # 1 vCPU, the full console: the machine in early boot, the clock, poweroff
    b = Boot(kernel, initrd, 1, cmdline('poweroff', 'clock', quiet=False), tag=f'{fmt}-1')
    t_init = b.wait_for(r'^kvmrun-init: start$')
    b.finish()
    times['init'], times['poweroff'] = t_init, b.elapsed()
    check_early(c, b, fmt, cmdline('poweroff', 'clock', quiet=False), 1, os.path.getsize(initrd))
    check_init(c, f'{fmt} 1 vCPU', b, 1, version)
    check_end(c, f'{fmt}: poweroff', b, b.rc == 0 and 'reboot: Power down' in b.lines(),
              'poweroff -f (ACPI S5) ends kvmrun with 0 after the kernel\'s "reboot: Power down"')
    clock = [re.match(r'^kvmrun-init: clock rtc=(\d+)s uptime=([\d.]+)\.\.([\d.]+)$', l)
             for l in b.lines()]
    clock = [m for m in clock if m]
    if clock:
        rtc = int(clock[0].group(1))
        up = float(clock[0].group(3)) - float(clock[0].group(2))
        ratio = up / rtc if rtc else 0.0
        c.check(f'{fmt}: clock rate', rtc >= 10 and abs(ratio - 1) <= CLOCK_TOLERANCE,
                f'guest uptime advanced {up:.2f}s while the host\'s RTC advanced {rtc}s: '
                f'{ratio:.4f}x, within {CLOCK_TOLERANCE:.0%}')
    else:
        c.check(f'{fmt}: clock rate', False, 'init printed no "kvmrun-init: clock" line')

    # 2 vCPUs: reboot with on_reboot=exit
    b = Boot(kernel, initrd, 2, cmdline('reboot'), ['on_reboot=exit'], tag=f'{fmt}-2')
    b.finish()
    check_init(c, f'{fmt} 2 vCPUs', b, 2, version)
    check_end(c, f'{fmt}: reboot, on_reboot=exit', b,
              b.rc == 0 and 'kvmrun-init: test=reboot' in b.lines(),
              'reboot -f (the ACPI reset register) ends kvmrun with 0')

    # 4 vCPUs as 2 sockets of 2 cores: the topology, then a panic
    b = Boot(kernel, initrd, 4, cmdline('panic', 'topology'), ['cpu_topology=2:2:1'],
             tag=f'{fmt}-4')
    b.finish()
    check_init(c, f'{fmt} 4 vCPUs', b, 4, version)
    topo = {}
    for l in b.lines():
        m = re.match(r'^kvmrun-init: topology (cpu\d+) package=(\d+) core=(\d+) '
                     r'threads=(\S+) cores=(\S+)$', l)
        if m:
            topo[m.group(1)] = m.groups()[1:]
    packages = {p for p, _, _, _ in topo.values()}
    cores = {(p, core) for p, core, _, _ in topo.values()}
    single = all(t == cpu.removeprefix('cpu') for cpu, (_, _, t, _) in topo.items())
    c.check(f'{fmt}: cpu_topology=2:2:1', len(topo) == 4 and len(packages) == 2 and
            len(cores) == 4 and single,
            f'sysfs shows 4 CPUs in 2 packages of 2 cores, one thread each (got {topo})')
    panicked = any(l.startswith('Kernel panic - not syncing') for l in b.lines())
    check_end(c, f'{fmt}: panic', b, b.rc == 3 and panicked and 'kvmrun-init: loaded pvpanic'
              in b.lines(), 'a kernel panic reaches kvmrun through pvpanic (exit code 3)')

    # on_reboot=restart: the guest boots a second time in the same process
    b = Boot(kernel, initrd, 1, cmdline('reboot'), ['on_reboot=restart'], tag=f'{fmt}-restart')
    second = b.wait_for(r'^kvmrun-init: start$', count=2)
    b.finish(stop=True)
    check_end(c, f'{fmt}: reboot, on_reboot=restart', b, second is not None and b.rc == 143,
              'init starts a second time after reboot -f, then SIGTERM ends kvmrun with 143')
    return times


def main() -> int:
    kvmtest.require_kvm()
    kind, why = kvmtest.host_kvm()
    if kind != 'native':
        kvmtest.skip(f'{why}; Linux needs hardware virtualisation: tests/run runs this in the '
                     'nested lane')
    t0 = time.monotonic()
    kernel, initrd, cache = fetch()
    if not initrd:
        kvmtest.skip('no initramfs (scripts/fetch-linux-kernel must run as root to build it)')
    c = Checker()
    print(f'info: kernel {kernel}, initramfs {initrd}', flush=True)
    version = os.path.basename(kernel).removeprefix('vmlinuz-')
    timings = {'bzImage': test_format(c, 'bzImage', kernel, initrd, version)}
    vmlinux = vmlinux_for(kernel, cache, c)
    if vmlinux:
        timings['vmlinux'] = test_format(c, 'vmlinux', vmlinux, initrd, version)
    for fmt, t in timings.items():
        print(f'info: {fmt}, 1 vCPU: /init after {t["init"] or -1:.1f}s, powered off after '
              f'{t["poweroff"]:.1f}s', flush=True)
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
