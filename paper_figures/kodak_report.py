"""The Kodak benchmark report: tables, seed spread, budgets and the Remark 2 check, as markdown, from the
folders experiments/kodak.py wrote; copies the CSVs, config and figures next to it.

    python paper_figures/kodak_report.py --results results/kodak_small \
        --seed-runs results/kodak_small_seed1 --out docs/kodak_small

Writes ``<out>/report.md`` (generated: include it in a hand-written page, or read it alone), ``<out>/goal.csv``
when every run has jscgc and mambajscc (issue 28's goal, :mod:`paper_figures.kodak_goal`), and copies
``metrics.csv``, ``summary.csv``, ``config.json``, ``timings.json`` and the figures of each run into ``<out>``
(the seed runs under ``<out>/seed<k>/``). Every number in the report is computed here from those files.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from jscgc import paired
from paper_figures.kodak_goal import REFERENCE, SHIPPED, goal_markdown, goal_rows
from jscgc import checks
from jscgc.io import DamagedFile, atomic_write_text, read_json

TABLE_METRICS = ["psnr", "ms_ssim", "psnr_lp16", "psnr_lp8", "lpips_alex", "lpips_vgg", "dists", "detail_match",
                 "hf_ratio", "colour_dist"]
SET_METRICS = ["patch_fd", "latent_fd"]
COPIED = ["metrics.csv", "summary.csv", "sets.csv", "config.json", "timings.json", "table.md"]
MSE_METHODS = ["mambajscc", "cjscc", "necst"]
HEADLINE = [("lpips_alex", "LPIPS-alex"), ("dists", "DISTS"), ("psnr", "PSNR")]
HEADLINE_SNRS = (0.0, 10.0)
RIVALS = ["mambajscc", "diffjscc"]       # the MSE decoder of the same network, and the diffusion receiver


def _load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    missing = [f for f in ("metrics.csv", "summary.csv", "config.json", "timings.json") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"kodak_report: {folder} lacks {missing}; run experiments/kodak.py there first")
    return (pd.read_csv(folder / "metrics.csv"), pd.read_csv(folder / "summary.csv"),
            json.loads((folder / "config.json").read_text()), json.loads((folder / "timings.json").read_text()))


def budgets(config: dict, timings: dict) -> str:
    """Per method: stages with steps, examples seen, trainable parameters, training and evaluation wall time
    (``loaded (0)`` where the run found the training finished, ``… (from step k)`` where it resumed)."""
    lines = ["| method | stages (steps) | examples seen | trainable parameters per stage | trained in all (union) "
             "| frozen at build | skipped steps | train s | eval s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, info in config["methods"].items():
        counts = info.get("trainable_by_stage") or _trainable_by_stage(name, config["preset"]["name"])
        stages = ", ".join(f"{s['name']} {s['steps']}" for s in info.get("stages", []))
        union = f"{info['trainable_union']:,}" if "trainable_union" in info else "not recorded"
        frozen = ", ".join(f"{k} {v:,}" for k, v in info.get("frozen_at_build", {}).items()) or (
            "none" if "frozen_at_build" in info else "not recorded")
        lines.append(f"| {name} | {stages} | {info.get('examples', '–')} | "
                     f"{', '.join(f'{k} {v:,}' for k, v in counts.items())} | {union} | {frozen} | "
                     f"{len(info.get('skipped_steps', []))} | "
                     f"{_train_seconds(info, timings.get(f'train_{name}', float('nan')))} | "
                     f"{timings.get(f'eval_{name}', float('nan')):.0f} |")
    return "\n".join(lines) + "\n"


def _train_seconds(info: dict, seconds: float) -> str:
    """The training time of this run; a training loaded finished, or resumed, says so (its time is elsewhere)."""
    resumed = info.get("resumed_from_step", 0)
    if "loaded" in info or (resumed and resumed >= info.get("steps", resumed)):
        return f"loaded ({seconds:.0f})"
    return f"{seconds:.0f}" + (f" (from step {resumed})" if resumed else "")


def _trainable_by_stage(method: str, preset: str) -> dict:
    """For a config.json written before kodak.py recorded it: the counts, from the method built afresh."""
    from jscgc.latents import load_extractor
    from jscgc.methods import build_method
    from jscgc.presets import get_preset
    from jscgc.plan import trainable_counts

    return trainable_counts(build_method(method, get_preset(preset), load_extractor("taef2")))


def set_table(summary: pd.DataFrame, sets: pd.DataFrame | None) -> str:
    """The set metrics: with the run's sets.csv, each value with its 95 % paired bootstrap interval over
    images and the paired differences (experiments/kodak_results.py: set_markdown); without (an older run), one
    value per receiver and SNR and no spread, said so."""
    if sets is not None:
        from experiments.kodak_results import set_markdown

        return set_markdown(sets) + "\n\n(* : the paired interval excludes 0.)\n"
    cols = [m for m in SET_METRICS if m in summary and summary[m].notna().any()]
    wide = summary.pivot_table(index="method", columns="snr_db", values=cols, sort=False)
    lines = ["| receiver | " + " | ".join(f"{m} @ {s:g} dB" for m, s in wide.columns) + " |",
             "|---|" + "---|" * len(wide.columns)]
    for method, row in wide.iterrows():
        lines.append(f"| {method} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines) + "\n\nNo intervals: this run predates sets.csv; differences here are not established.\n"


def seed_spread(runs: list[tuple[int, pd.DataFrame]], metrics: list[str]) -> str:
    """Per seed, method and SNR: the mean over images; then the jscgc − mambajscc paired difference per seed."""
    frames = []
    for seed, df in runs:
        means = paired.per_image(df, metrics).groupby(["method", "snr_db"], sort=False)[metrics].mean().reset_index()
        frames.append(means.assign(seed=seed))
    both = pd.concat(frames)
    both = both[both.method.isin(["jscgc", "mambajscc"])]
    lines = ["| method | SNR (dB) | " + " | ".join(f"{m} (seed {s})" for m in metrics for s, _ in runs) + " |",
             "|---|---|" + "---|" * (len(metrics) * len(runs))]
    for (method, snr), g in both.groupby(["method", "snr_db"], sort=False):
        g = g.set_index("seed")
        cells = " | ".join(f"{g.loc[s, m]:.3f}" for m in metrics for s, _ in runs)
        lines.append(f"| {method} | {snr:g} | {cells} |")
    text = "\n".join(lines) + "\n\nPaired jscgc − mambajscc per seed (mean ± s.e. over images):\n\n"
    for seed, df in runs:
        diffs = paired.paired_differences(df[df.method.isin(["jscgc", "mambajscc"])], "mambajscc", metrics)
        text += f"Seed {seed}:\n\n" + paired.to_markdown(diffs) + "\n"
    return text


def headline(runs: list[tuple[int, pd.DataFrame]]) -> str:
    """The README's table: per receiver, the mean over images of LPIPS-alex, DISTS and PSNR at 0 and 10 dB,
    one value per seed written ``seed a / seed b`` (receivers in the first run's order)."""
    names = [m for m, _ in HEADLINE]
    means = [(seed, paired.per_image(df.reindex(columns=[*df.columns, *(m for m in names if m not in df)]), names)
              .groupby(["method", "snr_db"])[names].mean()) for seed, df in runs]   # an absent metric: nan
    cols = [(m, label, snr) for m, label in HEADLINE for snr in HEADLINE_SNRS]
    lines = ["| receiver | " + " | ".join(f"{label} @ {snr:g} dB" for _, label, snr in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for method in dict.fromkeys(runs[0][1].method):
        cells = []
        for metric, _, snr in cols:
            values = [t.loc[(method, snr), metric] if (method, snr) in t.index else float("nan") for _, t in means]
            cells.append(" / ".join(f"{v:.2f}" if metric == "psnr" else f"{v:.3f}" for v in values))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_sections(metrics: pd.DataFrame, names: list[str], title: str) -> list[str]:
    """For each of :data:`RIVALS` present in one run's metrics.csv: a heading (``title`` + " differences
    against <rival>") and the table of every other receiver minus it, paired over images."""
    names = [m for m in names if m in metrics]
    return [part for rival in RIVALS if rival in set(metrics.method) for part in (
        f"{title} differences against {rival} (± s.e. over images)\n",
        paired.to_markdown(paired.paired_differences(metrics, rival, names)))]


def remark2(summary: pd.DataFrame) -> str:
    """HF ratio and low-pass PSNR against SNR for the MSE receivers and JSCGC's two receivers."""
    keep = [m for m in ["jscgc", "jscgc (sample)", "jscgc-paper", "diffjscc"] + MSE_METHODS if m in set(summary.method)]
    wide = summary[summary.method.isin(keep)].pivot_table(index="method", columns="snr_db",
                                                          values=["hf_ratio", "psnr_lp16"], sort=False)
    lines = ["| receiver | " + " | ".join(f"{m} @ {s:g} dB" for m, s in wide.columns) + " |",
             "|---|" + "---|" * len(wide.columns)]
    for method in keep:
        lines.append(f"| {method} | " + " | ".join(f"{v:.3f}" for v in wide.loc[method]) + " |")
    return "\n".join(lines) + "\n"


def _copy(src: Path, dst: Path, figures: bool = True) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in src.glob("fig*.png")] + [p.name for p in src.glob("fig*.pdf")] if figures else []
    for name in COPIED + names:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def report(results: Path, seed_runs: list[Path], out: Path) -> str:
    metrics, summary, config, timings = _load(results)
    runs = [(config["args"]["seed"], metrics)]
    for folder in seed_runs:
        m, _, c, _ = _load(folder)
        runs.append((c["args"]["seed"], m))
    table_metrics = [m for m in TABLE_METRICS if m in metrics and metrics[m].notna().any()]
    text = [f"Generated by `python paper_figures/kodak_report.py` from `{results}`"
            + (f" and {', '.join(f'`{s}`' for s in seed_runs)}" if seed_runs else "") + ".\n",
            f"Preset `{config['preset']['name']}`, {len(config['images'])} Kodak images, SNRs "
            f"{', '.join(f'{s:g}' for s in sorted(summary.snr_db.unique()))} dB, device {config['device']}, "
            f"torch {config['torch']}; wall time {timings['wall']:.0f} s.\n",
            "## Headline: mean over images at 0 and 10 dB, " + " / ".join(f"seed {s}" for s, _ in runs) + "\n",
            headline(runs),
            "## Budgets\n", budgets(config, timings),
            "## Mean ± s.e. over images\n", paired.to_markdown(paired.summary(metrics, table_metrics)),
            "## Distribution measures (set measures over the images)\n",
            set_table(summary, pd.read_csv(results / "sets.csv") if (results / "sets.csv").is_file() else None),
            *paired_sections(metrics, table_metrics, "## Paired"),
            "## Remark 2 on images: HF ratio and low-pass PSNR ÷16 against SNR\n", remark2(summary)]
    if len(runs) > 1:
        text += ["## Training seeds\n", seed_spread(runs, ["psnr", "psnr_lp16", "hf_ratio"])]
    for seed, df in runs[1:]:                                  # the other seeds' paired tables, as the first's
        text += paired_sections(df, table_metrics, f"## Seed {seed}: paired")
    if all({SHIPPED, REFERENCE} <= set(df.method) for _, df in runs):
        goal = pd.DataFrame([row for seed, df in runs for row in goal_rows(seed, df)])
        atomic_write_text(out / "goal.csv", goal.to_csv(index=False))
        text += ["## The goal: lowest LPIPS-alex and DISTS at a PSNR cost within 3.01 dB (goal.csv)\n",
                 goal_markdown(goal)]
    else:
        (out / "goal.csv").unlink(missing_ok=True)             # a goal.csv of an earlier run would be stale
    _copy(results, out)
    for folder, (seed, _) in zip(seed_runs, runs[1:]):
        _copy(folder, out / f"seed{seed}", figures=False)          # the tables only
    body = "\n".join(text)
    atomic_write_text(out / "report.md", body)
    return body


def _check_run(flag: str, folder: str) -> Path:
    """A folder of experiments/kodak.py with the files the report reads, its JSON readable (UsageError)."""
    need = {"metrics.csv": ["method", "snr_db", "image"], "summary.csv": ["method", "snr_db"]}
    checks.results_folder(flag, folder, [*need, "config.json", "timings.json"], need)
    try:
        read_json(Path(folder) / "config.json", keys=("args", "methods", "preset", "images", "device", "torch"))
        read_json(Path(folder) / "timings.json", keys=("wall",))
    except DamagedFile as err:
        raise checks.UsageError(f"{flag}: {err}") from None
    return Path(folder)


def check(a) -> tuple[Path, list[Path], Path]:
    """--results and every --seed-runs folder hold a kodak.py run; --out can be written (raises UsageError)."""
    runs = [_check_run("--results", a.results)] + [_check_run("--seed-runs", s) for s in a.seed_runs]
    return runs[0], runs[1:], checks.writable_folder("--out", a.out)


def main(argv: list[str] | None = None) -> int:
    """Check every input (``paper_figures/kodak_report: …``, exit 2, nothing written), then write the report."""
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results/kodak_small")
    p.add_argument("--seed-runs", nargs="*", default=[], help="runs of kodak.py with other --seed")
    p.add_argument("--out", default="docs/kodak_small")
    return checks.run_main("paper_figures/kodak_report.py", lambda: check(p.parse_args(argv)),
                           lambda checked: print(report(*checked)) or 0)


if __name__ == "__main__":
    sys.exit(main())
