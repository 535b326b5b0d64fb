"""The rule of docs/val_study.md applied to the finished variants of a validation study (val_study.py --report).

Every number is a per-image value averaged over the SNRs (and samples) first, then over images:

* PSNR cost of a receiver = PSNR(its reference) − PSNR(receiver) per image, the reference being the MSE decoder
  trained alike (mambajscc; mambajscc-crops for a crop schedule: Variant.reference); it passes when the mean + 1.96 s.e.
  of these paired differences is at most :data:`BOUND` (3.01 dB, the cost of an exact posterior sampler).
* Among passing candidates (views of "screen" variants other than μ(ŷ)), the lowest mean LPIPS-alex wins.
  Two receivers whose paired difference has a 95 % interval (mean ± 1.96 s.e.) containing 0 are tied, and
  the tie-breaks decide in order: DISTS, LPIPS-vgg (each with the same tie test), then the lower mean PSNR
  cost. The ranking repeats the choice on what is left, so the second row is the runner-up.
* No passing candidate: the lowest mean PSNR cost among candidates whose LPIPS-alex is below mambajscc's.
* Confirmation: with seed 1 run for the winner and the runner-up, the winner stays when it passes on both
  seeds and its paired LPIPS-alex difference to the runner-up over both seeds' images does not lie above 0.

Writes ``ranking.csv`` (a row per seed and receiver), ``per_snr.csv`` (mean ± s.e. per seed, receiver, SNR
and measure), ``verdict.md``, ``metrics.csv`` (every per-image row, with seed and variant) and ``runs.csv``
(a row per seed and variant: budget, parameters, wall times, commit) under the study's folder, and copies
them to ``--to``.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from experiments.val_study_variants import VARIANTS
from jscgc.io import atomic_save, atomic_write_text
from jscgc.paired import POSTERIOR_SAMPLER_DB, Z95, mean_se

__all__ = ["BOUND", "REFERENCE", "load", "restore", "per_image", "rank", "choose", "confirm", "versus", "report"]

BOUND = POSTERIOR_SAMPLER_DB        # 3.01 dB: an exact posterior sampler has twice the MMSE
REFERENCE = "mambajscc"
RULE = ("lpips_alex", "dists", "lpips_vgg")
BESIDE = ("psnr", "psnr_lp16", "detail_match", "hf_ratio", "colour_dist")


def load(out: Path) -> pd.DataFrame:
    """Every finished variant's metrics.csv under ``out``/seed*/ with columns seed, variant, role, receiver."""
    frames = []
    for info_path in sorted(out.glob("seed*/*/info.json")):
        info = json.loads(info_path.read_text())
        frame = pd.read_csv(info_path.parent / "metrics.csv")
        frames.append(frame.rename(columns={"method": "receiver"}).assign(
            seed=info["seed"], variant=info["variant"], role=info["role"]))
    if not frames:
        raise FileNotFoundError(f"{out}: no finished variant (seed*/<variant>/info.json)")
    return pd.concat(frames, ignore_index=True)


def restore(committed: Path, out: Path) -> list[str]:
    """Put the variants of an earlier ``--report --to committed`` (its metrics.csv and runs.csv) under ``out``
    as finished ``seed<S>/<variant>/`` folders, so that new variants are ranked beside them once the study's
    own folder is gone. A variant already finished under ``out`` is kept as it is. The restored info.json has
    the runs.csv row (budget, parameters, wall times, dial, commit) and ``restored_from``; no checkpoints and
    no sets.csv come back. Returns the restored ``seed<S>/<variant>`` names."""
    metrics, table = pd.read_csv(committed / "metrics.csv"), pd.read_csv(committed / "runs.csv")
    done = []
    for row in json.loads(table.to_json(orient="records")):
        where = out / f"seed{row['seed']}" / row["variant"]
        if (where / "info.json").is_file():
            continue
        rows = metrics[(metrics["seed"] == row["seed"]) & (metrics["variant"] == row["variant"])]
        if rows.empty:
            raise FileNotFoundError(f"{committed}/metrics.csv has no rows of seed {row['seed']} {row['variant']}")
        rows = rows.drop(columns=["seed", "variant", "role"]).rename(columns={"receiver": "method"})
        atomic_save(where / "metrics.csv", lambda f: rows.to_csv(f, index=False))
        info = {k: v for k, v in row.items() if k not in ("dial", "commit")}
        atomic_write_text(where / "info.json", json.dumps({**info, "dial": json.loads(row["dial"]), "source": {
            "commit": row["commit"]}, "restored_from": str(committed)}, indent=1))
        done.append(f"seed{row['seed']}/{row['variant']}")
    return done


def per_image(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(image × receiver) means over SNRs and samples of one seed's ``metric``."""
    return frame.groupby(["image", "receiver"])[metric].mean().unstack("receiver")


def _paired(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Mean and standard error of the paired differences a − b over the images both have."""
    return mean_se(a - b)[:2]


def _tied(a: pd.Series, b: pd.Series) -> bool:
    mean, se = _paired(a, b)
    return not (abs(mean) > Z95 * se)          # an interval that contains 0 (or none: one image) is a tie


def _best(names: list[str], tables: dict, cost: pd.Series) -> str:
    """The choice among ``names``: lowest LPIPS-alex; ties go to DISTS, then LPIPS-vgg, then PSNR cost."""
    pool = list(names)
    for metric in RULE:
        means = tables[metric][pool].mean()
        lead = means.idxmin()
        pool = [n for n in pool if n == lead or _tied(tables[metric][n], tables[metric][lead])]
        if len(pool) == 1:
            return pool[0]
    return min(pool, key=lambda n: cost[n])


def _references(frame: pd.DataFrame) -> pd.Series:
    """Each receiver's PSNR reference: its variant's (Variant.reference), or :data:`REFERENCE`."""
    receivers = frame.groupby("receiver")
    if "variant" not in frame.columns:
        return pd.Series(REFERENCE, index=list(receivers.groups))
    return receivers["variant"].first().map(lambda v: VARIANTS[v].reference if v in VARIANTS else REFERENCE)


def rank(frame: pd.DataFrame) -> pd.DataFrame:
    """One seed's table: a row per receiver with the rule's measures, its PSNR cost and whether it passes,
    and ``rank`` (1 = the winner) among the passing candidates."""
    metrics = [m for m in RULE + BESIDE if m in frame.columns]
    tables = {m: per_image(frame, m) for m in metrics}
    roles = frame.groupby("receiver")["role"].first()
    refs = _references(frame)
    psnr = tables["psnr"]
    cost_img = pd.DataFrame({r: psnr[refs[r]] - psnr[r] if refs[r] in psnr else float("nan") for r in psnr})
    rows = []
    for r in psnr.columns:
        mean, se = _paired(psnr[refs[r]], psnr[r]) if refs[r] in psnr else (float("nan"), float("nan"))
        candidate = roles[r] == "screen" and not r.endswith("μ(ŷ)")
        rows.append({"receiver": r, "role": roles[r], "candidate": candidate, "n_images": int(cost_img[r].count()),
                     **{m: float(tables[m][r].mean()) for m in metrics},
                     **{f"{m}_se": float(tables[m][r].std(ddof=1) / math.sqrt(tables[m][r].count())) for m in RULE},
                     "reference": refs[r], "psnr_cost": mean, "psnr_cost_se": se, "psnr_cost_upper": mean + Z95 * se,
                     "passes": bool(candidate and mean + Z95 * se <= BOUND)})
    table = pd.DataFrame(rows).set_index("receiver")
    left, order = list(table.index[table["passes"]]), []
    while left:
        order.append(_best(left, tables, table["psnr_cost"]))
        left.remove(order[-1])
    table["rank"] = pd.Series({n: k + 1 for k, n in enumerate(order)}, dtype="Int64")
    return table.reset_index()


def choose(table: pd.DataFrame) -> tuple[str | None, str | None, str]:
    """(winner, runner-up, which part of the rule chose them) from one seed's :func:`rank` table."""
    ranked = table.dropna(subset=["rank"]).sort_values("rank")["receiver"].tolist()
    if ranked:
        return ranked[0], ranked[1] if len(ranked) > 1 else None, "ranking among passing receivers"
    lpips = table.set_index("receiver")["lpips_alex"]
    ref = table["reference"].map(lambda r: lpips.get(r, float("nan"))) if "reference" in table else lpips[REFERENCE]
    below = table[table["candidate"] & (table["lpips_alex"] < ref)].sort_values("psnr_cost")
    names = below["receiver"].tolist()
    return (names[0] if names else None, names[1] if len(names) > 1 else None,
            "no receiver passed: lowest PSNR cost among those below MambaJSCC's LPIPS-alex")


def _stays(frame: pd.DataFrame, candidate: str, other: str) -> tuple[bool, str]:
    """Rule step 3 for ``candidate`` against ``other`` over seeds 0 and 1: (stays, one sentence)."""
    tables = {s: rank(frame[frame["seed"] == s]).set_index("receiver") for s in (0, 1)}
    passes = all(tables[s].loc[candidate, "passes"] for s in (0, 1))
    diffs = pd.concat([per_image(frame[frame["seed"] == s], "lpips_alex").pipe(lambda t: t[candidate] - t[other])
                       for s in (0, 1)])
    mean, se = float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(len(diffs)))
    stays = passes and not (mean - Z95 * se > 0)
    return stays, (f"{candidate} {'stays' if stays else 'does not stay'}: passes on both seeds: {passes}; "
                   f"LPIPS-alex {candidate} − {other} over both seeds' images {mean:+.4f} ± {se:.4f} "
                   f"(s.e., n = {len(diffs)})")


VERSUS = RULE + ("psnr", "detail_match", "hf_ratio")


def versus(frame: pd.DataFrame, a: str, b: str, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Receiver ``a`` − receiver ``b`` per seed that has both and over those seeds' images pooled: a row per
    seed ("all" for the pool) with n and, per metric (default: those of :data:`VERSUS` the frame has), mean and
    s.e. of the per-image difference (each image averaged over SNRs and samples first). ValueError when no seed
    has both."""
    metrics = metrics or tuple(m for m in VERSUS if m in frame.columns)
    rows, pooled = [], []
    for seed in sorted(frame["seed"].unique()):
        part = frame[frame["seed"] == seed]
        if {a, b} <= set(part["receiver"]):
            d = pd.DataFrame({m: per_image(part, m).pipe(lambda t: t[a] - t[b]) for m in metrics})
            pooled.append(d)
            rows.append((seed, d))
    if not rows:
        raise ValueError(f"no seed has both {a!r} and {b!r}")
    rows.append(("all", pd.concat(pooled)))
    return pd.DataFrame([{"seed": seed, "n": len(d), **{k: v for m in metrics for k, v in zip(
        (m, m + "_se"), mean_se(d[m])[:2])}} for seed, d in rows])


def confirm(frame: pd.DataFrame, winner: str, runner_up: str) -> str | None:
    """The confirmation over seeds 0 and 1 (None when seed 1 lacks either): the winner stays, or else the
    runner-up is checked the same way (rule step 3); the sentences joined."""
    seeds = [s for s in (0, 1) if {winner, runner_up} <= set(frame[frame["seed"] == s]["receiver"])]
    if seeds != [0, 1]:
        return None
    stays, line = _stays(frame, winner, runner_up)
    if stays:
        return line
    second_stays, second = _stays(frame, runner_up, winner)
    return (f"{line}. So the runner-up is checked the same way: {second}"
            + ("" if second_stays else ". Neither stays; the rule does not choose between them."))


def per_snr(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean ± s.e. over images (samples averaged first) per seed, receiver, SNR and measure."""
    images = frame.groupby(["seed", "receiver", "snr_db", "image"])[metrics].mean()
    grouped = images.groupby(level=["seed", "receiver", "snr_db"], sort=False)
    mean, se, n = grouped.mean(), grouped.std(ddof=1) / grouped.count() ** 0.5, grouped.count()
    long = [t.stack().rename(k) for k, t in (("mean", mean), ("se", se), ("n", n))]
    return pd.concat(long, axis=1).rename_axis(["seed", "receiver", "snr_db", "metric"]).reset_index()


def _markdown(table: pd.DataFrame) -> str:
    cols = ["rank", "receiver", "role", "lpips_alex", "dists", "lpips_vgg", "psnr", "reference", "psnr_cost",
            "psnr_cost_upper", "passes", "detail_match", "hf_ratio"]
    cols = [c for c in cols if c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.sort_values(["rank", "lpips_alex"], na_position="last").iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in RULE:
                cells.append(f"{v:.4f} ± {r[c + '_se']:.4f}")
            elif c == "psnr_cost":
                cells.append(f"{v:+.2f} ± {r['psnr_cost_se']:.2f}")
            elif isinstance(v, float):
                cells.append(f"{v:.3f}" if math.isfinite(v) else "–")
            else:
                cells.append("–" if pd.isna(v) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(frame: pd.DataFrame, tables: pd.DataFrame) -> str:
    """verdict.md: per seed the ranking table and the choice, then the confirmation where seed 1 allows it."""
    text = [f"# Validation study: the rule applied\n\nMeasures are means over images of per-image means over "
            f"the SNRs {', '.join(f'{v:g}' for v in sorted(frame['snr_db'].unique()))} dB; ± is one standard error over images. PSNR cost: "
            f"against the receiver's reference (the MSE decoder trained alike), paired; it passes at an upper 95 % "
            f"bound ≤ {BOUND:.2f} dB."]
    for seed, table in tables.groupby("seed"):
        winner, runner_up, how = choose(table)
        missing = sorted(set(table["reference"]) - set(table["receiver"]))
        note = f" No PSNR cost (not ranked) for receivers whose reference has not run: {missing}." if missing else ""
        text.append(f"\n## Seed {seed} ({table['n_images'].max()} images)\n\n{_markdown(table)}\n\n"
                    f"Winner: **{winner}**, runner-up: {runner_up} ({how}).{note}")
    winner, runner_up, _ = choose(tables[tables["seed"] == tables["seed"].min()])
    line = confirm(frame, winner, runner_up) if winner and runner_up else None
    text.append("\n## Confirmation\n\n" + (line or "Not yet: seed 1 has not run for the winner and the runner-up."))
    return "\n".join(text) + "\n"


def runs(out: Path) -> pd.DataFrame:
    """A row per seed and variant: what it trained, its budget as examples and pixels, parameters, wall times."""
    keys = ("seed", "variant", "role", "method", "trains", "description", "examples", "pixels_seen",
            "trainable_parameters", "parameters", "train_s", "eval_s", "loaded")
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("seed*/*/info.json"))]
    return pd.DataFrame([{k: r.get(k) for k in keys} | {"dial": json.dumps(r["dial"]), "commit": (r.get("source") or {})
                          .get("commit")} for r in rows])


def report(out: Path, to: Path | None = None) -> pd.DataFrame:
    """Apply the rule to every seed under ``out``; write ranking.csv, per_snr.csv and verdict.md."""
    frame = load(out)
    ranked = [s for s in sorted(frame["seed"].unique()) if REFERENCE in set(frame[frame["seed"] == s]["receiver"])]
    if not ranked:
        raise FileNotFoundError(f"{out}: no seed has {REFERENCE}, the PSNR reference of the rule")
    tables = pd.concat([rank(frame[frame["seed"] == s]).assign(seed=s) for s in ranked])
    snr_table = per_snr(frame, [m for m in RULE + BESIDE if m in frame.columns])
    atomic_save(out / "ranking.csv", lambda f: tables.to_csv(f, index=False))
    atomic_save(out / "per_snr.csv", lambda f: snr_table.to_csv(f, index=False))
    atomic_write_text(out / "verdict.md", verdict(frame, tables))
    atomic_save(out / "metrics.csv", lambda f: frame.to_csv(f, index=False))
    atomic_save(out / "runs.csv", lambda f: runs(out).to_csv(f, index=False))
    print((out / "verdict.md").read_text())
    if to is not None:
        to.mkdir(parents=True, exist_ok=True)
        for name in ("ranking.csv", "per_snr.csv", "verdict.md", "metrics.csv", "runs.csv"):
            shutil.copyfile(out / name, to / name)
    return tables
