"""The first training losses of each method, to compare two versions of the code (a speed change must leave
them within float32 rounding; docs/performance.md, 'CPU training: before and after').

Each method is built as ``experiments/kodak.py`` builds it (``torch.manual_seed(0)``,
``build_method(name, preset, load_extractor("taef2"))``) and trained by :func:`jscgc.train.train` on kodak.py's
sources (BSDS500 ``train``, the preset's latent pool drawn with seed 12345), the preset's config on the CPU
with seed 0, no checkpoints. Two runs per method:

* ``budget``: the preset's budget, stopped after ``--steps`` steps (the start of the first stage);
* ``stages`` (plans of several stages only): the fewest steps that give every stage ``--steps`` steps, all
  of them run (the start of every stage, under that shorter budget's schedule).

The source is the "latents" one for a LatentSystem or a system whose ``reads_latents`` is true, else
"pixels": :func:`jscgc.latent_system.training_source`'s rule, written out so that this file also runs on a
checkout from before that function (copy it into that checkout's bench/ and run it there).

    python bench/first_losses.py --out /tmp/new.json                 # here; then the same in the old checkout
    python bench/first_losses.py --compare /tmp/old.json /tmp/new.json
    python bench/first_losses.py --threads 1 --methods jscgc,mambajscc --out /tmp/old_1thread.json   # (old checkout)
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch


from bench.environment import checked, environment, json_out
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.imagedata import FolderCrops
from jscgc.io import atomic_write_json, read_json
from jscgc.crop_schedule import preset_sources
from jscgc.latent_system import LatentSystem
from jscgc.latents import load_extractor
from jscgc.methods import METHODS, build_method
from jscgc.presets import PRESETS, get_preset
from jscgc.train import stage_steps, train

ALL_METHODS = "jscgc,jscgc-paper,mambajscc,cjscc,diffjscc,necst"


def parse_args(argv):
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--methods", default=ALL_METHODS, help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--steps", type=int, default=20, help="losses compared per stage")
    p.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's own); "
                   "another count is a rounding change of the same code, the yardstick for a speed change")
    p.add_argument("--data", default=None, help="data root holding bsds500/train (else JSCGC_DATA, ../shared/data)")
    p.add_argument("--out", default=None, help="JSON file of the losses")
    p.add_argument("--compare", nargs=2, default=None, metavar=("OLD", "NEW"),
                   help="two JSON files of this script: print the largest relative difference per run")
    return p.parse_args(argv)


def shortest_budget(plan, need: int) -> int:
    """The fewest steps of a budget that give every stage of ``plan`` at least ``need`` steps."""
    total = need * len(plan)
    while min(stage_steps(plan, total)) < need:
        total += 1
    return total


def method_losses(method: str, preset, extractor, sources: dict, steps: int) -> dict:
    """{"budget": the first ``steps`` losses at the preset's budget, "stages": every loss of the shortest
    budget with ``steps`` per stage (plans of several stages)}."""
    out = {}
    runs = [("budget", preset.train.steps, steps)]
    for name, total, stop in runs:
        torch.manual_seed(0)
        system = build_method(method, preset, extractor)
        reads = isinstance(system, LatentSystem) or getattr(system, "reads_latents", False)
        if name == "budget" and len(system.plan()) > 1:
            total2 = shortest_budget(system.plan(), steps)
            runs.append(("stages", total2, total2))
        config = dataclasses.replace(preset.train, steps=total, seed=0, cpu=True, mixed_precision="no",
                                     progress=False, checkpoint_every=0)
        result = train(system, sources["latents" if reads else "pixels"], config, stop_after=stop)
        out[name] = {"budget": total, "losses": result.losses, "source": "latents" if reads else "pixels"}
    return out


def compare(old_path: str, new_path: str) -> dict:
    """The largest |new − old| / |old| over the losses of each run of the methods both files hold, and the
    first step (1-based) where it exceeds 1e-3, printed as a table."""
    old, new = (read_json(p, keys=("methods",))["methods"] for p in (old_path, new_path))
    common = [m for m in old if m in new]
    if not common:
        raise UsageError(f"--compare: {old_path} and {new_path} hold no method in common")
    rows = {}
    print("| method | run | steps | max rel. difference | first step > 1e-3 | source old → new |\n"
          "|---|---|---:|---:|---:|---|")
    for method in common:
        for run, a in old[method].items():
            b = new[method].get(run)
            if b is None or len(b["losses"]) != len(a["losses"]):
                raise UsageError(f"--compare: {new_path} has no {method} {run} run of {len(a['losses'])} losses")
            rel = [abs(y - x) / abs(x) for x, y in zip(a["losses"], b["losses"])]
            above = next((k + 1 for k, r in enumerate(rel) if r > 1e-3), None)
            rows[f"{method} {run}"] = max(rel)
            print(f"| {method} | {run} | {len(rel)} | {max(rel):.2e} | {above or '–'} | {a['source']} → {b['source']} |")
    return rows


def check(argv):
    """Every input checked before any work: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    if a.compare:
        for path in a.compare:
            if not Path(path).is_file():
                raise UsageError(f"--compare {path}: no such file (expected a JSON file of this script)")
        return a, None, None, None, None
    if a.preset not in PRESETS or PRESETS[a.preset].latents != "taef2":
        raise UsageError(f"--preset {a.preset}: expected one of "
                         f"{','.join(n for n, p in PRESETS.items() if p.latents == 'taef2')} (TAEF2 latents)")
    methods = checks.names("--methods", a.methods, sorted(METHODS))
    checks.positive_int("--steps", a.steps)
    if a.threads is not None:
        checks.positive_int("--threads", a.threads)
    folder = checks.image_folder("--data", a.data, "bsds500/train")
    out = json_out("--out", a.out or "first_losses.json")
    return a, get_preset(a.preset), methods, folder, out


def main(argv=None):
    a, preset, methods, folder, out = checked("first_losses", lambda: check(argv))
    if a.compare:
        return checked("first_losses", lambda: compare(*a.compare))
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    extractor = load_extractor("taef2")
    sources = preset_sources(FolderCrops(folder, preset.crop), preset, extractor, 12345)
    result = {"preset": preset.name, "steps": a.steps, "methods": {},
              **environment(torch.device("cpu"), "first_losses.py", argv)}
    for method in methods:
        start = time.perf_counter()
        result["methods"][method] = method_losses(method, preset, extractor, sources, a.steps)
        print(f"first_losses: {method} ({time.perf_counter() - start:.0f} s): "
              f"{[round(x, 6) for x in result['methods'][method]['budget']['losses'][:3]]} …", flush=True)
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
