#!/usr/bin/env python3
"""Draws the bar chart of a tests/bench/compare CSV as a PNG:

    python3 tests/bench/chart.py compare-DATE.csv [OUT.png]

For each figure, how many times better kvmrun is than each QEMU (the ratio
of the medians, turned so that right of 1 is better for kvmrun whether
lower or higher is better), on a log scale. Needs matplotlib
(python3-matplotlib on Debian: it lives in /usr/bin/python3's packages,
so run it with that python if another one comes first in PATH).
"""
from __future__ import annotations

import csv
import sys


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().split('\n\n')[1])
        return 2
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else src.rsplit('.', 1)[0] + '.png'
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('chart.py: matplotlib is not installed (apt-get install python3-matplotlib)')
        return 1
    head, rows = [], []
    with open(src, newline='') as fh:
        for r in csv.reader(fh):
            if r and r[0].startswith('# '):
                head.append(r[0][2:])
            elif r:
                rows.append(r)
    cols, rows = rows[0], rows[1:]
    ratio_cols = [i for i, c in enumerate(cols) if c.startswith('kvmrun/')]
    labels = [r[1] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.8))
    h = 0.8 / max(1, len(ratio_cols))
    for n, i in enumerate(ratio_cols):
        adv = []
        for r in rows:
            x = float(r[i]) if r[i] else 0.0
            adv.append((1 / x if r[3] == 'lower' else x) if x else 0.0)
        ys = [j + n * h for j in range(len(rows))]
        ax.barh(ys, adv, height=h, label='vs ' + cols[i].split('/', 1)[1])
        for y, a in zip(ys, adv):
            if a:
                ax.text(a, y, f' {a:.2f}x', va='center', fontsize=7)
    ax.axvline(1.0, color='black', linewidth=0.8)
    ax.set_yticks([j + h * (len(ratio_cols) - 1) / 2 for j in range(len(rows))])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale('log')
    ax.set_xlabel('kvmrun advantage (x, log scale): right of 1 kvmrun is better, left QEMU is')
    ax.set_title('kvmrun vs QEMU, ' + head[0].split('; ')[-1] + '\n' + head[-1][:150], fontsize=8)
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f'png: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
