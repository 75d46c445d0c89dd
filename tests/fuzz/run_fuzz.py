#!/usr/bin/env python3
"""Runs one libFuzzer target for a bounded time, then measures and enforces
its coverage of the code it exists for.

The target is built with clang's source-based coverage
(-fprofile-instr-generate -fcoverage-mapping) on top of the sanitizers, so
the one run both fuzzes and records which lines of the targeted files the
inputs reached: the checked-in seeds, the corpus grown in the build tree by
earlier runs, and whatever this run finds. llvm-profdata and llvm-cov then
report, per targeted file, the lines, regions and functions executed.

The test fails when the fuzzer finds a crash or a sanitizer report, when
the line coverage over the targeted files is below --floor percent, or when
a function named with --need never ran (the code a target exists for must
be reached, not merely compiled in).

  run_fuzz.py --binary B --name N --seconds S --corpus DIR --seeds DIR
              --cover FILE... --floor PCT [--need FUNC...] [-- FUZZER_ARGS]

FILE is relative to the source root (virtio/blk_parse.c); FUNC is a
function name as llvm-cov prints it (file.c:name for static functions).
KVMRUN_FUZZ_SECONDS overrides --seconds (longer runs by hand).
Exits 77 (skip) when llvm-profdata or llvm-cov is missing."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def tool(names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def norm(path):
    return os.path.normpath(path).replace(os.sep, '/')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--binary', required=True)
    ap.add_argument('--name', required=True)
    ap.add_argument('--seconds', type=int, default=15)
    ap.add_argument('--corpus', required=True)
    ap.add_argument('--seeds', required=True)
    ap.add_argument('--artifacts', required=True)
    ap.add_argument('--cover', nargs='+', required=True)
    ap.add_argument('--floor', type=float, required=True)
    ap.add_argument('--need', nargs='*', default=[])
    ap.add_argument('rest', nargs='*')
    a = ap.parse_args()

    profdata = tool(['llvm-profdata-14', 'llvm-profdata'])
    cov = tool(['llvm-cov-14', 'llvm-cov'])
    if not profdata or not cov:
        print(f'skip: {a.name}: llvm-profdata/llvm-cov not found (Debian: llvm-14)')
        return 77

    seconds = int(os.environ.get('KVMRUN_FUZZ_SECONDS', a.seconds))
    os.makedirs(a.corpus, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f'{a.name}-prof-') as tmp:
        env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(tmp, '%p.profraw'))
        cmd = [a.binary, f'-max_total_time={seconds}', '-rss_limit_mb=2048',
               '-print_final_stats=1', f'-artifact_prefix={a.artifacts}-',
               *a.rest, a.corpus, a.seeds]
        print('$', ' '.join(cmd), flush=True)
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors='replace')
        out = r.stdout.splitlines()
        if r.returncode != 0:
            print('\n'.join(out[-120:]))
            print(f'FAIL {a.name}: the fuzzer exited {r.returncode} (crash inputs: {a.artifacts}-*)')
            return 1
        for line in out:
            if (line.startswith('#') and ('INITED' in line or 'DONE' in line)) or \
                    line.startswith('Done '):
                print(line)
        raws = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith('.profraw')]
        if not raws:
            print(f'FAIL {a.name}: no coverage profile was written')
            return 1
        merged = os.path.join(tmp, 'merged.profdata')
        subprocess.run([profdata, 'merge', '-sparse', '-o', merged, *raws], check=True)
        exp = subprocess.run([cov, 'export', '-format=text', '-instr-profile', merged, a.binary],
                             stdout=subprocess.PIPE, check=True, text=True)
    data = json.loads(exp.stdout)['data'][0]

    wanted = {norm(c): None for c in a.cover}
    for f in data['files']:
        name = norm(f['filename'])
        for c in wanted:
            if name == c or name.endswith('/' + c):
                wanted[c] = f['summary']
    missing = [c for c, s in wanted.items() if s is None]
    if missing:
        print(f'FAIL {a.name}: no coverage data for {", ".join(missing)} (not compiled in?)')
        return 1

    lines = covered = 0
    for c, s in wanted.items():
        ln, rg, fn = s['lines'], s['regions'], s['functions']
        lines += ln['count']
        covered += ln['covered']
        print(f'coverage {a.name} {c}: lines {ln["percent"]:.1f}% ({ln["covered"]}/{ln["count"]}), '
              f'regions {rg["percent"]:.1f}%, functions {fn["covered"]}/{fn["count"]}')
    pct = 100.0 * covered / lines if lines else 0.0
    print(f'coverage {a.name}: {pct:.1f}% of {lines} lines in {len(wanted)} file(s) '
          f'(floor {a.floor:.0f}%) after {seconds} s')

    ran = {}
    for fn in data['functions']:
        ran[fn['name']] = ran.get(fn['name'], 0) + fn['count']
    not_run = [n for n in a.need if ran.get(n, 0) == 0]
    unknown = [n for n in a.need if n not in ran]
    status = 0
    if unknown:
        print(f'FAIL {a.name}: no such function in the coverage data: {", ".join(unknown)}')
        status = 1
    elif not_run:
        print(f'FAIL {a.name}: never reached: {", ".join(not_run)}')
        status = 1
    if pct < a.floor:
        print(f'FAIL {a.name}: line coverage {pct:.1f}% is below the floor {a.floor:.0f}%')
        status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
