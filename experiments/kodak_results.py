"""The files a Kodak run writes from its evaluation (experiments/kodak.py): metrics.csv, summary.csv,
sets.csv, config.json, timings.json and table.md, each written atomically."""
from __future__ import annotations

import dataclasses
import json

import torch

from jscgc.io import atomic_save, atomic_write_json, atomic_write_text
from jscgc.metrics import METRICS

__all__ = ["write_results", "tables", "set_markdown"]


def tables(df, sets, reference: str = "mambajscc") -> str:
    """Markdown: mean ± s.e. over images per receiver and SNR, paired differences against ``reference``
    (per image, samples averaged first) when it was run, and the set measures with their intervals."""
    from jscgc import paired

    text = "## Mean ± s.e. over images\n\n" + paired.to_markdown(paired.summary(df)) + "\n"
    if reference in set(df["method"]):
        diffs = paired.paired_differences(df, reference)
        text += f"\n## Paired differences against {reference} (± s.e. over images)\n\n" + paired.to_markdown(diffs) + "\n"
    if len(sets):
        text += "\n## Set measures (95 % paired bootstrap intervals over images, sets.csv)\n\n" + set_markdown(sets) + "\n"
    return text


def set_markdown(sets) -> str:
    """sets.csv as markdown: value [lo, hi] per receiver and SNR, a column per measure; with a reference,
    its paired difference [lo, hi], marked * where the interval excludes 0."""
    def cell(r, col):
        if f"{col}_lo" not in r or r.isna()[f"{col}_lo"]:
            return f"{r[col]:.3f}"
        star = "*" if (r[f"{col}_lo"] > 0 or r[f"{col}_hi"] < 0) and col != "value" else ""
        return f"{r[col]:.3f} [{r[f'{col}_lo']:.3f}, {r[f'{col}_hi']:.3f}]{star}"

    frame = sets.rename(columns={"lo": "value_lo", "hi": "value_hi"})
    diffs = [c for c in frame.columns if c.startswith("diff") and not c.endswith(("_lo", "_hi", "_excludes_zero"))]
    lines = ["| measure | SNR (dB) | receiver | value [95 % interval] | " + " | ".join(f"{d} [interval]" for d in diffs) + " |",
             "|---|---|---|---|" + "---|" * len(diffs)]
    for _, r in frame.iterrows():
        lines.append(f"| {r.metric} | {r.snr_db:g} | {r.method} | {cell(r, 'value')} | "
                     + " | ".join(cell(r, d) for d in diffs) + " |")
    return "\n".join(lines)


def _summary(df, sets, columns):
    """Means per receiver and SNR (rows in a fixed order), with the set measures' values from ``sets``."""
    summary = df.groupby(["method", "snr_db"], sort=False)[columns[4:]].mean().reset_index()
    if len(sets):
        wide = sets.pivot_table(index=["method", "snr_db"], columns="metric", values="value", sort=False).reset_index()
        summary = summary.merge(wide, on=["method", "snr_db"], how="left")
    return summary.reindex(columns=["method", "snr_db"] + list(METRICS) + ["diversity"])


def write_results(setup, rows, sets, info, seconds) -> None:
    """metrics.csv, summary.csv, sets.csv (the table of :func:`jscgc.evaluation.set_intervals`), config.json,
    table.md; wall times apart in timings.json (the only file that differs between identical runs)."""
    import pandas as pd

    columns = ["method", "snr_db", "image", "sample"] + [m for m in METRICS if METRICS[m].kind == "image"] + ["diversity"]
    df = pd.DataFrame(rows).reindex(columns=columns)
    summary = _summary(df, sets, columns)
    atomic_save(setup.out / "metrics.csv", lambda f: df.to_csv(f, index=False))
    atomic_save(setup.out / "summary.csv", lambda f: summary.to_csv(f, index=False))
    atomic_save(setup.out / "sets.csv", lambda f: sets.to_csv(f, index=False))
    config = {"preset": setup.preset.to_dict(), "args": setup.config.recorded(), "methods": info,
              "train_config": dataclasses.asdict(setup.train_cfg), "unavailable_metrics": setup.missing,
              "metrics": {m: METRICS[m].describe() for m in METRICS},
              "images": [n for n, _ in setup.images], "torch": torch.__version__,
              "dials": {f"{m} [{d.label()}]": d.as_dict() for m, ds in setup.config.dials.items() for d in ds},
              "device": torch.cuda.get_device_name() if setup.device.type == "cuda" else "cpu",
              "source": setup.source}           # taken before the run: the code that trained and evaluated
    atomic_write_json(setup.out / "config.json", json.loads(json.dumps(config, default=str)))
    atomic_write_json(setup.out / "timings.json", seconds)
    atomic_write_text(setup.out / "table.md", tables(df, sets))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string(index=False))
