"""Throwaway disks under Linux's own virtio_blk driver (Debian's cloud
kernel), in the nested lane where there is no hardware virtualisation:

1. Four VMs boot at once from one base image (ext4 made on the host with
   `mkfs.ext4 -d`), each with disk1.overlay=memory. Each mounts it, reads
   the base's file, writes a file of its own and syncs. Once all four have
   written, each drops its caches and lists the file system again: it sees
   the base's file and its own, nobody else's. The base image's checksum is
   unchanged.
2. A fifth VM boots with a kept file overlay (disk1.overlay=PATH,
   overlay_keep=on), writes files, removes the base's file, unmounts and
   powers off. `kvmrun overlay-merge` writes the overlay onto a copy of the
   base: `e2fsck -fn` finds it clean and `debugfs` reads the files back with
   the guest's checksums. The base is still unchanged.

Images live in $TMPDIR (the lane's ext4 scratch disk, which takes
O_DIRECT). The kernel, initramfs and tools disk come from
scripts/fetch-linux-kernel.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import kvmtest
import linuxguest
from kvmtest import Checker, MiB
from linuxguest import VM

BASE_SIZE = 128 * MiB
BASE_TEXT = b'the shared base image\n' * 64
NVMS = 4
HELPERS = ('dev() { for s in /sys/block/vd*/serial; do [ "$(cat $s)" = "$1" ] && '
           '{ d=${s%/serial}; echo /dev/${d##*/}; }; done; }')


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def make_base(d: str) -> str:
    root = os.path.join(d, 'base-root')
    os.makedirs(root)
    with open(os.path.join(root, 'base.txt'), 'wb') as f:
        f.write(BASE_TEXT)
    img = os.path.join(d, 'base.img')
    subprocess.run(['mkfs.ext4', '-q', '-F', '-d', root, img, f'{BASE_SIZE >> 20}M'],
                   check=True, capture_output=True)
    os.chmod(img, 0o444)
    return img


def listing(vm: VM) -> list[str] | None:
    rc, out = vm.sh('sync; echo 3 > /proc/sys/vm/drop_caches; ls /mnt/base')
    return sorted(' '.join(out).split()) if rc == 0 else None


def test_memory_overlays(c: Checker, f: linuxguest.Files, base: str) -> None:
    before = digest(base)
    vms = [VM(linuxguest.kvmrun_cmd(f, ['mem=256M', f'disk1.path={base}',
                                        'disk1.overlay=memory', 'disk1.serial=base']),
              f'overlay{i}') for i in range(NVMS)]
    base_sha = hashlib.sha256(BASE_TEXT).hexdigest()
    try:
        for i, vm in enumerate(vms):
            if not c.check(f'vm{i}: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
                print(vm.describe())
                return
        for i, vm in enumerate(vms):
            vm.sh(HELPERS)
            rc, out = vm.sh(f'mkdir -p /mnt/base && mount $(dev base) /mnt/base && '
                            f'sha256sum /mnt/base/base.txt && '
                            f'echo "written by vm{i}" > /mnt/base/vm{i}.txt && sync', timeout=300)
            c.check(f'vm{i}: base file and own write', rc == 0 and any(l.startswith(base_sha) for l in out),
                    f'mounts the base read-write through its overlay, reads base.txt with its '
                    f'checksum, writes vm{i}.txt and syncs ({out[-2:]})')
        for i, vm in enumerate(vms):
            got = listing(vm)
            want = sorted(['base.txt', 'lost+found', f'vm{i}.txt'])
            c.check(f'vm{i}: sees only its own writes', got == want,
                    f'after all {NVMS} wrote, with caches dropped: {got} (want {want})')
            rc, out = vm.sh(f'cat /mnt/base/vm{i}.txt && umount /mnt/base')
            c.check(f'vm{i}: reads its file back', rc == 0 and f'written by vm{i}' in out,
                    f'{out[-1:]}')
        for i, vm in enumerate(vms):
            linuxguest.guest_ok(c, f'vm{i}: power-off', vm, vm.finish(), 'clean power-off')
            linuxguest.check_io_errors(c, f'vm{i}', vm)
    finally:
        for vm in vms:
            vm.cleanup()
    c.check('base unchanged after 4 VMs', digest(base) == before,
            f'the base image\'s sha256 is what it was ({before[:16]}...)')


def test_kept_merge(c: Checker, f: linuxguest.Files, d: str, base: str) -> None:
    before = digest(base)
    ov = os.path.join(d, 'kept.ovl')
    vm = VM(linuxguest.kvmrun_cmd(f, ['mem=256M', f'disk1.path={base}', f'disk1.overlay={ov}',
                                      'disk1.overlay_keep=on', 'disk1.serial=base']), 'kept')
    sums: dict[str, str] = {}
    try:
        if not c.check('kept: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return
        vm.sh(HELPERS)
        rc, out = vm.sh('mkdir -p /mnt/base && mount $(dev base) /mnt/base && cd /mnt/base && '
                        'head -c 3000000 /dev/urandom > k1 && mkdir dir && '
                        'head -c 12345 /dev/urandom > dir/k2 && rm base.txt && '
                        'sha256sum k1 dir/k2 && cd / && sync && fstrim /mnt/base; '
                        'umount /mnt/base', timeout=300)
        for l in out:
            m = re.match(r'^([0-9a-f]{64})  (\S+)$', l)
            if m:
                sums[m.group(2)] = m.group(1)
        c.check('kept: writes', rc == 0 and len(sums) == 2,
                f'two files written, the base\'s removed, fstrim, unmount ({out[-2:]})')
        linuxguest.guest_ok(c, 'kept: power-off', vm, vm.finish(), 'clean power-off')
        linuxguest.check_io_errors(c, 'kept', vm)
    finally:
        vm.cleanup()
    target = os.path.join(d, 'merged.img')
    shutil.copyfile(base, target)
    os.chmod(target, 0o644)
    m = subprocess.run([kvmtest.kvmrun_binary(), 'overlay-merge', ov, target],
                       capture_output=True, text=True)
    c.check('kept: overlay-merge', m.returncode == 0,
            f'kvmrun overlay-merge: {m.stdout.strip()} {m.stderr.strip()}')
    p = subprocess.run(['e2fsck', '-fn', target], capture_output=True, text=True)
    c.check('kept: merged e2fsck -fn', p.returncode == 0,
            f'the merged image is clean (exit {p.returncode})'
            + ('' if p.returncode == 0 else f'\n{p.stdout}{p.stderr}'))
    bad = [n for n, sha in sums.items()
           if hashlib.sha256(subprocess.run(['debugfs', '-R', f'cat /{n}', target],
                                            capture_output=True).stdout).hexdigest() != sha]
    gone = subprocess.run(['debugfs', '-R', 'stat /base.txt', target], capture_output=True,
                          text=True)
    c.check('kept: merged files', sums and not bad and 'not found' in gone.stderr + gone.stdout,
            f'debugfs reads {len(sums)} files back with the guest\'s checksums'
            f'{" (wrong: " + str(bad) + ")" if bad else ""}; base.txt is gone as the guest removed it')
    c.check('kept: base unchanged', digest(base) == before, 'the base image is unchanged')


def main() -> int:
    linuxguest.require_linux()
    f = linuxguest.files()
    c = Checker()
    d = linuxguest.scratch_dir('overlay')
    try:
        base = make_base(d)
        test_memory_overlays(c, f, base)
        test_kept_merge(c, f, d, base)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
