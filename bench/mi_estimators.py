"""Benchmark of the MI estimators on tasks with known MI (cbg-ethz/bmi's criterion: an estimate
solves a task when |log(Î / I)| < log 1.5). Prints a table; a failing estimator is recorded.

    python bench/mi_estimators.py [--n 4000]
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from bench.environment import checked
from jscgc import checks
from theory.mi import KSG, InfoNCE, discrete_mi, gaussian_pair_mi, kolchinsky_tracey, mi_sandwich

SANDWICH_BATCH = 1000
#: the fewest samples every estimator takes: the sandwich's one batch, and InfoNCE's held-out quarter
#: (n - 3n//4 pairs) holding one of its batches
MIN_N = max(SANDWICH_BATCH, 4 * InfoNCE().batch - 3)


def gaussian_task(dim, rho, n, rng, transform=None):
    x = rng.standard_normal((n, dim))
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal((n, dim))
    if transform is not None:
        x, y = transform(x), transform(y)
    return x, y, gaussian_pair_mi(rho, dim)


def check(argv) -> argparse.Namespace:
    """Every input checked before any estimate: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4000, help=f"samples per task (at least {MIN_N})")
    args = p.parse_args(argv)
    checks.int_at_least("--n", args.n, MIN_N)
    return args


def main(argv=None) -> int:
    args = checked("mi_estimators", lambda: check(argv))
    rng = np.random.default_rng(0)
    rows = []
    for dim, rho in [(1, 0.5), (1, 0.9), (2, 0.75), (3, 0.6), (5, 0.5)]:
        for tname, tf in [("gaussian", None), ("asinh(3·)", lambda a: np.arcsinh(3 * a))]:
            x, y, truth = gaussian_task(dim, rho, args.n, rng, tf)
            name = f"{tname} {dim}+{dim}, ρ={rho}"
            rows.append((name, truth, {"KSG": KSG().estimate(x, y),
                                       "InfoNCE": InfoNCE(steps=400).estimate(x, y)}))
    for k, n_real, snr in [(16, 2, 0.0), (16, 2, 10.0), (64, 4, 5.0)]:
        code = rng.standard_normal((k, n_real))
        code *= math.sqrt(n_real / 2 / (code ** 2).sum(1).mean())
        sigma = math.sqrt(10 ** (-snr / 10) / 2)
        truth = discrete_mi(code, sigma, n=100000).bits
        idx = rng.integers(0, k, args.n)
        y = code[idx] + sigma * rng.standard_normal((args.n, n_real))
        sw = mi_sandwich(code[idx], sigma, batch=SANDWICH_BATCH)
        kt = kolchinsky_tracey(code, sigma)
        rows.append((f"codebook K={k}, {n_real} real uses, {snr:g} dB", truth,
                     {"KSG": KSG().estimate(np.eye(k)[idx], y), "InfoNCE": InfoNCE(steps=400).estimate(np.eye(k)[idx], y),
                      "sandwich-low": sw.low, "sandwich-high": sw.high, "KT-low": kt[0], "KT-high": kt[1]}))
    names = ["KSG", "InfoNCE", "sandwich-low", "sandwich-high", "KT-low", "KT-high"]
    print("| task | true I (bits) | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    solved = {n: [0, 0] for n in names}
    for task, truth, est in rows:
        cells = []
        for n in names:
            if n not in est:
                cells.append("–")
                continue
            ok = est[n] > 0 and abs(math.log(est[n] / truth)) < math.log(1.5)
            solved[n][0] += ok
            solved[n][1] += 1
            cells.append(f"{est[n]:.2f}{'' if ok else ' ✗'}")
        print(f"| {task} | {truth:.2f} | " + " | ".join(cells) + " |")
    print("solved (|log(Î/I)| < log 1.5): " + ", ".join(f"{n} {a}/{b}" for n, (a, b) in solved.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
