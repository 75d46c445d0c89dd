"""The fuzz_driver op encoding (fuzz_driver.h), for the seed writers of
fuzz_net and fuzz_balloon, and write_corpus() for every make_seeds_*.py."""
import os
import struct

DESC, AVAIL, KICK, RAW, AVAIL_RAW, RESET, PUMP, DEV_A, DEV_B, DEV_C = range(10)
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
QSIZE = 16
RAM_B = 0x400000
ALL = 0xffffffffffffffff    # every feature bit: the device masks what it lacks
BUF = 0x20000               # seeds' buffers: in RAM A, above the rings (FDRV_RING)


def header(cfg=0, features=ALL):
    """The input's start for fuzz_net and fuzz_balloon: the le64 features the
    driver asks for, then the fuzzer's own configuration byte @cfg."""
    return struct.pack('<Q', features) + bytes([cfg])


def op(kind, q=0, idx=0, flags=0, nxt=0, aux=0, addr=0, length=0):
    return struct.pack('<BBBBHHII', kind, q, idx, flags, nxt, aux, addr & 0xffffffff,
                       length & 0xffffffff)


def raw(gpa, value):
    """4 bytes of @value at @gpa."""
    return op(RAW, addr=value, length=gpa)


def raw_run(gpa, first, count, step=1):
    """@count le32 words at @gpa: first, first + step, ... (one op)."""
    return op(RAW, nxt=step, aux=count - 1, addr=first, length=gpa)


def raw_bytes(gpa, data):
    data = data + b'\0' * (-len(data) % 4)
    return b''.join(raw(gpa + i, struct.unpack_from('<I', data, i)[0])
                    for i in range(0, len(data), 4))


class Ring:
    """Chains for one queue: descriptors allocated in order, wrapping."""

    def __init__(self, q):
        self.q = q
        self.next_desc = 0

    def chain(self, bufs):
        """@bufs: (addr, len, writable[, indirect]); returns the ops writing the
        descriptors and offering the chain (no kick)."""
        out = b''
        head = self.next_desc
        for i, b in enumerate(bufs):
            addr, length, w = b[:3]
            ind = len(b) > 3 and b[3]
            idx = (head + i) % QSIZE
            flags = (F_WRITE if w else 0) | (F_NEXT if i + 1 < len(bufs) else 0) | \
                (F_INDIRECT if ind else 0)
            out += op(DESC, self.q, idx, flags, (idx + 1) % QSIZE, 0, addr, length)
        self.next_desc = (head + len(bufs)) % QSIZE
        return out + op(AVAIL, self.q, head)

    def kick(self):
        return op(KICK, self.q)


def indirect_table(gpa, bufs):
    """Writes an indirect descriptor table at @gpa (ops) for @bufs."""
    out = b''
    for i, (addr, length, w) in enumerate(bufs):
        flags = (F_WRITE if w else 0) | (F_NEXT if i + 1 < len(bufs) else 0)
        out += raw_bytes(gpa + 16 * i, struct.pack('<QIHH', addr, length, flags, i + 1))
    return out


def write_corpus(out_dir, seeds):
    """Makes @out_dir hold exactly @seeds ({file name: bytes}). Emptied first
    so that a seed renamed or dropped in a script leaves no stale file in the
    tracked corpus."""
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        os.unlink(os.path.join(out_dir, name))
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), 'wb') as f:
            f.write(data)
    print(f'{len(seeds)} seeds in {out_dir}')
