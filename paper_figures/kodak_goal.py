"""The goal of issue 28, checked on Kodak runs of experiments/kodak.py: per seed and SNR, does the shipped
``jscgc`` receiver have the lowest LPIPS-alex and DISTS of all the receivers, with its PSNR within 3.01 dB
of MambaJSCC's (the 2·MMSE of an exact posterior sampler), and does one of its own dial points or views
come within 1 dB of MambaJSCC's PSNR?

The rivals are the other methods' receivers (``jscgc-paper`` among them); ``jscgc``'s own views (its
sample, μ(ŷ)) and dial points (``jscgc [...]``) are not rivals but candidates for the other end of its
dial. Every difference is paired over images (:mod:`jscgc.paired`): mean ± s.e., and a verdict is
"established" when the 95 % interval (± 1.96 s.e.) lies on the goal's side.

kodak_report.py writes goal.csv for whole runs. From the command line this module checks the goal on
metrics.csv files combined: the receivers of each later file replace those of the same name in the earlier
ones (a rerun of some methods beside a run whose other methods reproduce bit for bit):

    python paper_figures/kodak_goal.py --seed 1 --metrics docs/kodak_small/r3_crops/seed1/metrics.csv \
        results/kodak_small_r4_seed1_jscgc/metrics.csv --out goal_seed1.csv
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from jscgc import checks, paired
from jscgc.io import atomic_write_text

__all__ = ["SHIPPED", "REFERENCE", "PSNR_BOUND", "DIAL_BOUND", "goal_rows", "goal_markdown", "combined"]

SHIPPED, REFERENCE = "jscgc", "mambajscc"
PSNR_BOUND = paired.POSTERIOR_SAMPLER_DB     # 3.01 dB: an exact posterior sampler's MSE is twice the MMSE
DIAL_BOUND = 1.0        # dB: the other end of the dial, near the MSE decoder (its mean cost)
Z = paired.Z95


def _own(method: str) -> bool:
    """A view or dial point of the shipped receiver (not the shipped output itself)."""
    return method != SHIPPED and method.startswith(SHIPPED) and not method.startswith(SHIPPED + "-")


def _diff(images: pd.DataFrame, a: str, b: str, metric: str) -> tuple[float, float]:
    """Paired mean ± s.e. over images of (a − b) in one SNR's per-image frame."""
    d = paired.paired_differences(images[images.method.isin([a, b])], b, [metric])
    d = d[d.method == a]
    return (float(d["diff"].iloc[0]), float(d["se"].iloc[0])) if len(d) else (float("nan"), float("nan"))


def goal_rows(seed: int, metrics: pd.DataFrame) -> list[dict]:
    """One row per SNR of one run's metrics.csv: for LPIPS-alex and DISTS the best rival and jscgc minus
    it (± s.e.); the PSNR cost against MambaJSCC (± s.e.); the own receiver nearest MambaJSCC's PSNR and its
    cost. ValueError when jscgc or MambaJSCC is missing."""
    missing = {SHIPPED, REFERENCE} - set(metrics.method)
    if missing:
        raise ValueError(f"kodak_goal: the run of seed {seed} lacks {sorted(missing)}")
    cols = [m for m in ("psnr", "lpips_alex", "dists") if m in metrics and metrics[m].notna().any()]
    images = paired.per_image(metrics, cols)
    rows = []
    for snr, g in images.groupby("snr_db"):
        means = g.groupby("method")[cols].mean()
        row = {"seed": seed, "snr_db": snr}
        rivals = [m for m in means.index if m != SHIPPED and not _own(m)]
        for metric in ("lpips_alex", "dists"):
            if metric not in cols:
                continue
            best = means.loc[rivals, metric].idxmin()
            diff, se = _diff(g, SHIPPED, best, metric)
            row.update({f"{metric}_jscgc": means.loc[SHIPPED, metric], f"{metric}_best_rival": best,
                        f"{metric}_diff": diff, f"{metric}_se": se, f"{metric}_lowest": diff < 0,
                        f"{metric}_established": diff + Z * se < 0})
        cost, se = _diff(g, REFERENCE, SHIPPED, "psnr")
        row.update(psnr_cost=cost, psnr_cost_se=se, psnr_within=cost + Z * se <= PSNR_BOUND)
        own = [m for m in means.index if _own(m)]
        if own:
            near = means.loc[own, "psnr"].idxmax()
            near_cost, near_se = _diff(g, REFERENCE, near, "psnr")
            row.update(dial_end=near, dial_end_cost=near_cost, dial_end_se=near_se,
                       dial_end_within=near_cost <= DIAL_BOUND)
        rows.append(row)
    return rows


def goal_markdown(table: pd.DataFrame) -> str:
    """The :func:`goal_rows` of every seed as a markdown table and a one-line count of what holds."""
    lines = ["| seed | SNR (dB) | LPIPS-alex: jscgc − best rival | DISTS: jscgc − best rival "
             "| PSNR cost vs MambaJSCC (dB) | nearest own receiver: cost (dB) |", "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        cells = []
        for metric in ("lpips_alex", "dists"):
            if f"{metric}_diff" in r and pd.notna(r[f"{metric}_diff"]):
                mark = "*" if r[f"{metric}_established"] else ""
                cells.append(f"{r[f'{metric}_diff']:+.3f} ± {r[f'{metric}_se']:.3f}{mark} ({r[f'{metric}_best_rival']})")
            else:
                cells.append("–")
        cells.append(f"{r['psnr_cost']:.2f} ± {r['psnr_cost_se']:.2f}")
        cells.append(f"{r['dial_end_cost']:.2f} ± {r['dial_end_se']:.2f} ({r['dial_end']})"
                     if "dial_end" in r and pd.notna(r.get("dial_end")) else "–")
        lines.append(f"| {r['seed']} | {r['snr_db']:g} | " + " | ".join(cells) + " |")
    n = len(table)
    count = lambda col: int(table[col].fillna(False).astype(bool).sum()) if col in table else 0  # noqa: E731
    lines += ["", f"Of {n} (seed, SNR) points: jscgc has the lowest mean LPIPS-alex at {count('lpips_alex_lowest')} "
              f"({count('lpips_alex_established')} with the paired interval below 0), the lowest DISTS at "
              f"{count('dists_lowest')} ({count('dists_established')}); its PSNR cost is within {PSNR_BOUND:.2f} dB "
              f"(upper 95 % bound) at {count('psnr_within')}; an own receiver is within {DIAL_BOUND:g} dB of "
              f"MambaJSCC's mean PSNR at {count('dial_end_within')}. (*: the paired 95 % interval lies below 0.)"]
    return "\n".join(lines) + "\n"


def combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """metrics.csv frames in order, each later frame's receivers (its ``method`` values) replacing the rows of
    those receivers in the earlier ones."""
    out = frames[0]
    for f in frames[1:]:
        out = pd.concat([out[~out.method.isin(set(f.method))], f], ignore_index=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True, help="the training seed the rows come from")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.csv files; later ones replace receivers")
    p.add_argument("--out", required=True, help="the goal CSV to write")

    def check():
        a = p.parse_args(argv)
        frames = []
        for f in a.metrics:
            name = Path(f).name
            checks.results_folder("--metrics", Path(f).parent, [name], {name: ["method", "snr_db", "image"]})
            frames.append(pd.read_csv(f))
        out = Path(a.out)
        if out.is_dir():
            raise checks.UsageError(f"--out {a.out}: is a folder; expected a CSV file to write")
        checks.writable_folder("--out", out.parent)
        try:
            table = pd.DataFrame(goal_rows(a.seed, combined(frames)))
        except ValueError as err:
            raise checks.UsageError(f"--metrics: {err}") from None
        return out, table

    def work(checked):
        out, table = checked
        atomic_write_text(out, table.to_csv(index=False))
        print(goal_markdown(table))
        return 0

    return checks.run_main("paper_figures/kodak_goal.py", check, work)


if __name__ == "__main__":
    sys.exit(main())
