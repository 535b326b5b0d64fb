"""How long a preset's methods take to train their whole budget, from two short runs of the real loop.

Each method is built as ``kodak.py`` builds it (:func:`jscgc.methods.build_method`) and trained by
:func:`jscgc.train.train` on the same source, random crops of BSDS500 ``train`` (the TAEF2 latents
encoded on the fly, or the preset's latent pool), with the preset's batch, mixed precision and plan.
Two budgets N1 < N2 keep the plan's stage shares, so the time per step of the mix is
(T(N2) − T(N1)) / (N2 − N1) with the fixed set-up cost removed, and the whole budget B projects to
T(N1) + (B − N1) · that rate. Kodak is not read. Writes JSON (bench/performance.py turns it
into rows of docs/performance.md).

    python bench/train_rate.py --preset tiny --methods jscgc,mambajscc --steps 2 6      # CPU smoke run
    python bench/train_rate.py --preset default --methods jscgc,mambajscc --steps 40 200  # one GPU
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from bench.environment import checked, environment, json_out, peak_memory_gib, reset_peak_memory, sync
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.imagedata import FolderCrops
from jscgc.io import atomic_write_json
from jscgc.crop_schedule import preset_sources
from jscgc.latents import TAEF2, weights_root
from jscgc.methods import METHODS, build_method, count_parameters
from jscgc.plan import describe_plan
from jscgc.presets import PRESETS, get_preset
from jscgc.train import train


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--methods", default="jscgc,mambajscc", help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--steps", type=int, nargs=2, default=[2, 6], metavar=("N1", "N2"), help="the two budgets")
    p.add_argument("--data", default=None, help="data root holding bsds500/train (else JSCGC_DATA)")
    p.add_argument("--goal-seconds", type=float, default=720.0, help="the goal for one method's whole budget")
    p.add_argument("--out", default=None, help="JSON file (default results/bench_train_rate_<preset>.json)")
    return p.parse_args(argv)


def check(argv) -> tuple[argparse.Namespace, object, list[str], Path, Path]:
    """Every input checked before any work: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    preset = get_preset(a.preset)
    methods = checks.names("--methods", a.methods, sorted(METHODS))
    n1, n2 = a.steps
    if not 1 <= n1 < n2 or n2 > preset.train.steps:
        raise UsageError(f"--steps: expected 1 <= N1 < N2 <= the budget {preset.train.steps}, got {n1} {n2}")
    checks.positive_finite("--goal-seconds", a.goal_seconds)
    folder = checks.image_folder("--data", a.data, "bsds500/train")
    out = json_out("--out", a.out or f"results/bench_train_rate_{preset.name}.json")
    return a, preset, methods, folder, out


def timed_run(method, preset, extractor, data, config, device) -> tuple[float, dict]:
    """Build ``method`` afresh and train it for ``config.steps``; (seconds, its record)."""
    torch.manual_seed(config.seed)
    system = build_method(method, preset, extractor)
    source = data[system.data]
    sync(device)
    start = time.perf_counter()
    result = train(system, source, config)
    sync(device)
    seconds = time.perf_counter() - start
    return seconds, {"steps": result.step, "skipped": len(result.skipped),
                     "plan": describe_plan(system.plan(), config.steps),
                     "trainable_parameters": count_parameters(system, True), "parameters": count_parameters(system)}


def rate(method, preset, extractor, data, steps, device) -> dict:
    """One method: two budgets, their times, the time per step and the projected whole budget."""
    base = dataclasses.replace(preset.train, progress=False, cpu=device.type != "cuda",
                               **({} if device.type == "cuda" else {"mixed_precision": "no"}))
    runs = []
    reset_peak_memory(device)
    for n in steps:
        seconds, record = timed_run(method, preset, extractor, data, dataclasses.replace(base, steps=n), device)
        runs.append({"budget": n, "seconds": seconds, **record})
    per_step = (runs[1]["seconds"] - runs[0]["seconds"]) / (steps[1] - steps[0])
    projected = runs[0]["seconds"] + (preset.train.steps - steps[0]) * per_step
    return {"method": method, "runs": runs, "seconds_per_step": per_step,
            "images_per_second": base.batch_size / per_step, "budget": preset.train.steps,
            "batch": base.batch_size, "examples": preset.train.steps * base.batch_size,
            "projected_seconds": projected, "peak_memory_gib": peak_memory_gib(device),
            "trainable_parameters": runs[-1]["trainable_parameters"], "parameters": runs[-1]["parameters"]}


def main(argv: list[str] | None = None) -> dict:
    a, preset, methods, folder, out = checked("train_rate", lambda: check(argv))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shipped = weights_root() is not None and (weights_root() / "taef2").is_dir()
    extractor = TAEF2.from_pretrained() if shipped else TAEF2()    # the cost does not depend on the weights
    data = preset_sources(FolderCrops(folder, preset.crop), preset, extractor, 12345)
    rows = []
    for method in methods:
        row = rate(method, preset, extractor, data, a.steps, device)
        rows.append(row)
        print(f"{preset.name} {method}: {row['seconds_per_step'] * 1e3:.0f} ms/step ({row['images_per_second']:.0f} "
              f"images/s); whole {row['budget']}-step budget ≈ {row['projected_seconds'] / 60:.1f} min "
              f"(goal {a.goal_seconds / 60:.0f} min)", flush=True)
    result = {"bench": "train_rate", "preset": preset.name, "steps": list(a.steps), "goal_seconds": a.goal_seconds,
              "data": str(folder.relative_to(folder.parents[1])), "extractor_weights": "shipped" if shipped else "random",
              **environment(device, "train_rate.py", argv), "rows": rows}
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
