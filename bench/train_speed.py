"""Training step time with the CPU speed options off and on, alternating in one sitting, per method and stage.

The options (each changes nothing beyond float32 rounding, each on by default; docs/performance.md,
'CPU training: before and after'):

* ``channels_last``: :class:`jscgc.latents.TAEF2` runs its encoder and decoder on channels-last activations
  (off: the default layout);
* ``cached_latents``: :class:`jscgc.baselines.DiffJSCC` trains on the "latents" source and takes the pool's
  cached latents as its refinement targets (off: the "pixels" source, every target batch encoded).

A variant is ``old`` (every option off: the code before the options), ``new`` (every option on), or
``old+OPTION`` (only that option on). Each method is built as ``experiments/kodak.py`` builds it
(``torch.manual_seed(0)``, ``build_method(name, preset, load_extractor("taef2"))``) and trained by
:func:`jscgc.train.train` on its source (``sources[system.data]``) of kodak.py's sources (BSDS500
``train``, the preset's latent pool), for the fewest steps that give every stage of its plan ``--warmup``
unmeasured + ``--steps`` measured steps, as bench/train_profile.py does without the profiler. A round trains
every variant once from a fresh build; the order of the variants is reversed every other round (A B, B A, …)
so a drift of the machine's speed falls on both. Per stage: ``ms/step`` is the median over all rounds'
measured steps; ``ratio`` is the median over rounds of (the variant's median / the first variant's median)
in that round. ``projected s`` is the preset's whole step budget at the medians: a projection, not a run.

    python bench/train_speed.py                                   # all six methods, old against new
    python bench/train_speed.py --methods mambajscc --variants old,old+channels_last,new --rounds 5
    python bench/train_speed.py --threads 1 --out bench/results/train_speed_cpu_1thread.json
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time

import torch


from bench.environment import checked, environment, json_out
from bench.train_profile import ALL_METHODS, profile_budget, run_training, setup, taef2_preset
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.io import atomic_write_json
from jscgc.latents import load_extractor
from jscgc.methods import METHODS, build_method
from jscgc.presets import get_preset
from jscgc.train import stage_steps

OPTIONS = ("channels_last", "cached_latents")


def variant_options(name: str) -> frozenset[str]:
    """The options a variant name turns on: ``old`` none, ``new`` all, ``old+OPTION`` that one."""
    if name == "old":
        return frozenset()
    if name == "new":
        return frozenset(OPTIONS)
    if name.startswith("old+") and name[4:] in OPTIONS:
        return frozenset({name[4:]})
    raise UsageError(f"--variants {name}: expected old, new or old+OPTION with OPTION one of {','.join(OPTIONS)}")


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", help="a preset on TAEF2 latents (tiny, small, default)")
    p.add_argument("--methods", default=ALL_METHODS, help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--variants", default="old,new", help="comma list, the first the reference of the ratios")
    p.add_argument("--rounds", type=int, default=3, help="fresh trainings of every variant per method")
    p.add_argument("--steps", type=int, default=4, help="measured optimiser steps per stage and round")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured steps at the start of each stage")
    p.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's own)")
    p.add_argument("--data", default=None, help="data root holding bsds500/train (else JSCGC_DATA, ../shared/data)")
    p.add_argument("--out", default="bench/results/train_speed_cpu.json", help="JSON file")
    return p.parse_args(argv)


def check(argv):
    """Every input checked before any work: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    taef2_preset(a.preset)
    methods = checks.names("--methods", a.methods, sorted(METHODS))
    variants = [v for v in a.variants.split(",") if v]
    if len(variants) < 2 or len(set(variants)) != len(variants):
        raise UsageError(f"--variants {a.variants}: expected at least two different variants")
    for v in variants:
        variant_options(v)
    for flag, value in (("--rounds", a.rounds), ("--steps", a.steps)):
        checks.positive_int(flag, value)
    checks.nonnegative_int("--warmup", a.warmup)
    if a.threads is not None:
        checks.positive_int("--threads", a.threads)
    folder = checks.image_folder("--data", a.data, "bsds500/train")
    out = json_out("--out", a.out)
    try:
        extractor = load_extractor("taef2")
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return a, get_preset(a.preset), methods, variants, folder, out, extractor


def build(method: str, preset, extractor, sources: dict, on: frozenset[str]):
    """The method as kodak.py builds it with the options ``on`` set (the extractor is shared: its option is
    set here, before each training), and its training source."""
    extractor.channels_last = "channels_last" in on
    torch.manual_seed(0)
    system = build_method(method, preset, extractor)
    if method == "diffjscc":                          # the DiffJSCC option, set on the one system that has it
        system.cached_latents = "cached_latents" in on
    return system, sources[system.data]


def time_variant(method: str, preset, extractor, sources: dict, on: frozenset[str], a) -> list[list[float]]:
    """One fresh training of ``method`` with options ``on``: each stage's measured step times (ms)."""
    system, source = build(method, preset, extractor, sources, on)
    plan, need = system.plan(), a.warmup + a.steps
    total = profile_budget(plan, need)
    config = dataclasses.replace(preset.train, steps=total, cpu=True, mixed_precision="no", progress=False,
                                 checkpoint_every=0)
    times: list[float] = []
    run_training(system, source, config, times)
    starts = [0, *itertools.accumulate(stage_steps(plan, total))][:-1]
    return [[1e3 * t for t in times[b + a.warmup:b + need]] for b in starts]


def speed_method(method: str, preset, extractor, sources: dict, variants: list[str], a) -> dict:
    """``--rounds`` rounds of every variant (order reversed every other round); per stage and variant the
    step times, their median, the median per-round ratio to the first variant, the projected budget."""
    plan = build_method(method, preset, extractor).plan()
    runs = {v: [] for v in variants}                      # variant -> rounds -> stages -> step times (ms)
    for r in range(a.rounds):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            runs[v].append(time_variant(method, preset, extractor, sources, variant_options(v), a))
    stages = []
    for i, (stage, full) in enumerate(zip(plan, stage_steps(plan, preset.train.steps))):
        row = {"stage": stage.name, "share": stage.share, "budget_steps": full, "variants": {}}
        for v in variants:
            per_round = [statistics.median(rnd[i]) for rnd in runs[v]]
            ref = [statistics.median(rnd[i]) for rnd in runs[variants[0]]]
            median = statistics.median(t for rnd in runs[v] for t in rnd[i])
            row["variants"][v] = {"ms_per_step": median, "ms_all": [rnd[i] for rnd in runs[v]],
                                  "ratio": statistics.median(x / y for x, y in zip(per_round, ref)),
                                  "projected_seconds": full * median / 1e3}
        stages.append(row)
    projected = {v: sum(s["variants"][v]["projected_seconds"] for s in stages) for v in variants}
    return {"method": method, "stages": stages, "projected_seconds": projected,
            "projected_ratio": {v: projected[v] / projected[variants[0]] for v in variants}}


def table(rows: list[dict], variants: list[str]) -> str:
    """Markdown: a row per stage (ms/step per variant, ratios to the first) and per method's projection."""
    head = ["method", "stage", *(f"{v} ms/step" for v in variants), *(f"{v} ratio" for v in variants[1:])]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        for s in row["stages"]:
            cells = [f"{s['variants'][v]['ms_per_step']:.0f}" for v in variants]
            cells += [f"{s['variants'][v]['ratio']:.2f}" for v in variants[1:]]
            lines.append(f"| {row['method']} | {s['stage']} ({s['share']:g}) | " + " | ".join(cells) + " |")
        cells = [f"{row['projected_seconds'][v]:.0f} s" for v in variants]
        cells += [f"{row['projected_ratio'][v]:.2f}" for v in variants[1:]]
        lines.append(f"| {row['method']} | projected budget | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    a, preset, methods, variants, folder, out, extractor = checked("train_speed", lambda: check(argv))
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    wall = time.perf_counter()
    extractor.channels_last = "channels_last" in variant_options(variants[-1])
    sources, prep = setup(preset, extractor, folder)
    print(f"train_speed: latent pool of {prep['latent_pool']} crops encoded in {prep['latent_pool_s']:.1f} s",
          flush=True)
    rows = []
    for method in methods:
        rows.append(speed_method(method, preset, extractor, sources, variants, a))
        print(f"train_speed: {method} done ({time.perf_counter() - wall:.0f} s)", file=sys.stderr, flush=True)
    text = table(rows, variants)
    print(text)
    result = {"bench": "train_speed", "preset": preset.name, "variants": variants, "rounds": a.rounds,
              "steps": a.steps, "warmup": a.warmup, "batch": preset.train.batch_size, "crop": preset.crop,
              "setup": prep, "rows": rows, "table": text,
              "wall_seconds": time.perf_counter() - wall, **environment(torch.device("cpu"), "train_speed.py", argv)}
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
