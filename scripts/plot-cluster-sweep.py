#!/usr/bin/env python3
"""Draws the whole-cluster cold start (BENCHMARKS.md) from `cluster_sweep --csv`.

    cargo run --release --example cluster_sweep -- --csv target/cluster-sweep.csv
    python3 scripts/plot-cluster-sweep.py target/cluster-sweep.csv docs/cluster-cold-start.png

Needs matplotlib (e.g. `python3 -m venv v && v/bin/pip install matplotlib`). Each curve is the
share of the 4,000 new pods whose first Mount has succeeded, against time since the first pod
was created; the dashed line is the floor the vault's budget allows (40,000 GETs at 4,000 per
10 s = 100 s).
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, out: str) -> None:
    times = defaultdict(list)
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            times[row["scenario"]].append(float(row["seconds"]))
    pods = max(len(v) for v in times.values())
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for label, ts in times.items():
        ts.sort()
        share = [100.0 * (i + 1) / pods for i in range(len(ts))]
        ax.step(ts, share, where="post", label=label, linewidth=1.4)
    ax.axvline(100, color="black", linestyle="--", linewidth=1, label="floor: 100 s")
    ax.set_xlabel("seconds since the first pod was created")
    ax.set_ylabel(f"new pods mounted (% of {pods})")
    ax.set_title("Cold start, 100 nodes × 40 pods × 10 objects, one vault (4,000 GETs / 10 s), default flags")
    ax.set_ylim(0, 101)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot-cluster-sweep.py SWEEP.csv OUT.png")
    main(sys.argv[1], sys.argv[2])
