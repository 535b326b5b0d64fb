"""Figures and README statements of the toy experiment, from its saved CSVs alone (no training).

    python paper_figures/toy_manifold.py --results results/toy_manifold [--markdown]

Writes PNG and PDF beside the CSVs: ``delta_vs_mi`` (empirical δ at P_e = 0.1 against I(X; Ŷ),
with the paper's δ*, the rigorous bound and the channel capacity at each SNR), ``distance_vs_snr``
(median distance of x̂ to the data support, every method that ran) and ``samples_scatter`` (S¹ at
the lowest and highest SNR). ``--markdown`` prints instead what the README says about the run
(:func:`report`), every number computed from ``results.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from paper_figures import save_figure
from jscgc import checks
from jscgc.methods import METHODS
from theory.bound import delta_star

P_SHOWN = 0.1
VACUOUS = 1e-9
"""A rigorous δ* below this is 0 up to rounding: the bound says nothing (vacuous)."""
LABELS = {**{name: m.label for name, m in METHODS.items()}, "map": "exact MAP (control)"}


def _capacity_lines(ax, sub: pd.DataFrame) -> None:
    """A dotted vertical line at the channel capacity of each SNR (no I(X; Ŷ) can exceed it), taken from the
    rows of symbol methods (a binary method's capacity is that of the binary channel its bits see)."""
    awgn = sub[sub.decoder.map(lambda m: m not in METHODS or not METHODS[m].binary)]  # the MAP control too
    caps = awgn.groupby("snr_db").capacity_bits.first()
    for i, (snr, cap) in enumerate(caps.items()):
        ax.axvline(cap, color="0.6", ls=":", lw=0.8, label="capacity at each SNR" if i == 0 else None)
        ax.annotate(f"{snr:g} dB", (cap, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                    ha="right", va="top", fontsize=5, color="0.4")


def delta_vs_mi(df: pd.DataFrame, out: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = df[np.isclose(df.p, P_SHOWN)]
    names = list(dict.fromkeys(d.manifold))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2), squeeze=False, layout="constrained")
    palette = dict(zip(LABELS, sns.color_palette("colorblind", len(LABELS))))
    for ax, name in zip(axes[0], names):
        sub = d[d.manifold == name]
        dim, C = int(sub.d.iloc[0]), float(sub.C_paper.iloc[0])
        hi = max(sub.mi_bits_high.max(), sub.capacity_bits.max(), 1.0) * 1.05
        grid = np.linspace(0, hi, 200)
        ax.plot(grid, delta_star(grid, dim, C), "k-", lw=1.2, label="paper δ* (Thm 1, C=Vol/ω_d)")
        # The rigorous bound depends on the exact P_max(δ), so it is drawn from the rows' values
        # (continuum Fano at each row's upper MI), not from the C δ^(-d) formula.
        rig = sub.sort_values("mi_bits_high").groupby("mi_bits_high", as_index=False).delta_star_continuum.max()
        ax.plot(rig.mi_bits_high, rig.delta_star_continuum, "k--", lw=1.0,
                label=f"rigorous δ*_p (continuum Fano, p={P_SHOWN})")
        _capacity_lines(ax, sub)
        for dec, s in sub.groupby("decoder"):
            ax.errorbar(s.mi_bits, s.delta_emp,
                        xerr=np.clip([s.mi_bits - s.mi_bits_low, s.mi_bits_high - s.mi_bits], 0, None),
                        yerr=np.clip([s.delta_emp - s.delta_emp_ci_low,
                                      s.delta_emp_ci_high - s.delta_emp], 0, None),
                        fmt="o", ms=4, capsize=2, color=palette.get(dec), label=LABELS.get(dec, dec))
        ax.set(title=f"{name} (d={dim})", xlabel="I(X;Ŷ) [bits]", xlim=(0, hi))
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel(f"δ at P_e={P_SHOWN}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=6, frameon=False)
    fig.suptitle("Empirical δ at P_e = 0.1 (95% CI) against the paper's and the rigorous bound")
    save_figure(fig, out, "delta_vs_mi")


def distance_vs_snr(df: pd.DataFrame, out: Path) -> None:
    import seaborn as sns

    d = df[np.isclose(df.p, P_SHOWN) & (df.decoder != "map")].copy()
    d["method"] = d.decoder.map(LABELS)
    g = sns.relplot(data=d, x="snr_db", y="dist_to_manifold_median", hue="method", col="manifold",
                    kind="line", marker="o", height=2.8, aspect=1.0, palette="colorblind", errorbar=None,
                    facet_kws={"sharey": False})
    g.set(yscale="log")
    g.set_axis_labels("SNR [dB]", "median distance of x̂ to the support")  # the outer panels only
    g.set_titles("{col_name}")
    g.figure.subplots_adjust(wspace=0.35)
    save_figure(g.figure, out, "distance_vs_snr")


def samples_scatter(samples: pd.DataFrame, out: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

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
    save_figure(fig, out, "samples_scatter")


FIGURES = ("delta_vs_mi", "distance_vs_snr", "samples_scatter")


def _draw_one(results: Path, name: str) -> None:
    """One figure of FIGURES from the CSVs in ``results`` into the same folder."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    if name == "samples_scatter":
        path = results / "samples.csv"
        if path.exists() and path.stat().st_size > 1:
            samples_scatter(pd.read_csv(path), results)
        return
    {"delta_vs_mi": delta_vs_mi, "distance_vs_snr": distance_vs_snr}[name](_read(results), results)


def draw(results: str | Path, workers: int = 1) -> None:
    """Draw every toy figure from ``results/{results,samples}.csv`` into the same folder, on ``workers``
    forked processes (the figures are independent; matplotlib is imported once, before the fork)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import seaborn  # noqa: F401

    results = Path(results)
    _read(results)  # a missing results.csv is one clear error, before any work
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(min(workers, len(FIGURES))) as pool:
            pool.starmap(_draw_one, [(results, name) for name in FIGURES])
    else:
        for name in FIGURES:
            _draw_one(results, name)


def _read(results: Path) -> pd.DataFrame:
    csv = Path(results) / "results.csv"
    if not csv.exists():
        raise FileNotFoundError(f"--results: no results.csv in {results}; run experiments/toy_manifold.py")
    return pd.read_csv(csv)


# ---- what the README says, from results.csv ----------------------------------------------------

def _rigorous(df: pd.DataFrame) -> pd.Series:
    """The rigorous lower bound a row is judged against: max(δ*_p with the valid C, continuum δ*)."""
    return df[["delta_star_rigorous", "delta_star_continuum"]].max(axis=1)


def failure_causes(df: pd.DataFrame) -> pd.Series:
    """Why each learned row that violates the paper's δ* does (a Series over those rows):
    'discrete source' (a codebook: P_max ≥ 1/K, so K(δ) ≈ C δ^(−d) fails at small δ; docs/theory.md,
    item 5), 'δ* ≥ diameter/2' (one ball of radius δ* around the centre covers a unit sphere, so
    K(δ*) = 1 < C δ*^(−d); items 3–4) or 'other'."""
    bad = df[(df.decoder != "map") & ~df.paper_bound_holds.astype(bool)]
    cause = np.where(bad.manifold.str.startswith("codebook"), "discrete source",
                     np.where(bad.delta_star_paper >= bad.diameter / 2, "δ* ≥ diameter/2", "other"))
    return pd.Series(cause, index=bad.index, name="cause")


def _bound_lines(df: pd.DataFrame) -> list[str]:
    learned = df[df.decoder != "map"]
    rig = _rigorous(learned)
    vacuous = rig < VACUOUS
    live = learned[~vacuous]
    margin = (live.delta_emp / _rigorous(live))
    worst = live.loc[margin.idxmin()]
    causes = failure_causes(df).value_counts()
    ctrl = df[df.decoder == "map"]
    lines = [f"- Rigorous bound (δ_emp's CI upper end ≥ max(δ*_p, δ*_cont)): holds on "
             f"**{int(learned.bound_holds.sum())}/{len(learned)}** learned rows; {int(vacuous.sum())} of them are "
             f"vacuous (δ* = 0) and hold trivially, the other {len(live)} hold with δ_emp/δ* ≥ "
             f"**{margin.min():.2f}** (the smallest: {worst.manifold}, {worst.decoder}, {worst.snr_db:g} dB, "
             f"p = {worst.p:g}).",
             f"- Paper's δ* (C = Vol/ω_d): holds on **{int(learned.paper_bound_holds.sum())}/{len(learned)}**; "
             f"the {int((~learned.paper_bound_holds.astype(bool)).sum())} failures by cause: "
             + ", ".join(f"{k}: {v}" for k, v in causes.items()) + "."]
    if len(ctrl):
        lines.append(f"- Negative control (exact MAP, 16 points, 15 dB): δ_emp = {ctrl.delta_emp.max():.3f} "
                     f"while the paper's δ* = {ctrl.delta_star_paper.iloc[0]:.3f} (violated on "
                     f"{int((~ctrl.paper_bound_holds.astype(bool)).sum())}/{len(ctrl)} rows); rigorous bound holds "
                     f"on {int(ctrl.bound_holds.sum())}/{len(ctrl)}.")
    return lines


def _table(frame: pd.DataFrame) -> list[str]:
    """A DataFrame as markdown table lines (index reset into columns)."""
    frame = frame.reset_index()
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return [head, "|" + "---|" * len(frame.columns), *rows]


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if not np.isfinite(v) else f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:.2e}"


def on_manifold(df: pd.DataFrame) -> pd.DataFrame:
    """Median distance of x̂ to the support per (source, SNR) and method, with the exact MMSE estimate's
    (the posterior mean of the first method's encoder) and which method is closest."""
    d = df[(df.decoder != "map") & np.isclose(df.p, P_SHOWN)]
    table = d.pivot_table(index=["manifold", "snr_db"], columns="decoder", values="dist_to_manifold_median")
    closest = table.idxmin(axis=1)
    if "dist_to_manifold_median_mmse" in d:
        table["exact MMSE (" + d.decoder.iloc[0] + " encoder)"] = d[d.decoder == d.decoder.iloc[0]].set_index(
            ["manifold", "snr_db"]).dist_to_manifold_median_mmse
    out = table.map(_fmt)
    out["closest"] = closest
    return out


def reference_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Per (source, SNR) and method: MSE over the optimum of its kind (``mse_gap``: MMSE for an MSE
    decoder, 2·MMSE for a sampler) with the MMSE of its encoder, δ_emp at p = 0.1 against the exact
    sampler's, and the sliced-W₂ distance of its samples to exact posterior samples (floor: two exact
    sets of the same size)."""
    d = df[(df.decoder != "map") & np.isclose(df.p, P_SHOWN)].dropna(subset=["mmse"])
    cells = {}
    for (name, snr), g in d.groupby(["manifold", "snr_db"]):
        row = {}
        for _, r in g.iterrows():
            kind = "MMSE" if r.mse_gap_reference == "mmse" else "2·MMSE"
            row[f"{r.decoder}: MSE/{kind} (MMSE)"] = f"{_fmt(r.mse_gap)} ({_fmt(r.mmse)})"
            row[f"{r.decoder}: δ vs sampler's"] = f"{r.delta_emp:.3f} / {r.delta_emp_sampler:.3f}"
            row[f"{r.decoder}: SW₂ (floor)"] = f"{r.sw_to_posterior:.3f} ({r.sw_floor:.3f})"
        cells[(name, snr)] = row
    table = pd.DataFrame.from_dict(cells, orient="index")
    table.index.names = ["manifold", "snr_db"]
    return table


def report(results: str | Path) -> str:
    """The README's statements about a toy run, as markdown, every number from ``results.csv``:
    the bound verdicts (vacuous rows apart, the smallest non-vacuous margin, the paper's failures by
    cause), the on-manifold comparison at every SNR and the gaps to the Bayes-optimal receivers."""
    df = _read(Path(results))
    lines = [f"Toy run `{results}` ({len(df)} rows of results.csv; P_e = {P_SHOWN} in the tables).", "",
             *_bound_lines(df), "", "Median distance of x̂ to the data support:", "", *_table(on_manifold(df))]
    if "mmse" in df:
        gaps = reference_gaps(df)
        ess = df.snis_ess_median.dropna()
        lines += ["", "Gaps to the Bayes-optimal receivers of each trained encoder (exact over the codebook; "
                  f"SNIS on the spheres on {int(df.ref_n.dropna().min())} ŷ per SNR, median effective sample size "
                  f"{ess.min():.0f}–{ess.max():.0f}); δ at p = {P_SHOWN}: the receiver's / the exact sampler's; "
                  "— where the MMSE underflows to 0:", "", *_table(gaps)]
    return "\n".join(lines) + "\n"


#: the columns of results.csv that every figure and the report read
COLUMNS = ["manifold", "decoder", "snr_db", "p"]


def check(args) -> argparse.Namespace:
    """--results holds experiments/toy_manifold.py's results.csv, and is writable unless only --markdown is
    printed (raises UsageError)."""
    checks.results_folder("--results", args.results, ["results.csv"], {"results.csv": COLUMNS})
    if not args.markdown:
        checks.writable_folder("--results", args.results)
    return args


def _work(args) -> int:
    if args.markdown:
        print(report(args.results), end="")
    else:
        draw(args.results)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Check the inputs (``paper_figures/toy_manifold: …``, exit 2, nothing written), then draw or print."""
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results/toy_manifold", help="folder with results.csv")
    p.add_argument("--markdown", action="store_true", help="print the README statements instead of drawing")
    return checks.run_main("paper_figures/toy_manifold.py", lambda: check(p.parse_args(argv)), _work)


if __name__ == "__main__":
    sys.exit(main())
