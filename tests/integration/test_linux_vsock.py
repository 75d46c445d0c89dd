"""virtio-vsock under Linux's own driver (vmw_vsock_virtio_transport in
Debian's cloud kernel), with socat at both ends, one boot per backend:

- vsock.backend=vhost (the host kernel's vhost-vsock moves the packets;
  the host's socat uses AF_VSOCK: VSOCK-CONNECT to the guest's CID,
  VSOCK-LISTEN for the guest's connections to CID 2);
- vsock.backend=userspace (kvmrun's own backend; the host's socat talks to
  the Unix socket vsock.uds=PATH with the "CONNECT <port>" handshake, and
  listens on PATH_<port> for the guest's connections).

In each: the guest sees the device and its CID; 64 MiB of random bytes
go from a host program to a guest listener, then the guest sends what it
received back to a host listener, with the same sha256 at all three
points; the throughput of each transfer is printed, and the ratio of the
userspace backend's to vhost's when both ran. The metrics command then
shows the backend's vsock counters (the userspace backend's bytes cover
both transfers). A third boot does the same
with 4 MiB on transport=mmio (vhost when there is vhost-vsock: its
interrupts are then relayed by the event thread, there being no irqfd per
queue).

Needs hardware virtualisation (tests/run runs it in the nested lane, whose
L1 has the vhost_vsock module: loaded here when /dev/vhost-vsock is
missing) and socat on the host.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time

import kvmtest
import linuxguest
from kvmtest import Checker
from linuxguest import VM

CID = 42
SIZE = 64 << 20
TO_GUEST_PORT, TO_HOST_PORT = 5001, 5000


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def ensure_vhost_vsock() -> str | None:
    """None when /dev/vhost-vsock is there (loading vhost_vsock if need
    be), else why not."""
    if not os.path.exists('/dev/vhost-vsock'):
        subprocess.run(['modprobe', 'vhost_vsock'], capture_output=True, timeout=60)
    return None if os.path.exists('/dev/vhost-vsock') else \
        '/dev/vhost-vsock is missing and modprobe vhost_vsock did not make it'


def run_proc(cmd: list[str], timeout: float) -> tuple[int | None, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        return None, 'timed out'


def send_to_guest(backend: str, blob: str, uds: str, work: str) -> tuple[bool, float, str]:
    """A host program sends @blob to the guest's listener (retried while
    the listener is not up yet). (sent, seconds of the transfer, detail)."""
    detail = ''
    for _ in range(60):
        t = time.monotonic()
        if backend == 'vhost':
            rc, out = run_proc(['socat', '-u', f'FILE:{blob}',
                                f'VSOCK-CONNECT:{CID}:{TO_GUEST_PORT}'], 600)
            ok = rc == 0
            detail = f'socat exit {rc} {out.strip()[-200:]}'
        else:
            reply = os.path.join(work, 'reply')
            rc, out = run_proc(['sh', '-c', f"(printf 'CONNECT {TO_GUEST_PORT}\\n'; cat {blob}) | "
                                f'socat -t 5 - UNIX-CONNECT:{uds} > {reply}'], 600)
            with open(reply, 'rb') as f:
                answer = f.read().decode('utf-8', 'replace')
            ok = rc == 0 and answer.startswith('OK ')
            if ok:
                print(f'info: the handshake: sent "CONNECT {TO_GUEST_PORT}", kvmrun answered '
                      f'{answer.splitlines()[0]!r}', flush=True)
            detail = f'socat exit {rc}, kvmrun answered {answer.strip()!r} {out.strip()[-200:]}'
        if ok:
            return True, time.monotonic() - t, detail
        time.sleep(1)
    return False, 0.0, detail


def run_one(c: Checker, f: linuxguest.Files, backend: str, blob: str, want: str,
            rates: dict[str, tuple[float, float]], transport: str = 'pci') -> None:
    w = f'backend={backend}' + (f' transport={transport}' if transport != 'pci' else '')
    size = os.path.getsize(blob)
    work = linuxguest.scratch_dir(f'vsock-{backend}')
    uds = os.path.join(work, 'v.sock')
    ctl = os.path.join(work, 'ctl.sock')
    keys = ['mem=512M', 'log_level=info', f'vsock.cid={CID}', f'vsock.backend={backend}',
            f'transport={transport}', f'control={ctl}']
    if backend == 'userspace':
        keys.append(f'vsock.uds={uds}')
    vm = VM(linuxguest.kvmrun_cmd(f, keys), f'vsock-{backend}-{transport}')
    recv = None
    try:
        if not c.check(f'{w}: boot', vm.ready(), f'the agent runs after {vm.t_ready or 0:.1f}s'):
            print(vm.describe())
            return
        log = 'vhost-vsock backend' if backend == 'vhost' else f'userspace backend on {uds}'
        c.check(f'{w}: backend', f'guest CID {CID}, {log}' in vm.errors(),
                f'kvmrun logs "{log}"')
        for l in vm.errors().splitlines():
            if 'vsock' in l:
                print(f'info: kvmrun: {l}', flush=True)
        rc, out = vm.sh('ls /dev/vsock && cat /sys/bus/virtio/devices/*/device && '
                        '{ ls -l /sys/bus/virtio/devices/ | grep -c pci; true; }')
        on_pci = out[-1].strip() if out else ''
        c.check(f'{w}: device', rc == 0 and '0x0013' in out and
                (on_pci != '0') == (transport == 'pci'),
                f'the guest has /dev/vsock and a virtio device 0x0013 on {transport} ({out})')

        # host -> guest
        rc, _ = vm.sh(f'rm -f /tmp/in /tmp/in.rc; (socat -u VSOCK-LISTEN:{TO_GUEST_PORT} '
                      'CREATE:/tmp/in; echo $? > /tmp/in.rc) </dev/null >/dev/null 2>&1 &')
        ok, secs, detail = send_to_guest(backend, blob, uds, work)
        rc, out = vm.sh('i=0; while [ ! -f /tmp/in.rc ] && [ $i -lt 1200 ]; do sleep 0.1; '
                        'i=$((i+1)); done; cat /tmp/in.rc && sha256sum /tmp/in', timeout=300)
        got = out[-1].split()[0] if rc == 0 and out else None
        to_guest = size / secs / (1 << 20) if ok and secs > 0 else 0.0
        c.check(f'{w}: {size >> 20} MiB host to guest', ok and got == want and out[0].strip() == '0',
                f'the guest\'s sha256 is the host\'s ({got} vs {want}); '
                f'{to_guest:.1f} MiB/s; {detail}')

        # guest -> host: the bytes the guest received, back
        out_path = os.path.join(work, 'back')
        if backend == 'vhost':
            recv = subprocess.Popen(['socat', '-u', f'VSOCK-LISTEN:{TO_HOST_PORT}',
                                     f'CREATE:{out_path}'], stderr=subprocess.PIPE)
            time.sleep(1)
        else:
            lst = f'{uds}_{TO_HOST_PORT}'
            recv = subprocess.Popen(['socat', '-u', f'UNIX-LISTEN:{lst}', f'CREATE:{out_path}'],
                                    stderr=subprocess.PIPE)
            for _ in range(100):
                if os.path.exists(lst):
                    break
                time.sleep(0.1)
        t = time.monotonic()
        # retried while the host's listener is not up yet: socat's bind can
        # lag the second above on a loaded L1 (a CI run's flake)
        rc, out = vm.sh(f'i=0; until socat -u FILE:/tmp/in VSOCK-CONNECT:2:{TO_HOST_PORT}; do '
                        'i=$((i+1)); [ $i -lt 60 ] || exit 1; sleep 0.5; done', timeout=600)
        try:
            rrc = recv.wait(120)
        except subprocess.TimeoutExpired:
            rrc = None
        secs = time.monotonic() - t
        back = sha256(out_path) if os.path.exists(out_path) else None
        to_host = size / secs / (1 << 20) if rc == 0 and secs > 0 else 0.0
        c.check(f'{w}: {size >> 20} MiB guest to host', rc == 0 and rrc == 0 and back == want,
                f'the host\'s listener got the sha256 the host sent ({back}); guest socat '
                f'exit {rc}, host socat exit {rrc}; {to_host:.1f} MiB/s')
        m = kvmtest.fields(kvmtest.ctl(ctl, 'metrics'))
        vs = {k[6:]: v for k, v in m.items() if k.startswith('vsock.')}
        if backend == 'vhost':
            ok = vs.get('source') == 'vhost' and vs.get('needs_reset') == '0'
        else:
            ok = (vs.get('source') == 'device' and int(vs.get('rx_bytes', 0)) >= size and
                  int(vs.get('tx_bytes', 0)) >= size and int(vs.get('conns_opened', 0)) >= 2 and
                  vs.get('bad_packets') == '0')
        c.check(f'{w}: metrics', ok, f'ctl metrics: {vs}')
        if transport == 'pci':
            rates[backend] = (to_guest, to_host)
        rc = vm.finish()
        linuxguest.guest_ok(c, f'{w}: power-off', vm, rc, 'the guest powered off')
    finally:
        if recv is not None and recv.poll() is None:
            recv.kill()
            recv.wait()
        vm.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    linuxguest.require_linux()
    if not shutil.which('socat'):
        kvmtest.skip('socat is not installed on the host (scripts/install-deps)')
    f = linuxguest.files()
    c = Checker()
    t0 = time.monotonic()
    work = linuxguest.scratch_dir('vsock-blob')
    blob = os.path.join(work, 'blob')
    linuxguest.image(blob, SIZE, fill=True)
    want = sha256(blob)
    rates: dict[str, tuple[float, float]] = {}
    try:
        why = ensure_vhost_vsock()
        if why:
            c.skip('backend=vhost', why)
        else:
            run_one(c, f, 'vhost', blob, want, rates)
        run_one(c, f, 'userspace', blob, want, rates)
        # virtio-mmio: the interrupts are relayed, not irqfds; a shorter run
        small = os.path.join(work, 'small')
        linuxguest.image(small, 4 << 20, fill=True)
        run_one(c, f, 'vhost' if not why else 'userspace', small, sha256(small), rates, 'mmio')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if 'vhost' in rates and 'userspace' in rates:
        v, u = rates['vhost'], rates['userspace']
        print('info: userspace/vhost throughput ratio (same L1, same run): host to guest '
              f'{u[0] / v[0] if v[0] else 0:.2f}, guest to host {u[1] / v[1] if v[1] else 0:.2f}',
              flush=True)
    print(f'info: {time.monotonic() - t0:.0f}s in all', flush=True)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
