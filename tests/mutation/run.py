#!/usr/bin/env python3
"""Mutation testing of guest- and user-facing checks: applies each
single-line mutation listed in a mutations file (default: checks.txt next
to this script) to the source tree, rebuilds only the unit tests it names,
runs them, and reports whether a test caught the mutant. The tree is
restored after each mutant, also on failure or Ctrl-C. A mutant that makes
a check read or write out of bounds is caught only by the sanitizers: run
it on the ASan + UBSan build.

  tests/mutation/run.py [-C BUILD_DIR] [--only ID,ID...] [MUTATIONS_FILE]
  tests/mutation/run.py -C build-asan          # what tests/run's lane builds

A mutation block's first line is ID FILE TESTS [N]: with N, the N-th
occurrence of the line is mutated (for lines that appear more than once).

Exit status 0 when every mutant was caught, 1 when one survived or did not
apply (the line changed: update the list)."""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def parse(path):
    muts, cur = [], None
    for raw in open(path):
        line = raw.rstrip('\n')
        if not line.strip() or line.startswith('#'):
            continue
        if line.startswith('- '):
            cur['old'] = line[2:]
        elif line.startswith('+ '):
            cur['new'] = line[2:]
        else:
            f = line.split()
            cur = {'id': f[0], 'file': f[1], 'tests': f[2].split(','),
                   'nth': int(f[3]) if len(f) > 3 else 0, 'old': None, 'new': None}
            muts.append(cur)
    return muts


def run_tests(build, tests):
    """True when every test passed."""
    for t in tests:
        exe = os.path.join(build, 'tests', 'unit', 'test_' + t)
        r = subprocess.run([exe], cwd=build, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300)
        if r.returncode != 0:
            return False
        if t == 'config':  # the golden test of the example configs, same binary
            r = subprocess.run([os.path.join(build, 'tests', 'unit', 'test_config_examples'),
                                os.path.join(ROOT, 'configs')], cwd=build,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
            if r.returncode != 0:
                return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-C', dest='build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--only', default='')
    ap.add_argument('file', nargs='?', default=os.path.join(os.path.dirname(__file__), 'checks.txt'))
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    only = set(filter(None, a.only.split(',')))
    muts = [m for m in parse(a.file) if not only or m['id'] in only]
    targets = sorted({os.path.join('tests', 'unit', 'test_' + t) for m in muts for t in m['tests']}
                     | {os.path.join('tests', 'unit', 'test_config_examples')})
    ninja = ['ninja', '-C', a.build, '-j2']
    if subprocess.run(ninja + targets, stdout=subprocess.DEVNULL).returncode != 0 or \
            not run_tests(a.build, sorted({t for m in muts for t in m['tests']})):
        print('the unmutated tree does not build or pass its tests')
        return 1
    survived = bad = 0
    print(f'{"id":5} {"file":22} {"result":9} mutation')
    for m in muts:
        path = os.path.join(ROOT, m['file'])
        orig = open(path).read() if os.path.exists(path) else ''
        n = orig.count(m['old'])
        if (n != 1 and not m['nth']) or (m['nth'] and n < m['nth']):
            print(f'{m["id"]:5} {m["file"]:22} {"NO-APPLY":9} {m["old"].strip()}')
            bad += 1
            continue
        at = -1
        for _ in range(max(m['nth'], 1)):
            at = orig.index(m['old'], at + 1)
        mutated = orig[:at] + m['new'] + orig[at + len(m['old']):]
        t0 = time.time()
        try:
            with open(path, 'w') as f:
                f.write(mutated)
            built = subprocess.run(ninja + targets, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL).returncode == 0
            if not built:
                result = 'NO-BUILD'
                bad += 1
            elif run_tests(a.build, m['tests']):
                result = 'SURVIVED'
                survived += 1
            else:
                result = 'caught'
        finally:
            with open(path, 'w') as f:
                f.write(orig)
        print(f'{m["id"]:5} {m["file"]:22} {result:9} {m["old"].strip()}  ->  {m["new"].strip()}'
              f'  ({time.time() - t0:.0f} s)', flush=True)
    subprocess.run(ninja + targets, stdout=subprocess.DEVNULL)
    print(f'{len(muts)} mutants: {len(muts) - survived - bad} caught, {survived} survived, '
          f'{bad} did not apply or build')
    return 0 if survived == 0 and bad == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
