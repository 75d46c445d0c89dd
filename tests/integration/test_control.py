"""The control socket (control=PATH) and `kvmrun ctl`: status and memory
reports of a running VM, malformed requests answered with `error` and
changing nothing, clients that misbehave, socket path handling (stale
socket replaced, live one refused, removed at teardown) and `stop`."""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import time

import guestrun
import kvmtest
from kvmtest import Checker, run_kvmrun

from kvmtest import ctl, fields, size
from test_balloon import BALLOON, VM


def kvmrun_ctl(args: list[str]) -> guestrun.Result:
    return run_kvmrun(['ctl'] + args, timeout=30)


def raw_session(path: str, data: bytes, timeout: float = 5) -> bytes:
    """Sends @data, then reads until the server closes or goes quiet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b''
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    return out


def test_client_errors(c: Checker) -> None:
    r = kvmrun_ctl([])
    c.check('ctl usage', r.rc == 2 and 'usage: kvmrun ctl' in r.err, 'no socket: usage, exit 2', r)
    r = kvmrun_ctl(['/nonexistent/kvmrun.sock', 'status'])
    c.check('ctl no socket', r.rc == 2 and '/nonexistent/kvmrun.sock' in r.err
            and 'No such file or directory' in r.err,
            'a missing socket: exit 2, the message names the path and the error', r)


def test_running_vm(c: Checker) -> None:
    vm = VM('ctl', '128M', ['name=ci-runner-7', 'cpus=1', 'mem_prefault=on'])
    try:
        if not vm.ready():
            c.check('control guest', False, 'guest did not start: ' + vm.bg.errors())
            return
        r = kvmrun_ctl([vm.sock, 'status'])
        st = fields(r.out.strip())
        c.check('ctl status', r.rc == 0 and r.out.startswith('ok state=running name=ci-runner-7 cpus=1 mem=128M')
                and st.get('balloon') == 'on' and st.get('transport') == 'pci'
                and int(st.get('uptime_ms', '0')) > 0,
                f'kvmrun ctl status describes the VM, exit 0 ({r.out.strip()})', r)
        rss = size(st.get('ram_rss', '0'))
        c.check('status memory', 120 << 20 <= rss <= 128 << 20 and st.get('page_size') == '4K'
                and st.get('numa_nodes') not in (None, 'none') and 'ksm_merged_pages' in st,
                f'status reports the RAM RSS (prefaulted: ~128M), page size, NUMA nodes, KSM ({rss >> 20} MiB)')
        r = kvmrun_ctl([vm.sock, 'help'])
        c.check('ctl help', r.rc == 0 and r.out.strip() ==
                'ok commands=status,memory,balloon,balloon-stats,metrics,stop,pause,resume,snapshot,help', r.out.strip(), r)
        r = kvmrun_ctl([vm.sock, 'balloon', 'target=zzz'])
        c.check('ctl error', r.rc == 1 and r.out.startswith('error '),
                f'an error response: exit 1 ({r.out.strip()})', r)

        # malformed requests: one error line each, nothing changes
        bad = [b'', b'bogus', b'balloon target=', b'balloon target=1X', b'balloon target=-5M',
               b'balloon target=1G', b'balloon foo=1', b'balloon target=1M target=2M',
               b'status extra', b'stop now=1', b'balloon target=1M\x00', b'\x1b[A',
               b'balloon target=99999999999999999999999999', 'balloon target=\u00e9'.encode(),
               b'=', b'balloon =5']
        out = raw_session(vm.sock, b''.join(l + b'\n' for l in bad)).decode('utf-8', 'replace')
        lines = out.splitlines()
        c.check('malformed answered', len(lines) == len(bad) and all(l.startswith('error ') for l in lines),
                f'{len(bad)} malformed requests get {len(bad)} error lines ({lines})')
        b = fields(vm.ctl('balloon'))
        c.check('malformed changes nothing', b.get('target') == '0' and vm.bg.proc.poll() is None,
                f'the balloon target is still 0 and the VM runs ({b})')

        # a line longer than 4 KiB: error, then the server hangs up
        out = raw_session(vm.sock, b'status ' + b'x' * 5000 + b'\nstatus\n')
        c.check('long line', out == b'error line too long (at most 4096 bytes)\n',
                f'a 5 KiB line: "error line too long" and the connection is closed ({out[:80]!r})')

        # several clients at once, requests split across writes
        socks = []
        for _ in range(6):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(vm.sock)
            socks.append(s)
        for s in socks:
            s.sendall(b'bal')
        for s in socks:
            s.sendall(b'loon\n')
        answers = []
        for s in socks:
            buf = b''
            while not buf.endswith(b'\n'):
                buf += s.recv(4096)
            answers.append(buf.decode().strip())
            s.close()
        c.check('many clients', all(a == 'ok target=0 actual=0' for a in answers),
                f'6 clients with split requests are each answered ({answers[0]})')

        # a client that never reads its responses is dropped; the VM goes on
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.connect(vm.sock)
        hog.setblocking(False)
        dropped = False
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            try:
                hog.send(b'status\n' * 1000)
            except BlockingIOError:
                time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
        hog.close()
        r = vm.ctl('balloon')
        c.check('slow reader', dropped and r == 'ok target=0 actual=0',
                f'a client that does not read is dropped, others are still served ({r})')

        # a second VM on the same socket path is refused
        r = run_kvmrun([f'kernel={BALLOON}', 'mem=64M', f'control={vm.sock}'], timeout=60)
        c.check('socket in use', r.rc == 1 and vm.sock in r.err
                and 'another VM is using it' in r.err and vm.sock + '.lock' in r.err,
                'a socket path another VM holds is an error naming the path and its lock', r)
        c.check('socket kept', os.path.exists(vm.sock) and vm.ctl('balloon').startswith('ok'),
                'the first VM keeps its socket')

        r = kvmrun_ctl([vm.sock, 'stop'])
        c.check('ctl stop', r.rc == 0 and r.out.strip() == 'ok stopping', r.out.strip(), r)
        rc = vm.bg.wait(30)
        c.check('stop exit code', rc == 0, f'the VM ended with exit code 0 (rc {rc})')
        c.check('socket removed', not os.path.exists(vm.sock)
                and not os.path.exists(vm.sock + '.lock'),
                'the socket file and its lock file are removed at teardown')
    finally:
        vm.stop()


def test_socket_paths(c: Checker) -> None:
    with tempfile.TemporaryDirectory(prefix='kvmrun-ctl-') as d:
        path = os.path.join(d, 'vm.sock')
        # a stale socket (its VM is gone) is replaced
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        bg = kvmtest.Background([f'kernel={BALLOON}', 'mem=64M', f'control={path}', 'timeout=120',
                                 'balloon=off'], tag='stale')
        try:
            ok = False
            for _ in range(100):
                try:
                    ok = ctl(path, 'status').startswith('ok state=')
                    break
                except OSError:
                    time.sleep(0.1)
            c.check('stale socket', ok, 'a stale socket file is replaced and the VM answers on it')
            r = ctl(path, 'balloon target=1M')
            c.check('no balloon', r.startswith('error no balloon'), f'balloon=off: {r}')
            ctl(path, 'stop')
            bg.wait(30)
        finally:
            bg.stop()
        # a regular file is never replaced
        with open(path, 'w') as f:
            f.write('data')
        r = run_kvmrun([f'kernel={BALLOON}', 'mem=64M', f'control={path}'], timeout=60)
        c.check('not a socket', r.rc == 1 and path in r.err and 'not a socket' in r.err
                and open(path).read() == 'data',
                'a file at the socket path is an error naming it, and is left alone', r)
        r = run_kvmrun([f'kernel={BALLOON}', 'mem=64M', f'control={d}/missing/vm.sock'], timeout=60)
        c.check('bad directory', r.rc == 1 and f'{d}/missing/vm.sock' in r.err
                and 'No such file or directory' in r.err,
                'a socket in a missing directory: the error names the path and the cause', r)


def main() -> int:
    kvmtest.require_kvm()
    kvmtest.require_guest('balloon')
    c = Checker()
    test_client_errors(c)
    test_running_vm(c)
    test_socket_paths(c)
    return c.done()


if __name__ == '__main__':
    sys.exit(main())
