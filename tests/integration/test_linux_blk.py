"""virtio-blk under Linux's own virtio_blk driver (Debian's cloud kernel),
through both transports (pci, mmio) and both engines (io_uring, sync),
in three boots that each do many things:

1. transport=pci, 2 vCPUs. Two file-system disks, fs-uring (io=io_uring)
   and fs-sync (io=sync), each with queues=2:
   - the guest makes ext4 on each, writes files of known checksums, syncs;
   - it fills 64 MiB, syncs (the host reads the image's `du`), deletes it
     and runs fstrim: the image's allocated blocks shrink by most of it;
   - /sys/block/vdX/mq has two entries;
   - a readonly=on disk (ext4 made on the host): /sys/block/vdX/ro is 1, it
     mounts read-only and its file reads back; a write to the device fails
     in the guest, and a write forced past the guest's read-only flag
     (blockdev --setrw) is refused by kvmrun with an I/O error; kvmrun goes
     on and the image is unchanged;
   - fio 4k random reads at QD1 and QD32 on a raw disk, IOPS reported;
   - clean unmount and power-off; then on the host `e2fsck -fn` finds both
     file systems clean and `debugfs` reads every file back with its
     checksum.
2. transport=mmio: the guest reads every file of boot 1 back and checks it,
   writes more files, runs `sync`; the host SIGKILLs kvmrun the moment the
   guest reports that sync returned.
3. transport=pci: the guest mounts (replaying the journal) and reads back
   every file, those synced before the SIGKILL included; on the host,
   e2fsck -fn and debugfs again.

In every boot the guest kernel logs no I/O or file-system error (but for
the forced write to the read-only disk, which must fail).

Needs hardware virtualisation: tests/run runs this in the nested lane on a
host without it; images live in $TMPDIR (the lane's ext4 scratch disk,
which takes O_DIRECT). The kernel, initramfs and tools disk come from
scripts/fetch-linux-kernel.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

import kvmtest
import linuxguest
from kvmtest import Checker, MiB
from linuxguest import VM

FS_SIZE = 256 * MiB
RAW_SIZE = 64 * MiB
FILL_MIB = 64
# (name, bytes) written in boot 1 and boot 2; odd sizes on purpose
FILES_A = [('a1', 1024), ('a2', 4096), ('a3', 100 * 1024 + 7), ('a4', MiB),
           ('a5', 8 * MiB), ('a6', 20 * MiB + 12345), ('dir/a7', 333)]
FILES_B = [('b1', 512), ('b2', 65536), ('b3', 5 * MiB + 1), ('dir/b4', 4095)]
DISKS = (('fs-uring', 'io_uring'), ('fs-sync', 'sync'))

# Shell helpers defined once per boot in the agent's shell: dev SERIAL
# prints /dev/vdX of the disk with that serial.
HELPERS = ('dev() { for s in /sys/block/vd*/serial; do [ "$(cat $s)" = "$1" ] && '
           '{ d=${s%/serial}; echo /dev/${d##*/}; }; done; }')


def sha_lines(out: list[str]) -> dict[str, str]:
    got = {}
    for l in out:
        m = re.match(r'^([0-9a-f]{64})  (?:\./)?(\S+)$', l)
        if m:
            got[m.group(2)] = m.group(1)
    return got


def write_files(vm: VM, mnt: str, files: list[tuple[str, int]]) -> dict[str, str] | None:
    """Writes @files of random bytes under @mnt; returns their checksums as
    the guest computed them, or None."""
    cmds = [f'mkdir -p {mnt}/dir']
    for name, size in files:
        cmds.append(f'head -c {size} /dev/urandom > {mnt}/{name}')
    rc, out = vm.sh(' && '.join(cmds) + f' && cd {mnt} && sha256sum '
                    + ' '.join(n for n, _ in files) + ' && cd /tmp', timeout=300)
    got = sha_lines(out)
    return got if rc == 0 and len(got) == len(files) else None


def read_files(vm: VM, mnt: str, names: list[str]) -> dict[str, str]:
    rc, out = vm.sh(f'cd {mnt} && sha256sum ' + ' '.join(names) + '; cd /tmp', timeout=300)
    return sha_lines(out)


def host_check(c: Checker, what: str, img: str, want: dict[str, str]) -> None:
    """e2fsck -fn finds the file system clean; debugfs reads every file
    back with its checksum."""
    p = subprocess.run(['e2fsck', '-fn', img], capture_output=True, text=True)
    c.check(f'{what}: e2fsck -fn', p.returncode == 0,
            f'the host finds the file system clean (exit {p.returncode})'
            + ('' if p.returncode == 0 else f'\n{p.stdout}{p.stderr}'))
    bad = []
    for name, sha in want.items():
        q = subprocess.run(['debugfs', '-R', f'cat /{name}', img], capture_output=True)
        if hashlib.sha256(q.stdout).hexdigest() != sha:
            bad.append(name)
    c.check(f'{what}: debugfs checksums', not bad,
            f'the host reads all {len(want)} files back with the guest\'s checksums'
            + (f' (wrong: {bad})' if bad else ''))


def disk_args(imgs: dict[str, str], first: int, queues: int = 2) -> list[str]:
    args = []
    for i, (serial, io) in enumerate(DISKS):
        n = first + i
        args += [f'disk{n}.path={imgs[serial]}', f'disk{n}.io={io}', f'disk{n}.serial={serial}',
                 f'disk{n}.queues={queues}']
    return args


def boot1(c: Checker, f: linuxguest.Files, d: str, imgs: dict[str, str]) -> dict | None:
    ro_dir = os.path.join(d, 'ro-root')
    os.makedirs(ro_dir)
    ro_text = b'kvmrun read-only disk\n' * 100
    with open(os.path.join(ro_dir, 'hello.txt'), 'wb') as fh:
        fh.write(ro_text)
    ro_img = os.path.join(d, 'ro.img')
    subprocess.run(['mkfs.ext4', '-q', '-F', '-d', ro_dir, ro_img, '16M'], check=True,
                   capture_output=True)
    with open(ro_img, 'rb') as fh:
        ro_sha = hashlib.sha256(fh.read()).hexdigest()
    raw = linuxguest.image(os.path.join(d, 'raw.img'), RAW_SIZE, fill=True)

    vm = VM(linuxguest.kvmrun_cmd(f, ['mem=512M', 'cpus=2', 'transport=pci']
                                  + disk_args(imgs, 1) +
                                  [f'disk3.path={raw}', 'disk3.serial=raw',
                                   f'disk4.path={ro_img}', 'disk4.readonly=on',
                                   'disk4.serial=ro']), 'blk-pci')
    sums: dict[str, dict[str, str]] = {}
    try:
        if not c.check('pci: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return None
        vm.sh(HELPERS)
        for serial, io in DISKS:
            w = f'pci {serial} ({io})'
            rc, out = vm.sh(f'd=$(dev {serial}); mkfs.ext4 -q -F $d && mkdir -p /mnt/{serial} && '
                            f'mount $d /mnt/{serial}', timeout=300)
            if not c.check(f'{w}: mkfs.ext4 and mount', rc == 0, f'exit {rc}: {out[-3:]}'):
                continue
            got = write_files(vm, f'/mnt/{serial}', FILES_A)
            rc, _ = vm.sh('sync', timeout=300)
            c.check(f'{w}: files written and synced', got is not None and rc == 0,
                    f'{len(FILES_A)} files of 333 B to 20 MiB, their checksums printed, sync')
            sums[serial] = got or {}
            # fstrim: fill, measure, delete, trim, measure
            rc, _ = vm.sh(f'dd if=/dev/zero of=/mnt/{serial}/big bs=1M count={FILL_MIB} '
                          f'conv=fsync 2>&1 && sync', timeout=300)
            full = linuxguest.allocated(imgs[serial])
            rc2, out = vm.sh(f'rm /mnt/{serial}/big && sync && fstrim -v /mnt/{serial}',
                             timeout=300)
            trimmed = linuxguest.allocated(imgs[serial])
            c.check(f'{w}: fstrim', rc == 0 and rc2 == 0 and full - trimmed >= FILL_MIB * MiB * 3 // 4,
                    f'the image\'s allocated blocks fell from {full / MiB:.1f} to '
                    f'{trimmed / MiB:.1f} MiB after deleting {FILL_MIB} MiB and fstrim '
                    f'(want at least {FILL_MIB * 3 // 4} MiB less; guest said {out[-1:]})')
            mq = vm.value(f'd=$(dev {serial}); echo $(ls /sys/block/${{d#/dev/}}/mq)')
            c.check(f'{w}: queues=2', mq is not None and mq.split() == ['0', '1'],
                    f'/sys/block/vdX/mq holds two queues (got {mq!r})')
            rc, out = vm.sh(f'umount /mnt/{serial}', timeout=120)
            c.check(f'{w}: unmount', rc == 0, f'exit {rc} {out}')

        # readonly=on
        ro_dev = vm.value('d=$(dev ro); echo ${d#/dev/}')
        ro = vm.value('d=$(dev ro); cat /sys/block/${d#/dev/}/ro')
        c.check('pci readonly=on: seen read-only', ro == '1', f'/sys/block/vdX/ro is 1 (got {ro!r})')
        rc, out = vm.sh('mkdir -p /mnt/ro && mount -o ro $(dev ro) /mnt/ro && '
                        'sha256sum /mnt/ro/hello.txt')
        want = hashlib.sha256(ro_text).hexdigest()
        c.check('pci readonly=on: reads', rc == 0 and any(l.startswith(want) for l in out),
                f'mounts read-only and the file reads back with its checksum ({out[-1:]})')
        rc, out = vm.sh('touch /mnt/ro/new; echo "fs=$?"; umount /mnt/ro; '
                        'dd if=/dev/zero of=$(dev ro) bs=4096 count=1 oflag=direct; echo "dev=$?"')
        fs_rc = next((l for l in out if l.startswith('fs=')), None)
        dev_rc = next((l for l in out if l.startswith('dev=')), None)
        c.check('pci readonly=on: writes fail in the guest',
                rc == 0 and fs_rc not in (None, 'fs=0') and dev_rc not in (None, 'dev=0')
                and vm.proc.poll() is None,
                f'a file write and a device write fail with an error ({fs_rc}, {dev_rc}); '
                f'kvmrun goes on ({" | ".join(out[-3:])})')
        rc, out = vm.sh('blockdev --setrw $(dev ro) && dd if=/dev/zero of=$(dev ro) bs=4096 '
                        'count=1 oflag=direct; echo "forced=$?"')
        forced = next((l for l in out if l.startswith('forced=')), None)
        c.check('pci readonly=on: kvmrun refuses a forced write',
                forced not in (None, 'forced=0') and vm.proc.poll() is None,
                f'with the guest\'s read-only flag cleared, the write still fails ({forced}): '
                f'kvmrun answers VIRTIO_BLK_S_IOERR and goes on')

        # fio on the raw disk
        iops = {}
        for qd in (1, 32):
            rc, out = vm.sh(f'fio --name=qd{qd} --filename=$(dev raw) --direct=1 --rw=randread '
                            f'--bs=4k --iodepth={qd} --ioengine=libaio --runtime=3 --time_based '
                            f'--minimal', timeout=120)
            line = next((l for l in out if l.startswith('3;fio-')), '')
            fields = line.split(';')
            ok = rc == 0 and len(fields) > 40 and fields[4] == '0' and float(fields[7]) > 0
            iops[qd] = float(fields[7]) if ok else None
            c.check(f'pci fio randread 4k QD{qd}', ok,
                    f'{iops[qd] or 0:.0f} IOPS, mean latency {float(fields[39]) if ok else 0:.0f} us'
                    f' over 3 s, no error' + ('' if ok else f' (exit {rc}: {out[-5:]})'))
        rc = vm.finish()
        linuxguest.guest_ok(c, 'pci: power-off', vm, rc, 'the guest unmounted and powered off')
        errs = [l for l in vm.io_errors() if not ro_dev or not re.search(rf'\b{ro_dev}\b', l)]
        c.check('pci: no I/O errors', not errs,
                'the guest kernel logged no I/O or file-system error but for the forced write '
                'to the read-only disk' + (f' (got {errs[:5]})' if errs else ''))
        with open(ro_img, 'rb') as fh:
            c.check('pci readonly=on: image unchanged', hashlib.sha256(fh.read()).hexdigest() == ro_sha,
                    'the read-only image is byte for byte what the host made')
        return sums
    finally:
        vm.cleanup()


def boot2(c: Checker, f: linuxguest.Files, imgs: dict[str, str], sums: dict) -> dict | None:
    vm = VM(linuxguest.kvmrun_cmd(f, ['mem=512M', 'cpus=2', 'transport=mmio']
                                  + disk_args(imgs, 1)), 'blk-mmio')
    new: dict[str, dict[str, str]] = {}
    try:
        if not c.check('mmio: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return None
        vm.sh(HELPERS)
        for serial, io in DISKS:
            w = f'mmio {serial} ({io})'
            rc, _ = vm.sh(f'mkdir -p /mnt/{serial} && mount $(dev {serial}) /mnt/{serial}')
            got = read_files(vm, f'/mnt/{serial}', [n for n, _ in FILES_A])
            c.check(f'{w}: second boot reads the files', rc == 0 and got == sums.get(serial),
                    f'all {len(FILES_A)} files of the first boot read back with their checksums'
                    + ('' if got == sums.get(serial) else f' (got {got})'))
            mq = vm.value(f'd=$(dev {serial}); ls /sys/block/${{d#/dev/}}/mq | wc -l')
            c.check(f'{w}: queues=2', mq == '2', f'two queues on virtio-mmio too (got {mq!r})')
            new[serial] = write_files(vm, f'/mnt/{serial}', FILES_B) or {}
        rc, _ = vm.sh('sync', timeout=300)
        t = time.monotonic()
        vm.kill()  # SIGKILL, the moment the guest says sync returned
        c.check('mmio: SIGKILL after sync', rc == 0 and all(len(v) == len(FILES_B) for v in new.values()),
                f'{len(FILES_B)} more files on each disk, sync returned; kvmrun killed '
                f'{(time.monotonic() - t) * 1000:.0f} ms after the host saw it')
        linuxguest.check_io_errors(c, 'mmio', vm)
        return new
    finally:
        vm.cleanup()


def boot3(c: Checker, f: linuxguest.Files, imgs: dict[str, str], want: dict) -> None:
    vm = VM(linuxguest.kvmrun_cmd(f, ['mem=512M', 'cpus=1', 'transport=pci']
                                  + disk_args(imgs, 1, queues=1)), 'blk-verify')
    try:
        if not c.check('after SIGKILL: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return
        vm.sh(HELPERS)
        for serial, io in DISKS:
            rc, _ = vm.sh(f'mkdir -p /mnt/{serial} && mount $(dev {serial}) /mnt/{serial}')
            got = read_files(vm, f'/mnt/{serial}', list(want[serial]))
            c.check(f'after SIGKILL {serial} ({io}): nothing lost', rc == 0 and got == want[serial],
                    f'all {len(want[serial])} files, those synced right before the SIGKILL '
                    f'included, read back with their checksums'
                    + ('' if got == want[serial] else f' (got {got})'))
            vm.sh(f'umount /mnt/{serial}')
        rc = vm.finish()
        linuxguest.guest_ok(c, 'after SIGKILL: power-off', vm, rc, 'clean unmount and power-off')
        linuxguest.check_io_errors(c, 'after SIGKILL', vm)
    finally:
        vm.cleanup()
    for serial, io in DISKS:
        host_check(c, f'after SIGKILL {serial} ({io})', imgs[serial], want[serial])


def main() -> int:
    linuxguest.require_linux()
    f = linuxguest.files()
    for tool in ('e2fsck', 'debugfs', 'mkfs.ext4'):
        if not shutil.which(tool):
            kvmtest.skip(f'{tool} is not installed (scripts/install-deps: e2fsprogs)')
    t0 = time.monotonic()
    c = Checker()
    d = linuxguest.scratch_dir('linux-blk')
    try:
        imgs = {s: linuxguest.image(os.path.join(d, f'{s}.img'), FS_SIZE) for s, _ in DISKS}
        sums = boot1(c, f, d, imgs)
        if sums is None:
            return c.done()
        for serial, io in DISKS:
            host_check(c, f'pci {serial} ({io})', imgs[serial], sums.get(serial, {}))
        new = boot2(c, f, imgs, sums)
        if new is not None:
            want = {s: {**sums.get(s, {}), **new.get(s, {})} for s, _ in DISKS}
            boot3(c, f, imgs, want)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
