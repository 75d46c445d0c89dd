#!/usr/bin/env python3
"""Writes seed inputs for fuzz_state into corpus_state/: real saves of each
device the harness loads (the UART, RTC, i8042, ACPI PM, PCI host, a
virtio device on pci and on mmio, the balloon), as created and after a
driver used it, written by the harness itself (FUZZ_STATE_SEEDS=DIR), so
the seeds are exactly what kvmrun saves. Usage: make_seeds_state.py
BUILD/tests/fuzz/fuzz_state. Input format: see fuzz_state.c."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'corpus_state')


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: make_seeds_state.py BUILD/tests/fuzz/fuzz_state')
    os.makedirs(OUT, exist_ok=True)
    env = dict(os.environ, FUZZ_STATE_SEEDS=OUT)
    subprocess.run([sys.argv[1]], env=env, check=True)
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == '__main__':
    main()
