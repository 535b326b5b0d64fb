"""Figures of the toy experiment, drawn from its saved CSVs alone (no training).

    python paper_figures/toy_manifold.py --results results/toy_manifold

Writes PNG and PDF beside the CSVs: ``delta_vs_mi`` (empirical δ at P_e = 0.1 against I(X; Ŷ),
with the paper's δ* and the rigorous δ*_p curves), ``distance_vs_snr`` (median distance of x̂ to
the data support, every method that ran) and ``samples_scatter`` (S¹ at the lowest and
highest SNR).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jscgc.io import atomic_save  # noqa: E402
from jscgc.methods import METHODS  # noqa: E402
from theory.bound import delta_star  # noqa: E402

P_SHOWN = 0.1
LABELS = {**{name: m.label for name, m in METHODS.items()}, "map": "exact MAP (control)"}


def _save(fig, out: Path, name: str) -> None:
    for ext in ("png", "pdf"):
        atomic_save(out / f"{name}.{ext}", lambda f: fig.savefig(f, dpi=200, bbox_inches="tight"))
    plt.close(fig)


def delta_vs_mi(df: pd.DataFrame, out: Path) -> None:
    d = df[np.isclose(df.p, P_SHOWN)]
    names = list(dict.fromkeys(d.manifold))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2), squeeze=False)
    palette = dict(zip(LABELS, sns.color_palette("colorblind", len(LABELS))))
    for ax, name in zip(axes[0], names):
        sub = d[d.manifold == name]
        dim, C = int(sub.d.iloc[0]), float(sub.C_paper.iloc[0])
        hi = max(sub.mi_bits_high.max(), 1.0) * 1.1
        grid = np.linspace(0, hi, 200)
        ax.plot(grid, delta_star(grid, dim, C), "k-", lw=1.2, label="paper δ* (Thm 1, C=Vol/ω_d)")
        # The rigorous bound depends on the exact P_max(δ), so it is drawn from the rows' values
        # (continuum Fano at each row's upper MI), not from the C δ^(-d) formula, which with
        # C = Vol/ω_d is only valid for small δ.
        rig = sub.sort_values("mi_bits_high").groupby("mi_bits_high", as_index=False).delta_star_continuum.max()
        ax.plot(rig.mi_bits_high, rig.delta_star_continuum, "k--", lw=1.0,
                label=f"rigorous δ*_p (continuum Fano, p={P_SHOWN})")
        for dec, s in sub.groupby("decoder"):
            ax.errorbar(s.mi_bits, s.delta_emp,
                        xerr=np.clip([s.mi_bits - s.mi_bits_low, s.mi_bits_high - s.mi_bits], 0, None),
                        yerr=np.clip([s.delta_emp - s.delta_emp_ci_low,
                                      s.delta_emp_ci_high - s.delta_emp], 0, None),
                        fmt="o", ms=4, capsize=2, color=palette.get(dec), label=LABELS.get(dec, dec))
        ax.set(title=f"{name} (d={dim})", xlabel="I(X;Ŷ) [bits]", ylabel=f"δ at P_e={P_SHOWN}")
        ax.set_ylim(bottom=0)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False, bbox_to_anchor=(0.5, -0.16))
    fig.suptitle("Empirical δ at P_e = 0.1 (95% CI) against the paper's and the rigorous bound", y=1.03)
    _save(fig, out, "delta_vs_mi")


def distance_vs_snr(df: pd.DataFrame, out: Path) -> None:
    d = df[np.isclose(df.p, P_SHOWN) & (df.decoder != "map")].copy()
    d["method"] = d.decoder.map(LABELS)
    g = sns.relplot(data=d, x="snr_db", y="dist_to_manifold_median", hue="method", col="manifold",
                    kind="line", marker="o", height=2.8, aspect=1.0, palette="colorblind",
                    facet_kws={"sharey": False})
    g.set(yscale="log", xlabel="SNR [dB]", ylabel="median distance of x̂ to the support")
    g.set_titles("{col_name}")
    _save(g.figure, out, "distance_vs_snr")


def samples_scatter(samples: pd.DataFrame, out: Path) -> None:
    if samples.empty:
        return
    snrs = sorted(samples.snr_db.unique())
    pick = [snrs[0], snrs[-1]]
    methods = [m for m in LABELS if m in set(samples.decoder)]
    fig, axes = plt.subplots(2, len(methods), figsize=(2.6 * len(methods), 5.4), squeeze=False)
    theta = np.linspace(0, 2 * np.pi, 200)
    for j, m in enumerate(methods):
        for i, snr in enumerate(pick):
            ax = axes[i][j]
            s = samples[(samples.decoder == m) & (samples.snr_db == snr)]
            ax.plot(np.cos(theta), np.sin(theta), color="0.8", lw=3, zorder=0)
            ax.scatter(s.x0, s.x1, s=4, color="0.4", label="source x")
            ax.scatter(s.xhat0, s.xhat1, s=4, color=sns.color_palette("colorblind")[j], label="x̂")
            ax.set(title=f"{LABELS[m]}\n{snr:g} dB", aspect="equal", xlim=(-1.6, 1.6), ylim=(-1.6, 1.6))
            ax.title.set_fontsize(8)
            ax.set_xticks([]); ax.set_yticks([])  # noqa: E702
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.suptitle("S¹: samples of each receiver at the lowest and highest SNR", y=1.02)
    _save(fig, out, "samples_scatter")


def draw(results: str | Path) -> None:
    """Draw every toy figure from ``results/{results,samples}.csv`` into the same folder."""
    results = Path(results)
    csv = results / "results.csv"
    if not csv.exists():
        raise FileNotFoundError(f"--results: no results.csv in {results}; run experiments/toy_manifold.py")
    sns.set_theme(style="whitegrid", context="paper")
    df = pd.read_csv(csv)
    delta_vs_mi(df, results)
    distance_vs_snr(df, results)
    samples_path = results / "samples.csv"
    if samples_path.exists() and samples_path.stat().st_size > 1:
        samples_scatter(pd.read_csv(samples_path), results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results/toy_manifold", help="folder with results.csv")
    draw(p.parse_args(argv).results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
