"""The host side of a Linux guest's network, for test_linux_net.py and
tests/bench/compare (standard library only): a network namespace the test
makes itself, the guest's tap in it with the peer address, and the peer's
servers (iperf3, and an HTTP server that sends a 64 MiB blob whose hash
it prints, and hashes what it is sent) started there and ended by their pids.

    with netpeer.Peer('lnet') as p:
        vm = linuxguest.VM(cmd, 'net', netns=p.ns)   # kvmrun creates the tap in p.ns
        p.up(p.TAP)                                   # the peer's address, link up
        p.serve()                                     # iperf3 on 5201/5202, HTTP on 8080

Only addresses inside that namespace are used (10.0.2.0/24).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PEER_IP = '10.0.2.1'
GUEST_IP = '10.0.2.15'
HTTP_PORT = 8080
IPERF_PORTS = (5201, 5202)
BLOB_SIZE = 64 << 20

# The HTTP peer, run with python3 -c inside the namespace: it prints
# "blob SHA256" of BLOB_SIZE random bytes, none of them NUL (the guest sends
# the blob back with busybox wget --post-file, which takes its file as a C
# string), which GET /blob sends; POST /upload answers the sha256 of the
# body and prints "upload SIZE SHA256".
HTTP_SERVER = r'''
import hashlib, http.server, sys
import os
size, port = int(sys.argv[1]), int(sys.argv[2])
blob = os.urandom(size).translate(bytes([1]) + bytes(range(1, 256)))
print('blob', hashlib.sha256(blob).hexdigest(), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        h, left = hashlib.sha256(), n
        while left:
            b = self.rfile.read(min(left, 1 << 20))
            if not b: break
            h.update(b); left -= len(b)
        d = h.hexdigest().encode()
        print('upload', n - left, d.decode(), flush=True)
        self.send_response(200)
        self.send_header('Content-Length', str(len(d) + 1))
        self.end_headers()
        self.wfile.write(d + b'\n')
s = http.server.ThreadingHTTPServer(('0.0.0.0', port), H)
print('ready', flush=True)
s.serve_forever()
'''


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def usable() -> str | None:
    """Why this host cannot make namespaces with taps, or None."""
    for path in ('/dev/net/tun',):
        if not os.path.exists(path):
            return f'{path} is missing'
    name = f'kvmrun-probe-{os.getpid()}'
    r = run('ip', 'netns', 'add', name, check=False)
    if r.returncode != 0:
        return f'ip netns add failed: {r.stderr.strip()}'
    run('ip', 'netns', 'del', name, check=False)
    return None


class Peer:
    TAP = 'ltap0'

    def __init__(self, tag: str) -> None:
        self.ns = f'kvmrun-{tag}-{os.getpid()}'
        self.procs: list[subprocess.Popen] = []
        self.http_out = None
        self.http_path = None

    def __enter__(self) -> 'Peer':
        run('ip', 'netns', 'add', self.ns)
        run('ip', '-n', self.ns, 'link', 'set', 'lo', 'up')
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        run('ip', 'netns', 'del', self.ns, check=False)

    def exists(self, dev: str) -> bool:
        return run('ip', '-n', self.ns, 'link', 'show', dev, check=False).returncode == 0

    def wait_dev(self, dev: str, timeout: float = 60) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.exists(dev):
                return True
            time.sleep(0.1)
        return False

    def up(self, dev: str) -> None:
        """The peer's address on @dev, and the link up."""
        run('ip', '-n', self.ns, 'addr', 'add', f'{PEER_IP}/24', 'dev', dev)
        run('ip', '-n', self.ns, 'link', 'set', dev, 'up')

    def link(self, dev: str, state: str) -> None:
        run('ip', '-n', self.ns, 'link', 'set', dev, state)

    def delete(self, dev: str) -> None:
        run('ip', '-n', self.ns, 'link', 'del', dev)

    def make_tap(self, dev: str, queues: int, mtu: int) -> None:
        """A tap as an administrator makes one, with the peer's address, up."""
        run('ip', '-n', self.ns, 'tuntap', 'add', 'dev', dev, 'mode', 'tap',
            *(['multi_queue'] if queues > 1 else []))
        run('ip', '-n', self.ns, 'link', 'set', dev, 'mtu', str(mtu))
        self.up(dev)

    def stat(self, dev: str, name: str) -> int:
        r = run('ip', 'netns', 'exec', self.ns, 'cat', f'/sys/class/net/{dev}/statistics/{name}')
        return int(r.stdout)

    def spawn(self, cmd: list[str], out=subprocess.DEVNULL) -> subprocess.Popen:
        p = subprocess.Popen(['ip', 'netns', 'exec', self.ns] + cmd, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def serve(self, http: bool = True) -> bool:
        """iperf3 servers on IPERF_PORTS and (with @http) the HTTP peer;
        True once they listen."""
        for port in IPERF_PORTS:
            self.spawn(['iperf3', '-s', '-p', str(port)])
        if http:
            self.http_path = f'/tmp/kvmrun-peer-{os.getpid()}-{self.ns}.out'
            self.http_out = open(self.http_path, 'w+')
            self.spawn([sys.executable, '-c', HTTP_SERVER, str(BLOB_SIZE), str(HTTP_PORT)],
                       out=self.http_out)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            ss = run('ip', 'netns', 'exec', self.ns, 'ss', '-ltnH', check=False).stdout
            want = [f':{p} ' for p in IPERF_PORTS] + ([f':{HTTP_PORT} '] if http else [])
            if all(w in ss for w in want):
                return True
            time.sleep(0.2)
        return False

    def blob_sha(self) -> str | None:
        """The sha256 of what GET /blob sends."""
        if not self.http_path:
            return None
        with open(self.http_path) as f:
            return next((l.split()[1] for l in f if l.startswith('blob ')), None)

    def uploads(self) -> list[tuple[int, str]]:
        """(size, sha256) of each upload the HTTP peer received."""
        if not self.http_path:
            return []
        with open(self.http_path) as f:
            return [(int(l.split()[1]), l.split()[2]) for l in f if l.startswith('upload ')]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
        self.procs = []
        if self.http_out:
            self.http_out.close()
            os.unlink(self.http_path)
            self.http_out = None
