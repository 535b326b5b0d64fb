"""Where a training step's time goes, per method and stage of its plan, on the CPU (docs/performance.md).

Each method is built as ``experiments/kodak.py`` builds it (``build_method(name, preset, load_extractor("taef2"))``
after ``torch.manual_seed(0)``) and trained by the package's own loop, :func:`jscgc.train.train`, on kodak.py's
training source: random crops of BSDS500 ``train`` (:class:`jscgc.imagedata.FolderCrops`) through
:func:`jscgc.crop_schedule.preset_sources` (the preset's latent pool: crops drawn once, their TAEF2 latents
encoded once). Kodak is never read. The config is the preset's ``train`` with ``cpu=True``,
``mixed_precision="no"`` and ``progress=False`` (what kodak.py runs on a CPU), no checkpoints, and a budget of
the fewest steps that gives every stage of the plan ``--warmup`` + ``--steps`` steps (the stage shares kept,
so a two-stage plan runs its stages, their ``begin`` and their optimisers as in a full run). The first
``--warmup`` steps of each stage (first-step allocations, the optimiser's lazily made state) are not measured,
the next ``--steps`` are; any further steps of the budget run but are not measured.

Every method trains twice from a fresh build: once without the profiler (the step times, nothing else
recorded) and once inside ``torch.profiler.profile`` (CPU activity), which records only the measured steps
(its schedule; each window's events are attributed when it closes). What each number means:

* ``ms/step``: the median wall time of one optimiser step (:func:`jscgc.train._step`: drawing the batch,
  forward, backward, gradient clipping, AdamW step) over the measured steps of a stage, without the profiler.
* ``profiled``: the same median inside the profiler; the difference is the profiler's overhead.
* the parts: the mean over the measured steps of the profiled wall time of the training (main) thread spent
  in each part, in ms, and in % of the profiled mean step. The parts add up to the step:

  - ``TAEF2 dec`` / ``TAEF2 enc``: the frozen TAEF2 decoder / encoder (``extractor.decoder`` / ``.encoder``);
  - ``scan``: the selective scan (:func:`jscgc.scan.selective_scan` called by the MambaJSCC encoder's SS2D);
  - ``encoder``: the encoder network otherwise (MambaJSCC outside the scan, or the Deep JSCC CNN);
  - ``receiver``: the receiver networks: the Z-Image backbone + CA-Adapter (``ZImageVelocity``: the trained
    network, the frozen posterior-mean prior copy, the refiner of DiffJSCC) or the CNN decoder of the
    baselines;
  - ``optimiser``: ``zero_grad``, gradient clipping and the AdamW step;
  - ``data``: the training source's call (a draw from the latent pool);
  - ``other``: the rest of the step: channel, loss arithmetic, VIMCO's bookkeeping, the autograd engine's
    own work (gradient accumulation into the parameters), the loop's Python.

  Forward: hooks on those modules (and a wrapper of the scan) open and close ``record_function`` ranges;
  an operation counts for the innermost part range it runs in (the scan inside the encoder is ``scan``).
  Backward: each node the autograd engine evaluates (the profiler's ``autograd::engine::evaluate_function``
  event) carries the sequence number of the forward operation that made it, so its time counts for the
  part that operation ran in ("fwd"/"bwd" in the JSON). The step is the ``_step`` call, timed by a wrapper
  around the loop's function (the loop itself unchanged); the optimiser's ranges are the optimiser's own
  profiler ranges and a range around the accelerator's gradient clipping. Times are the main thread's wall
  time: the intra-op threads run inside the operations that start them.

For a plan of several stages a ``budget mix`` row weights each stage by its share of the budget; ``budget s``
is the preset's whole budget at the unprofiled medians (compare docs/kodak_small/first_run/timings.json, which also
includes checkpoint writes). Set-up (BSDS500 decoding, the latent pool's TAEF2 encoding) is timed once and
reported apart. Writes JSON (machine, versions, date, command and commit from bench/environment.py).

    python bench/train_profile.py                                    # all six methods at the small preset
    python bench/train_profile.py --methods mambajscc --steps 3      # one method, fewer measured steps
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.autograd.profiler import record_function

import jscgc.encoders.mamba as mamba
import jscgc.train as loop
from bench.environment import checked, json_out, write_cpu_result
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.decoders.cnn import CNNDecoder
from jscgc.encoders.cnn import CNNEncoder
from jscgc.generators.zimage import ZImageVelocity
from jscgc.imagedata import FolderCrops
from jscgc.crop_schedule import preset_sources
from jscgc.latents import TAEF2, load_extractor
from jscgc.methods import METHODS, build_method
from jscgc.plan import describe_plan, stage_steps
from jscgc.presets import PRESETS, get_preset
from jscgc.train import train

ALL_METHODS = "jscgc,jscgc-paper,mambajscc,cjscc,diffjscc,necst"
PARTS = ("taef2_decoder", "taef2_encoder", "scan", "encoder", "receiver", "optimiser", "data", "other")
HEADS = {"taef2_decoder": "TAEF2 dec", "taef2_encoder": "TAEF2 enc", "scan": "scan", "encoder": "encoder",
         "receiver": "receiver", "optimiser": "optimiser", "data": "data", "other": "other"}
PART = "bench::part::"
STEP, BACKWARD, DATA, CLIP = "bench::step", "bench::backward", "bench::data", "bench::optimiser"
ENGINE = "autograd::engine::evaluate_function"
OPTIMISER_RANGES = ("Optimizer.step#", "Optimizer.zero_grad#")


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", help="a preset on TAEF2 latents (tiny, small, default)")
    p.add_argument("--methods", default=ALL_METHODS, help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--steps", type=int, default=6, help="measured optimiser steps per stage")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured steps at the start of each stage")
    p.add_argument("--data", default=None, help="data root holding bsds500/train (else JSCGC_DATA, ../shared/data)")
    p.add_argument("--out", default="bench/results/train_profile_cpu.json", help="JSON file")
    return p.parse_args(argv)


def taef2_preset(name: str) -> None:
    """Refuse a --preset that is unknown or not on TAEF2 latents (one line naming the known ones)."""
    if name not in PRESETS or PRESETS[name].latents != "taef2":
        raise UsageError(f"--preset {name}: expected one of "
                         f"{','.join(n for n, p in PRESETS.items() if p.latents == 'taef2')} (TAEF2 latents)")


def check(argv):
    """Every input checked before any work: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    taef2_preset(a.preset)
    preset = get_preset(a.preset)
    methods = checks.names("--methods", a.methods, sorted(METHODS))
    checks.positive_int("--steps", a.steps)
    checks.nonnegative_int("--warmup", a.warmup)
    folder = checks.image_folder("--data", a.data, "bsds500/train")
    out = json_out("--out", a.out)
    try:
        extractor = load_extractor("taef2")
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return a, preset, methods, folder, out, extractor


# ---- instrumentation: named ranges around the parts, the step, the data, the backward pass, the clipping

def _range_hooks(module: torch.nn.Module, part: str) -> list:
    """Forward pre/post hooks that open and close a ``bench::part::<part>`` range around ``module``'s forward."""
    open_ranges = []

    def enter(mod, args):
        rf = record_function(PART + part)
        rf.__enter__()
        open_ranges.append(rf)

    def leave(mod, args, out):
        if open_ranges:
            open_ranges.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(enter), module.register_forward_hook(leave, always_call=True)]


def instrument(system: torch.nn.Module) -> list:
    """Range hooks on every part of ``system`` (the handles, to remove them)."""
    handles = []
    for m in system.modules():
        if isinstance(m, TAEF2):
            handles += _range_hooks(m.encoder, "taef2_encoder") + _range_hooks(m.decoder, "taef2_decoder")
        elif isinstance(m, (mamba.MambaJSCCEncoder, CNNEncoder)):
            handles += _range_hooks(m, "encoder")
        elif isinstance(m, (ZImageVelocity, CNNDecoder)):
            handles += _range_hooks(m, "receiver")
    return handles


def _ranged(fn, name: str):
    """``fn`` called inside a ``record_function(name)`` range."""
    def call(*args, **kwargs):
        with record_function(name):
            return fn(*args, **kwargs)
    return call


def _accelerator():
    """The accelerator train() would make on the CPU, its backward pass and gradient clipping in named ranges
    (the optimiser's step and zero_grad record their own)."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=True, mixed_precision="no")
    acc.backward = _ranged(acc.backward, BACKWARD)
    acc.clip_grad_norm_ = _ranged(acc.clip_grad_norm_, CLIP)
    return acc


def run_training(system, source, config, times: list[float], after_step=None) -> None:
    """``train(system, source, config)`` with each ``_step`` timed (seconds into ``times``) and in a
    ``bench::step`` range, the source's calls in ``bench::data``, the scan in ``bench::part::scan``;
    ``after_step()`` is called after each step (the profiler's step counter)."""
    step, scan = loop._step, mamba.selective_scan

    def timed_step(*args, **kwargs):
        with record_function(STEP):
            start = time.perf_counter()
            out = step(*args, **kwargs)
            times.append(time.perf_counter() - start)
        if after_step is not None:
            after_step()
        return out

    loop._step, mamba.selective_scan = timed_step, _ranged(scan, PART + "scan")
    try:
        train(system, _ranged(source, DATA), config, accelerator=_accelerator())
    finally:
        loop._step, mamba.selective_scan = step, scan


def profiled_training(system, source, config, measured: set[int]) -> list[dict[str, float]]:
    """:func:`run_training` inside the profiler, which records only the ``measured`` steps (0-based global
    step numbers; the step before each window warms the profiler up); their attributions, in order."""
    from torch.profiler import ProfilerAction, ProfilerActivity, profile

    def action(k: int):
        if k in measured:
            return ProfilerAction.RECORD_AND_SAVE if k + 1 not in measured else ProfilerAction.RECORD
        return ProfilerAction.WARMUP if k + 1 in measured else ProfilerAction.NONE

    windows: list[list[dict[str, float]]] = []
    with warnings.catch_warnings():                 # each cycle is read when it ends: not accumulating is meant
        warnings.filterwarnings("ignore", message="Warning: Profiler clears events")
        with profile(activities=[ProfilerActivity.CPU], schedule=action,
                     on_trace_ready=lambda p: windows.append(attribute(p))) as prof:
            run_training(system, source, config, [], prof.step)
    return [s for w in windows for s in w]


# ---- attribution of the profiled events

def _label(e, seq_part: dict[int, str]) -> str | None:
    """The part an event's exclusive time counts for, or None (its time goes to its enclosing labelled range)."""
    name = e.name
    if name == STEP:
        return "other"
    if name.startswith(PART):
        return name[len(PART):]
    if name.startswith(ENGINE):
        return seq_part.get(e.sequence_nr, "other")
    if name == DATA:
        return "data"
    if name == CLIP or name.startswith(OPTIMISER_RANGES):
        return "optimiser"
    return None


def _sweep(events):
    """(event, its enclosing events outermost first) for time-sorted, properly nested events of one thread."""
    stack = []
    for e in events:
        while stack and stack[-1].time_range.end <= e.time_range.start:
            stack.pop()
        yield e, stack
        stack.append(e)


def sequence_parts(events) -> dict[int, str]:
    """Autograd sequence number -> the part whose forward range held the operation that made the node.
    A number is peeked by every operation until one makes a node, so the last operation with it wins."""
    seq_part = {}
    for e, enclosing in _sweep(events):
        if e.sequence_nr < 0 or e.name.startswith(ENGINE) or any(o.name == BACKWARD for o in enclosing):
            continue
        parts = [o.name[len(PART):] for o in enclosing if o.name.startswith(PART)]
        seq_part[e.sequence_nr] = parts[-1] if parts else "other"
    return seq_part


def attribute(prof) -> list[dict[str, float]]:
    """Per profiled step, in order: {"<part>.fwd"/"<part>.bwd": exclusive ms, "total": the step's ms}."""
    events = [e for e in prof.events() if not e.is_async]
    thread = next(e.thread for e in events if e.name == STEP)
    events = sorted((e for e in events if e.thread == thread), key=lambda e: (e.time_range.start, -e.time_range.end))
    seq_part = sequence_parts(events)
    steps = []
    owner = {}                                  # id(event) -> its entry [part, direction, exclusive µs]
    for e, enclosing in _sweep(events):
        part = _label(e, seq_part)
        if part is None:
            continue
        duration = e.time_range.end - e.time_range.start
        parent = next((owner[id(o)] for o in reversed(enclosing) if id(o) in owner), None)
        if parent is not None:
            parent[2] -= duration
        direction = "bwd" if any(o.name == BACKWARD for o in enclosing) or e.name.startswith(ENGINE) else "fwd"
        entry = [part, direction, duration]
        owner[id(e)] = entry
        if e.name == STEP:
            steps.append({"total": duration / 1e3, "_entries": []})
        if e.name == STEP or any(o.name == STEP for o in enclosing):
            steps[-1]["_entries"].append(entry)
    for step in steps:
        for part, direction, us in step.pop("_entries"):
            step[f"{part}.{direction}"] = step.get(f"{part}.{direction}", 0.0) + us / 1e3
    return steps


# ---- one method

def profile_budget(plan, need: int) -> int:
    """The fewest steps of a budget that give every stage of ``plan`` at least ``need`` steps."""
    total = need * len(plan)
    while min(stage_steps(plan, total)) < need:
        total += 1
    return total


def _summary(name: str, share: float, budget_steps: int, plain: list[float], profiled: list[dict]) -> dict:
    """One stage's numbers from its measured steps (unprofiled seconds, profiled attributions)."""
    mean_total = statistics.fmean(s["total"] for s in profiled)
    parts = {}
    for part in PARTS:
        fwd = statistics.fmean(s.get(f"{part}.fwd", 0.0) for s in profiled)
        bwd = statistics.fmean(s.get(f"{part}.bwd", 0.0) for s in profiled)
        parts[part] = {"fwd_ms": fwd, "bwd_ms": bwd, "ms": fwd + bwd, "percent": 100 * (fwd + bwd) / mean_total}
    median = statistics.median(plain) * 1e3
    return {"stage": name, "share": share, "budget_steps": budget_steps, "ms_per_step": median,
            "ms_per_step_all": [t * 1e3 for t in plain],
            "profiled_ms_per_step": statistics.median(s["total"] for s in profiled),
            "profiled_mean_ms": mean_total, "profiled_ms_all": [s["total"] for s in profiled],
            "parts": parts, "budget_seconds": budget_steps * median / 1e3}


def _mix(stages: list[dict]) -> dict:
    """The budget-weighted mean of a plan's stages (weights: their shares)."""
    w = [s["share"] for s in stages]
    avg = lambda key: sum(wi * s[key] for wi, s in zip(w, stages))  # noqa: E731
    mean_total = avg("profiled_mean_ms")
    parts = {}
    for part in PARTS:
        fwd = sum(wi * s["parts"][part]["fwd_ms"] for wi, s in zip(w, stages))
        bwd = sum(wi * s["parts"][part]["bwd_ms"] for wi, s in zip(w, stages))
        parts[part] = {"fwd_ms": fwd, "bwd_ms": bwd, "ms": fwd + bwd, "percent": 100 * (fwd + bwd) / mean_total}
    return {"stage": "budget mix", "share": 1.0, "ms_per_step": avg("ms_per_step"),
            "profiled_ms_per_step": avg("profiled_ms_per_step"), "profiled_mean_ms": mean_total, "parts": parts,
            "budget_seconds": sum(s["budget_seconds"] for s in stages)}


def _build(method: str, preset, extractor, sources: dict):
    """The method as kodak.py builds it (seeded as its seed 0) and its training source
    (``sources[system.data]``: DiffJSCC's is the latent pool)."""
    torch.manual_seed(0)
    system = build_method(method, preset, extractor)
    return system, sources[system.data]


def profile_method(method: str, preset, extractor, sources: dict, a) -> dict:
    """Train ``method`` twice from fresh builds (plain, then profiled) for its profiling budget; its stages'
    numbers."""
    system, source = _build(method, preset, extractor, sources)
    plan, need = system.plan(), a.warmup + a.steps
    total = profile_budget(plan, need)
    config = dataclasses.replace(preset.train, steps=total, cpu=True, mixed_precision="no", progress=False,
                                 checkpoint_every=0)
    starts = [0, *itertools.accumulate(stage_steps(plan, total))][:-1]
    windows = [range(b + a.warmup, b + need) for b in starts]          # the measured steps of each stage
    times = []
    run_training(system, source, config, times)
    system, source = _build(method, preset, extractor, sources)
    handles = instrument(system)
    try:
        profiled = profiled_training(system, source, config, {k for w in windows for k in w})
    finally:
        for h in handles:
            h.remove()
    if len(times) != total or len(profiled) != len(windows) * a.steps:
        raise RuntimeError(f"train_profile: {method}: {len(times)} steps run of {total}, "
                           f"{len(profiled)} profiled of {len(windows) * a.steps}")
    stages = [_summary(stage.name, stage.share, full, [times[k] for k in w],
                       profiled[i * a.steps:(i + 1) * a.steps])
              for i, (stage, w, full) in enumerate(zip(plan, windows, stage_steps(plan, preset.train.steps)))]
    return {"method": method, "plan": describe_plan(plan, preset.train.steps), "profile_budget": total,
            "stages": stages, "mix": _mix(stages) if len(stages) > 1 else None,
            "budget_seconds": sum(s["budget_seconds"] for s in stages)}


# ---- output

def table(rows: list[dict]) -> str:
    """The markdown table: a row per stage (and a budget mix row for plans of several stages)."""
    head = ["method", "stage", "ms/step", "profiled", *(HEADS[p] for p in PARTS), "budget s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for row in rows:
        for s in row["stages"] + ([row["mix"]] if row["mix"] else []):
            stage = s["stage"] if s["stage"] == "budget mix" else f"{s['stage']} ({s['share']:g})"
            cells = [f"{s['parts'][p]['ms']:.0f} ({s['parts'][p]['percent']:.0f}%)" for p in PARTS]
            lines.append("| " + " | ".join([row["method"], stage, f"{s['ms_per_step']:.0f}",
                                            f"{s['profiled_ms_per_step']:.0f}", *cells,
                                            f"{s['budget_seconds']:.0f}"]) + " |")
    return "\n".join(lines)


def setup(preset, extractor, folder: Path) -> tuple[dict, dict]:
    """kodak.py's training sources on BSDS500 train, and the seconds their set-up took."""
    start = time.perf_counter()
    crops = FolderCrops(folder, preset.crop)
    loaded = time.perf_counter()
    sources = preset_sources(crops, preset, extractor, 12345)
    done = time.perf_counter()
    return sources, {"decode_images_s": loaded - start, "latent_pool_s": done - loaded,
                     "latent_pool": preset.latent_pool, "images": len(crops)}


def main(argv: list[str] | None = None) -> dict:
    a, preset, methods, folder, out, extractor = checked("train_profile", lambda: check(argv))
    wall = time.perf_counter()
    sources, prep = setup(preset, extractor, folder)
    print(f"train_profile: {prep['images']} BSDS500 train images decoded in {prep['decode_images_s']:.1f} s; "
          f"latent pool of {prep['latent_pool']} crops encoded in {prep['latent_pool_s']:.1f} s", flush=True)
    rows = []
    for method in methods:
        rows.append(profile_method(method, preset, extractor, sources, a))
        print(f"train_profile: {method} done ({time.perf_counter() - wall:.0f} s)", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    return write_cpu_result(out, {"bench": "train_profile", "preset": preset.name, "steps": a.steps,
                                  "warmup": a.warmup, "batch": preset.train.batch_size, "crop": preset.crop,
                                  "parts": list(PARTS), "data": str(folder.relative_to(folder.parents[1])),
                                  "setup": prep, "rows": rows, "table": text,
                                  "wall_seconds": time.perf_counter() - wall}, "train_profile.py", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
