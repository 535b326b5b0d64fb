"""Per-image metrics against a reference receiver: paired differences and the plain mean ± s.e. table.

Input: a frame shaped like ``metrics.csv`` of ``experiments/kodak.py``: one row per (method, snr_db,
image, sample) with a numeric column per metric. Every statistic first averages a method's samples of an
image (a stochastic receiver may draw several, a deterministic one draws one), so the unit is the image:

* :func:`summary`: per method, SNR and metric, the mean over images and its standard error;
* :func:`paired_differences`: per method ≠ reference, SNR and metric, the mean over images of
  (method − reference) on the same image and its standard error. The scene-to-scene spread that both
  receivers share cancels, so a difference can be clear while the two plain error bars overlap;
* :func:`to_markdown`: either table as a markdown table, one row per (method, SNR), one column per metric.

Standard errors are std / √n with ddof = 1 over the n images (NaN for n = 1). Metric columns that are
absent or entirely NaN are skipped (listed in the result's ``attrs["skipped"]``); a NaN value drops that
image (from the pair, for differences) and shows in n. ±inf (PSNR of an exact copy) is kept, so a mean
can be inf and its s.e. NaN; inf − inf is NaN and drops that pair.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["KEYS", "Z95", "POSTERIOR_SAMPLER_DB", "metric_columns", "per_image", "mean_se", "summary",
           "paired_differences", "to_markdown"]

#: the columns that identify a row of metrics.csv; every other numeric column is a metric
KEYS = ("method", "snr_db", "image", "sample")
#: the normal quantile of a two-sided 95 % interval (mean ± Z95 · s.e.)
Z95 = 1.96
#: dB: the PSNR an exact posterior sampler loses to the MMSE receiver, whose MSE it doubles (Blau & Michaeli 2018)
POSTERIOR_SAMPLER_DB = 10 * np.log10(2)


def metric_columns(frame: pd.DataFrame, metrics: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(usable, skipped) metric names. ``metrics``: the names wanted (None: every numeric column not in
    :data:`KEYS`, in frame order). Usable: present, numeric and not all NaN; the rest is skipped.
    ValueError if a key column (method, snr_db, image) is missing; ``sample`` is optional."""
    missing = [c for c in ("method", "snr_db", "image") if c not in frame.columns]
    if missing:
        raise ValueError(f"paired: the frame lacks the key column(s) {missing}; it has {list(frame.columns)}")
    wanted = list(metrics) if metrics is not None else [
        c for c in frame.columns if c not in KEYS and pd.api.types.is_numeric_dtype(frame[c])]
    usable = [c for c in wanted if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])
              and frame[c].notna().any()]
    return usable, [c for c in wanted if c not in usable]


def per_image(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean over samples of every (method, snr_db, image): columns method, snr_db, image, *metrics; one row
    per image, methods in order of first appearance, SNRs and images sorted. NaN samples are skipped
    (an image whose samples are all NaN stays NaN)."""
    return (frame.groupby(["method", "snr_db", "image"], sort=False)[metrics].mean().reset_index()
            .sort_values(["snr_db", "image"], kind="stable")
            .sort_values("method", key=_appearance(frame["method"]), kind="stable").reset_index(drop=True))


def _appearance(methods: pd.Series):
    """A sort key putting methods in order of first appearance in ``methods``."""
    order = {m: i for i, m in enumerate(pd.unique(methods))}
    return lambda col: col.map(order)


def mean_se(values: pd.Series) -> tuple[float, float, int]:
    """(mean, std/√n with ddof = 1, n) of the non-NaN values; se NaN for n < 2."""
    v = values.dropna().to_numpy(dtype=np.float64)
    n = len(v)
    se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return (float(v.mean()) if n else float("nan")), se, n


def summary(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """The plain table: columns method, snr_db, metric, mean, se, n (n: images with a value), one row per
    method, SNR and usable metric (see :func:`metric_columns`); rows without any value are left out."""
    usable, skipped = metric_columns(frame, metrics)
    images = per_image(frame, usable)
    rows = [{"method": method, "snr_db": snr, "metric": m, **dict(zip(("mean", "se", "n"), mean_se(g[m])))}
            for (method, snr), g in images.groupby(["method", "snr_db"], sort=False) for m in usable]
    out = pd.DataFrame(rows, columns=["method", "snr_db", "metric", "mean", "se", "n"])
    out = out[out["n"] > 0].reset_index(drop=True)
    out.attrs["skipped"] = skipped
    return out


def _check_images(images: pd.DataFrame, reference: str) -> None:
    """ValueError unless the reference is present and every method has, at every SNR it was run at, the
    same set of images as the reference."""
    methods = list(pd.unique(images["method"]))
    if reference not in methods:
        raise ValueError(f"paired: reference method {reference!r} is not in the frame; methods: {methods}")
    sets = images.groupby(["method", "snr_db"])["image"].agg(frozenset)
    problems = []
    for (method, snr), names in sets.items():
        ref = sets.get((reference, snr), frozenset())
        if method != reference and names != ref:
            problems.append(f"{method!r} at {snr} dB: only in it {sorted(names - ref)[:5]}, "
                            f"only in {reference!r} {sorted(ref - names)[:5]}")
    if problems:
        raise ValueError("paired: images differ from the reference's; " + "; ".join(problems))


def paired_differences(frame: pd.DataFrame, reference: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """Paired differences against ``reference``: columns method, reference, snr_db, metric, diff, se, n;
    diff = mean over images of (method − reference) of the per-image (sample-averaged) values, se its
    standard error std/√n (ddof = 1), n the images where both have a value. One row per method ≠
    reference, SNR and usable metric with n > 0.

    ValueError if ``reference`` is absent or, at some SNR, a method's images are not the reference's."""
    usable, skipped = metric_columns(frame, metrics)
    images = per_image(frame, usable)
    _check_images(images, reference)
    ref = {snr: g.set_index("image")[usable] for snr, g in images[images["method"] == reference].groupby("snr_db")}
    rows = []
    for (method, snr), g in images[images["method"] != reference].groupby(["method", "snr_db"], sort=False):
        diff = g.set_index("image")[usable] - ref[snr]                  # aligned on the image name
        rows += [{"method": method, "reference": reference, "snr_db": snr, "metric": m,
                  **dict(zip(("diff", "se", "n"), mean_se(diff[m])))} for m in usable]
    out = pd.DataFrame(rows, columns=["method", "reference", "snr_db", "metric", "diff", "se", "n"])
    out = out[out["n"] > 0].reset_index(drop=True)
    out.attrs["skipped"] = skipped
    return out


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A :func:`summary` or :func:`paired_differences` frame as a markdown table: one row per (method,
    snr_db) in the frame's order, a column n (the images; "a–b" where metrics differ), then one column per
    metric with "value ± se" (value: mean, or diff written with its sign), "–" where there is none."""
    value = "diff" if "diff" in table.columns else "mean"
    metrics = list(pd.unique(table["metric"]))
    fmt = (lambda v: f"{v:+.{digits}f}") if value == "diff" else (lambda v: f"{v:.{digits}f}")  # noqa: E731
    head = ["method", "SNR (dB)", "n"] + [f"Δ {m}" if value == "diff" else m for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (method, snr), g in table.groupby(["method", "snr_db"], sort=False):
        cells = dict(zip(g["metric"], zip(g[value], g["se"])))
        n = sorted(set(g["n"]))
        row = [str(method), f"{snr:g}", str(n[0]) if len(n) == 1 else f"{n[0]}–{n[-1]}"]
        row += [f"{fmt(cells[m][0])} ± {cells[m][1]:.{digits}f}" if m in cells else "–" for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
