"""Shared pieces of the benchmark scripts (standard library only): where
the build is, the check that it is there, runs through runstat, medians,
and the kvmrun-vs-QEMU table. Also puts tests/integration on sys.path, so
the scripts can use its helpers (kvmtest: control socket, smaps)."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))


def build_path(*parts: str) -> str:
    """A path in the default build directory (ROOT/build)."""
    return os.path.join(ROOT, 'build', *parts)


def require_built(tool: str, paths) -> bool:
    """False, after saying which, when one of @paths does not exist."""
    for path in paths:
        if not os.path.exists(path):
            print(f'{tool}: {path} is missing; build first (meson setup build && ninja -C build)')
            return False
    return True


def runstat(runstat_path: str, cmd: list[str]) -> tuple[float, float, float, int]:
    """Runs @cmd once through runstat: (wall ms, cpu ms, peak RSS MiB, exit status)."""
    out = subprocess.run([runstat_path] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True, text=True).stdout.split('\n')[-2]
    wall, cpu, rss, code = (int(x) for x in out.split())
    return wall / 1e3, cpu / 1e3, rss / 1024.0, code


def runstat_series(runstat_path: str, name: str, cmd: list[str], runs: int) -> dict:
    """Medians over @runs runs of @cmd after one to warm the page cache:
    name, wall (ms), cpu (ms), rss (MiB) and the exit statuses seen."""
    runstat(runstat_path, cmd)
    samples = [runstat(runstat_path, cmd) for _ in range(runs)]
    return {
        'name': name,
        'wall': statistics.median(s[0] for s in samples),
        'cpu': statistics.median(s[1] for s in samples),
        'rss': statistics.median(s[2] for s in samples),
        'codes': sorted({s[3] for s in samples}),
    }


RUNSTAT_COLUMNS = (('wall ms', 'wall', 10), ('cpu ms', 'cpu', 10), ('peak RSS MiB', 'rss', 14))


def print_table(rows: list[dict], columns=RUNSTAT_COLUMNS, width: int = 18) -> None:
    """One line a VMM (row['name'], the @columns (header, key, width),
    exit codes and row.get('note')), then the ratio of the first row
    (kvmrun) to each other one (the baselines). A value of None prints as
    '-'."""
    def cell(v, w: int, spec: str) -> str:
        return f'{v:>{w}{spec}}' if v is not None else f'{"-":>{w}}'

    print(f'{"VMM":<{width}}' + ''.join(f'{h:>{w}}' for h, _, w in columns) + '  exit codes')
    for r in rows:
        print(f'{r["name"]:<{width}}' + ''.join(cell(r[k], w, '.1f') for _, k, w in columns)
              + f'  {r["codes"]}' + r.get('note', ''))
    if len(rows) < 2:
        print('baseline missing: qemu-system-x86_64 is not installed')
    k = rows[0]
    for q in rows[1:]:
        name = 'kvmrun/qemu' if len(rows) == 2 else f'kvmrun/{q["name"].removeprefix("qemu ")}'
        print(f'{name:<{width}}' + ''.join(
            cell(k[key] / q[key] if k[key] and q[key] else None, w, '.2f')
            for _, key, w in columns))
