"""Fig. 3 and Fig. 4 of the paper for our runs, drawn from the saved results of experiments/kodak.py.

    python paper_figures/kodak.py --results results/kodak_default

* ``fig3_methods`` — ground truth and every method at the SNR closest to 5 dB, one row per image.
* ``fig3_snr`` — one image (the first saved) for every method across the SNRs.
* ``fig4_metrics`` — one panel per metric against SNR, a line per receiver. The paper's four (PSNR,
  LPIPS-alex, DINO, rFID) come first where their weights were available (DINO and rFID are not here: the
  title says so), then DISTS, LPIPS-vgg and the offline measures; the TAEF2-feature Fréchet distance is
  labelled as the proxy it is. Set measures carry their bootstrap interval over images when the run
  wrote ``sets.csv``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from paper_figures import save_figure
from jscgc import checks
from jscgc.io import DamagedFile, folder_name, read_json
from jscgc.methods import METHODS
from jscgc.metrics import METRICS

LABELS = {name: m.label for name, m in METHODS.items()}


def label(receiver: str) -> str:
    """The figure label of a receiver row: a method's label, with "(sample)" or "μ(ŷ)" kept for the second
    and third receivers of an anchored system."""
    if receiver.endswith(" μ(ŷ)"):
        return LABELS.get(receiver[:-5], receiver[:-5]) + " μ(ŷ)"
    base, _, rest = receiver.partition(" (")
    return LABELS.get(base, base) + (f" ({rest}" if rest else "")
#: the paper's four (PSNR, LPIPS, DINO, rFID) first, then DISTS and our own measures; a panel is drawn only where
#: its metric was measured, and the figure's title names the ones that were not
PANELS = ["psnr", "lpips_alex", "dino", "rfid", "dists", "lpips_vgg", "ms_ssim", "psnr_lp16", "detail_match",
          "hf_ratio", "patch_fd", "latent_fd", "psd_dist", "colour_dist"]


#: Fig. 3's panels are 2.4 in wide: at 160 dpi a 384-px Kodak ÷2 reconstruction is drawn at its own size, not
#: resampled up (at 200 dpi the PNGs were 4 MB each)
PANEL_DPI = 160


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def fig3(results: Path, methods: list[str], snrs: list[float]) -> None:
    gt_dir = results / "recon" / "ground_truth"
    names = sorted(p.stem for p in gt_dir.glob("*.png")) if gt_dir.is_dir() else []
    if not names:
        return
    snr5 = min(snrs, key=lambda s: abs(s - 5.0))
    cols = ["ground truth"] + methods
    fig, axes = plt.subplots(len(names), len(cols), figsize=(2.4 * len(cols), 1.7 * len(names)),
                             squeeze=False)
    for i, n in enumerate(names):
        for j, c in enumerate(cols):
            path = gt_dir / f"{n}.png" if j == 0 else results / "recon" / folder_name(c) / f"snr{snr5:+g}" / f"{n}.png"
            ax = axes[i][j]
            ax.axis("off")
            if path.exists():
                ax.imshow(_read(path))
            if i == 0:
                ax.set_title(c if j == 0 else label(c), fontsize=9)
        axes[i][0].text(-0.05, 0.5, n, transform=axes[i][0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=8)
    fig.suptitle(f"Reconstructions at {snr5:g} dB SNR", y=1.0)
    save_figure(fig, results, "fig3_methods", dpi=PANEL_DPI)

    n = names[0]
    fig, axes = plt.subplots(len(methods), len(snrs) + 1, figsize=(2.4 * (len(snrs) + 1), 1.7 * len(methods)),
                             squeeze=False)
    for i, m in enumerate(methods):
        axes[i][0].imshow(_read(gt_dir / f"{n}.png"))
        axes[i][0].set_ylabel(label(m), fontsize=8)
        for j, s in enumerate(snrs):
            path = results / "recon" / folder_name(m) / f"snr{s:+g}" / f"{n}.png"
            if path.exists():
                axes[i][j + 1].imshow(_read(path))
            if i == 0:
                axes[i][j + 1].set_title(f"{s:g} dB", fontsize=9)
        axes[0][0].set_title("ground truth", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{n} across SNRs", y=1.0)
    save_figure(fig, results, "fig3_snr", dpi=PANEL_DPI)


def fig4(results: Path, summary: pd.DataFrame, unavailable: dict, sets: pd.DataFrame | None = None) -> None:
    """One panel per measured metric against SNR; a set measure's bootstrap interval (``sets``, the run's
    sets.csv) drawn as a band around its line."""
    panels = [m for m in PANELS if m in summary and summary[m].notna().any()]
    if not panels:
        return
    cols = min(4, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows), squeeze=False)
    palette = dict(zip(summary["method"].unique(), sns.color_palette("colorblind")))
    for ax, m in zip(axes.flat, panels):
        for method, grp in summary.groupby("method", sort=False):
            grp = grp.sort_values("snr_db")
            ax.plot(grp["snr_db"], grp[m], marker="o", label=label(method), color=palette[method])
            band = None if sets is None or "lo" not in sets else sets[(sets.metric == m) & (sets.method == method)]
            if band is not None and len(band):
                band = band.sort_values("snr_db")
                ax.fill_between(band["snr_db"], band["lo"], band["hi"], color=palette[method], alpha=0.15, lw=0)
        arrow = {"higher": "↑", "lower": "↓", "one": "→1"}[METRICS[m].better]
        ax.set_title(f"{METRICS[m].label} {arrow}", fontsize=9)
        ax.set_xlabel("SNR (dB)")
        if m == "hf_ratio":
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    note = ("not measured (no weights): " + ", ".join(sorted(unavailable))) if unavailable else ""
    fig.suptitle("Kodak, CBR 1/384" + (f" — {note}" if note else ""), fontsize=9, y=1.01)
    fig.tight_layout()
    save_figure(fig, results, "fig4_metrics")


DIAL_AXES = [("patch_fd", "psnr"), ("latent_fd", "psnr")]


def fig_dial(results: Path, summary: pd.DataFrame) -> None:
    """Distortion (PSNR) against each distributional measure, one panel per (measure, SNR): every receiver
    as a point, the dial points of a method (``<method> [<settings>]``) labelled with their settings."""
    axes_pairs = [(x, y) for x, y in DIAL_AXES if x in summary and summary[x].notna().any()]
    snrs = sorted(summary["snr_db"].unique())
    if not axes_pairs:
        return
    fig, axes = plt.subplots(len(axes_pairs), len(snrs), figsize=(4.2 * len(snrs), 3.4 * len(axes_pairs)), squeeze=False)
    bases = list(dict.fromkeys(m.split(" [")[0].split(" (")[0] for m in summary["method"]))
    palette = dict(zip(bases, sns.color_palette("colorblind")))
    for i, (x, y) in enumerate(axes_pairs):
        for j, snr in enumerate(snrs):
            ax = axes[i][j]
            for _, r in summary[summary.snr_db == snr].iterrows():
                base = r.method.split(" [")[0].split(" (")[0]
                dial = " [" in r.method
                ax.scatter(r[x], r[y], color=palette[base], marker="o" if dial else "s", s=26 if dial else 40,
                           label=None if dial else label(r.method))
                ax.annotate(r.method.split(" [")[1][:-1] if dial else "", (r[x], r[y]), fontsize=6,
                            xytext=(3, 2), textcoords="offset points")
            ax.set_xlabel(f"{METRICS[x].label} ↓", fontsize=8)
            ax.set_ylabel(f"{METRICS[y].label} ↑", fontsize=8)
            ax.set_title(f"{snr:g} dB", fontsize=9)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Kodak: distortion against distribution distance; labelled points: the JSCGC dial", fontsize=9)
    fig.tight_layout()
    save_figure(fig, results, "fig_dial")


def draw(results: str | Path) -> None:
    """Draw Fig. 3 and Fig. 4 (the receivers at their own operating points) and, when the run has --dial
    points, the dial figure, from ``results/{summary.csv, config.json, recon/}``."""
    results = Path(results)
    if not (results / "summary.csv").exists():
        raise FileNotFoundError(f"--results: no summary.csv in {results}; run experiments/kodak.py")
    sns.set_theme(style="whitegrid", context="paper")
    summary = pd.read_csv(results / "summary.csv")
    config = json.loads((results / "config.json").read_text()) if (results / "config.json").exists() else {}
    plain = summary[~summary["method"].str.contains(" [", regex=False)]
    methods = list(dict.fromkeys(plain["method"]))
    fig3(results, methods, sorted(summary["snr_db"].unique().tolist()))
    sets = pd.read_csv(results / "sets.csv") if (results / "sets.csv").exists() else None
    fig4(results, plain, config.get("unavailable_metrics", {}), sets)
    if len(plain) < len(summary):
        fig_dial(results, summary)


def check(results: str | Path) -> Path:
    """A writable folder of experiments/kodak.py holding summary.csv (method, snr_db) and, if any, a readable
    config.json (raises UsageError)."""
    folder = checks.results_folder("--results", results, ["summary.csv"], {"summary.csv": ["method", "snr_db"]})
    if (folder / "config.json").exists():
        try:
            read_json(folder / "config.json")
        except DamagedFile as err:
            raise checks.UsageError(f"--results: {err}") from None
    return checks.writable_folder("--results", folder)


def main(argv: list[str] | None = None) -> int:
    """Check --results (``paper_figures/kodak.py: …``, exit 2, nothing written), then draw."""
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results/kodak_tiny", help="folder written by experiments/kodak.py")
    return checks.run_main("paper_figures/kodak.py", lambda: check(p.parse_args(argv).results),
                           lambda results: draw(results) or 0)


if __name__ == "__main__":
    sys.exit(main())
