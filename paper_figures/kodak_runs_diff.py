"""Two runs of the same receivers against each other, paired over images: per receiver, the mean over images of
(run A − run B) after averaging each image over the SNRs, ± s.e., and the largest |A − B| of any row and metric.
For a rerun that should reproduce (another thread count, a new machine):

    python paper_figures/kodak_runs_diff.py --a docs/kodak_small/r4_s20/seed1/metrics.csv \
        --b docs/kodak_small/r3_crops/seed1/metrics.csv docs/kodak_small/r4_s20/seed1_jscgc/metrics.csv

``--b`` may name several files; later ones replace receivers of earlier ones (:func:`kodak_goal.combined`).
Only receivers present in both runs are compared. ``--metrics`` names the metrics (default PSNR, LPIPS-alex and
DISTS); ``--metrics all`` takes every metric column both runs have, so max_abs is the largest difference anywhere.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from jscgc import checks, paired
from paper_figures.kodak_goal import combined

__all__ = ["runs_diff", "metric_columns"]

METRICS = ["psnr", "lpips_alex", "dists"]
KEYS = ("method", "snr_db", "image", "sample")


def metric_columns(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Every numeric column of both runs that is not a key: the metrics ``--metrics all`` compares."""
    return [c for c in a.columns if c in b.columns and c not in KEYS and pd.api.types.is_numeric_dtype(a[c])]


def runs_diff(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str] = METRICS) -> pd.DataFrame:
    """One row per receiver in both frames: n images, <metric> and <metric>_se (mean ± s.e. of the per-image
    difference a − b, each image averaged over SNRs first), and max_abs (largest |a − b| over rows and metrics)."""
    keys = ["method", "snr_db", "image"]
    pa, pb = (paired.per_image(f, metrics).set_index(keys) for f in (a, b))
    both = pa.index.intersection(pb.index)
    diff = (pa.loc[both] - pb.loc[both]).reset_index()
    rows = []
    for method, d in diff.groupby("method", sort=False):
        per_image = d.groupby("image")[metrics].mean()
        row = {"method": method, "n": len(per_image), "max_abs": float(d[metrics].abs().max().max())}
        for m in metrics:
            row[m], row[m + "_se"], _ = paired.mean_se(per_image[m])
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="metrics.csv of the run to compare")
    p.add_argument("--b", nargs="+", required=True, help="metrics.csv of the run compared against")
    p.add_argument("--metrics", default=",".join(METRICS), help="comma list of metric columns, or all")

    def read(f: str) -> pd.DataFrame:
        name = Path(f).name
        checks.results_folder("--a/--b", Path(f).parent, [name], {name: ["method", "snr_db", "image", *METRICS]})
        return pd.read_csv(f)

    def check():
        a = p.parse_args(argv)
        runs = read(a.a), combined([read(f) for f in a.b])
        metrics = metric_columns(*runs) if a.metrics == "all" else a.metrics.split(",")
        if missing := [m for m in metrics if m not in runs[0] or m not in runs[1]]:
            raise checks.UsageError(f"--metrics {a.metrics}: {missing} not in both runs' columns")
        return runs, metrics

    return checks.run_main("paper_figures/kodak_runs_diff.py", check, lambda given: print(
        runs_diff(*given[0], metrics=given[1]).to_string(index=False, float_format="%+.4f")) or 0)


if __name__ == "__main__":
    sys.exit(main())
