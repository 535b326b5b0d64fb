"""The toy distortion–perception figure, drawn from experiments/toy_frontier.py's ``frontier.csv``.

    python paper_figures/toy_frontier.py --results results/toy_frontier

One panel per (source, SNR): the exact frontier D(P) of the JSCGC encoder (line), the MMSE estimate X*,
the transport T(X*) and the exact posterior sampler averaged over N draws (black), JSCGC's receiver across
the dial (colour: N samples averaged; marker: Euler steps), the MSE and two-stage baselines (grey, each
with its own encoder), and the sampling floor of P (dotted: P of a fresh draw of the source itself).
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from paper_figures import save_figure
from jscgc import checks

#: the columns of frontier.csv the figure reads
COLUMNS = ["manifold", "snr_db", "receiver", "kind", "steps", "samples", "D", "P", "P_floor"]

MARKERS = ["o", "s", "^", "D", "v", "P"]


def _panel(ax, sub: pd.DataFrame, palette: dict, markers: dict) -> None:
    line = sub[sub.kind == "frontier"].sort_values("P")
    ax.plot(line.P, line.D, color="black", lw=1.5, label="exact frontier D(P)")
    ax.axvline(sub.P_floor.iloc[0], color="grey", ls=":", lw=1, label="sampling floor of P")
    exact = sub[sub.kind == "exact"]
    for _, r in exact.iterrows():
        kind = r.receiver if r.receiver != "exact posterior sampler" else f"exact sampler, N={int(r.samples)}"
        marker = {"MMSE estimate X*": "*", "transport T(X*)": "X"}.get(r.receiver, "o")
        ax.scatter(r.P, r.D, color="black", marker=marker, s=40 if marker != "o" else 14, zorder=3,
                   facecolors="none" if marker == "o" else "black", label=kind if marker != "o" else None)
    dial = sub[sub.kind == "dial"]
    for _, r in dial.iterrows():
        ax.scatter(r.P, r.D, color=palette[int(r.samples)], marker=markers[int(r.steps)], s=22, zorder=4)
    for _, r in sub[sub.kind == "point"].iterrows():
        ax.scatter(r.P, r.D, color="0.5", marker=">" if "MSE" in r.receiver else "<", s=30, zorder=3, label=r.receiver)
    ax.set_xlabel("P = W2(p_X, p_X̂)")
    ax.set_ylabel("D = E‖X − X̂‖²")


def draw(results: Path) -> None:
    df = pd.read_csv(Path(results) / "frontier.csv")
    dial = df[df.kind == "dial"]
    ns, steps = sorted(dial.samples.dropna().unique().astype(int)), sorted(dial.steps.dropna().unique().astype(int))
    palette = dict(zip(ns, sns.color_palette("viridis", len(ns))))
    markers = dict(zip(steps, MARKERS))
    sources, snrs = list(dict.fromkeys(df.manifold)), sorted(df.snr_db.unique())
    sns.set_theme(style="whitegrid", font_scale=0.8)
    fig, axes = plt.subplots(len(sources), len(snrs), figsize=(3.2 * len(snrs), 2.7 * len(sources)), squeeze=False)
    for i, src in enumerate(sources):
        for j, snr in enumerate(snrs):
            ax = axes[i, j]
            _panel(ax, df[(df.manifold == src) & (df.snr_db == snr)], palette, markers)
            ax.set_title(f"{src}, {snr:g} dB")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for n in ns:
        seen[f"JSCGC, N={n}"] = plt.Line2D([], [], color=palette[n], marker="o", ls="")
    for s in steps:
        seen[f"JSCGC, {s} Euler steps"] = plt.Line2D([], [], color="0.3", marker=markers[s], ls="")
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, Path(results), "toy_frontier")


def check(results: str | Path) -> Path:
    """A writable folder holding experiments/toy_frontier.py's frontier.csv (raises UsageError)."""
    checks.results_folder("--results", results, ["frontier.csv"], {"frontier.csv": COLUMNS})
    return checks.writable_folder("--results", results)


def main(argv: list[str] | None = None) -> int:
    """Check --results (``paper_figures/toy_frontier: …``, exit 2, nothing written), then draw."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results/toy_frontier")
    return checks.run_main("paper_figures/toy_frontier.py", lambda: check(p.parse_args(argv).results),
                           lambda results: draw(results) or 0)


if __name__ == "__main__":
    sys.exit(main())
