"""The one training loop, used by every experiment at every scale.

``train(system, data, config, out_dir)`` runs the system's training plan — ``system.plan()``, an ordered
tuple of :class:`~jscgc.types.Stage` (name, share of the budget, objective, which parameters train, what
happens when it begins) — with one AdamW optimiser and learning-rate schedule per stage, accelerate
handling devices and mixed precision, a tqdm progress bar, periodic checkpoints written atomically, and
resume from the latest checkpoint, inside a stage or between stages. On CPU a resumed run ends with
bit-identical weights to an uninterrupted one: every random number comes from the data generator
(checkpointed) and from per-chunk generators seeded by (seed, step, chunk) only.

This is the only place where a backward pass or an optimiser step happens; nothing outside a system
switches its state: the loop reads the plan and makes exactly the stage's parameters trainable.

A data source is any callable ``data(batch_size, generator) -> batch`` returning a CPU tensor
(B, *S) or a :class:`~jscgc.types.LatentBatch`; synthetic samplers and image datasets both fit (see
``jscgc.data``, ``jscgc.imagedata``, :class:`jscgc.latent_system.CachedLatents`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from accelerate import Accelerator
from safetensors.torch import load_model, save_model
from torch import nn
from tqdm.auto import tqdm

from jscgc.io import DamagedFile, atomic_dir, atomic_write_json, read_json
from jscgc.types import Batch, DataSource, LatentBatch, Stage

__all__ = ["TrainConfig", "TrainResult", "StageRecord", "train", "stage_steps", "describe_plan", "trainable_counts", "parameter_record",
           "latest_checkpoint", "load_weights", "load_trained", "check_checkpoint"]



@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (saved beside every checkpoint).

    Attributes:
        steps: the method's optimiser-step budget, all stages of its plan together; stage i gets
            ``stage_steps(plan, steps)[i]`` of them (its share, rounded so that the counts add up).
        batch_size: samples per optimiser step over all processes (the global batch).
        accumulation: micro-batches per process per step (gradient accumulation); the global batch
            is cut into processes × accumulation chunks, which must divide ``batch_size``.
        lr, weight_decay: AdamW.
        lr_schedule: ``"constant"`` or ``"cosine"`` (to 0 at the end of each stage), after ``warmup``
            learning-rate warm-up steps at the start of each stage (every stage has its own optimiser).
        snr_db: a training SNR in dB, or [low, high] for an SNR drawn uniformly per sample.
        grad_clip: max gradient norm, or None.
        seed: seeds the data and system generators.
        checkpoint_every: steps between checkpoints (0: only at the end).
        keep_checkpoints: how many recent checkpoints to keep.
        mixed_precision: accelerate's ``"no"``, ``"fp16"`` or ``"bf16"``.
        cpu: force the CPU even where an accelerator exists.
        progress: show a tqdm bar.
    """
    steps: int = 1000
    batch_size: int = 256
    accumulation: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup: int = 0
    snr_db: float | list[float] = 10.0
    grad_clip: float | None = 1.0
    seed: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    mixed_precision: str = "no"
    cpu: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or self.accumulation < 1:
            raise ValueError(f"TrainConfig: steps >= 0, batch_size >= 1 and accumulation >= 1 expected, got "
                             f"steps={self.steps}, batch_size={self.batch_size}, accumulation={self.accumulation}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"TrainConfig.lr_schedule: 'constant' or 'cosine', got {self.lr_schedule!r}")
        if isinstance(self.snr_db, (list, tuple)):
            if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
                raise ValueError(f"TrainConfig.snr_db: a number or [low, high], got {self.snr_db}")
            self.snr_db = [float(v) for v in self.snr_db]

    def resumable_from(self, other: dict[str, Any]) -> list[str]:
        """Fields (other than progress/checkpointing) that differ from a saved config."""
        free = {"progress", "checkpoint_every", "keep_checkpoints"}
        mine = dataclasses.asdict(self)
        return [k for k in mine if k not in free and k in other and other[k] != mine[k]]


class StageRecord(NamedTuple):
    """What one stage of a run did: its name, optimiser steps, training examples seen and trainable
    parameters (counted when the stage ran; -1 for a stage finished before a resume)."""
    name: str
    steps: int
    examples: int
    trainable_parameters: int


class TrainResult(NamedTuple):
    """losses: the loss of every step from 1 to ``step`` over all stages (resumed runs included);
    stages: a record per stage of the plan, in order; skipped: the (1-based) steps whose loss or gradient
    was not finite and that made no update."""
    losses: list[float]
    step: int
    stages: tuple[StageRecord, ...]
    skipped: tuple[int, ...] = ()


def stage_steps(plan: tuple[Stage, ...], total: int) -> list[int]:
    """Optimiser steps of each stage for a budget of ``total``: cumulative shares rounded, so the counts
    add up to ``total`` exactly. Checks the plan (unique names, shares > 0 summing to 1)."""
    names = [s.name for s in plan]
    shares = [s.share for s in plan]
    if not plan or len(set(names)) != len(names) or min(shares) <= 0 or abs(sum(shares) - 1) > 1e-9:
        raise ValueError(f"training plan: unique stage names and shares > 0 summing to 1 expected, got "
                         f"{list(zip(names, shares))}")
    bounds, acc = [0], 0.0
    for share in shares:
        acc += share
        bounds.append(round(acc * total))
    bounds[-1] = total
    return [b - a for a, b in zip(bounds, bounds[1:])]


def describe_plan(plan: tuple[Stage, ...], total: int) -> list[dict[str, Any]]:
    """The plan as JSON: name, share, trained prefixes and steps of each stage (checkpoints record it)."""
    return [{**s.describe(), "steps": n} for s, n in zip(plan, stage_steps(plan, total))]


class _Objective(nn.Module):
    """Routes a stage's loss through ``forward`` so that DDP/FSDP wrappers see the call."""

    def __init__(self, system: nn.Module, loss: Callable[..., torch.Tensor]):
        super().__init__()
        self.system = system
        self.loss = loss

    def forward(self, batch, snr_db, generator):
        return self.loss(batch, snr_db, generator)


def _lr_lambda(config: TrainConfig, steps: int) -> Callable[[int], float]:
    """Learning-rate factor at a stage's step: linear warm-up, then constant or cosine to 0 at ``steps``."""
    def f(step: int) -> float:
        if config.warmup and step < config.warmup:
            return (step + 1) / config.warmup
        if config.lr_schedule == "cosine":
            span = max(1, steps - config.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup) / span)))
        return 1.0
    return f


def _draw_snr(config: TrainConfig, n: int, generator: torch.Generator, device) -> torch.Tensor:
    if isinstance(config.snr_db, list):
        lo, hi = config.snr_db
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)
    return torch.full((n,), float(config.snr_db), device=device)


def _chunk_generator(config: TrainConfig, step: int, chunk: int, device) -> torch.Generator:
    """The generator of chunk ``chunk`` of (global) step ``step``: a function of (seed, step, chunk) only."""
    seed = ((config.seed * 1_000_003 + step) * 10_007 + chunk) % (2 ** 63)
    return torch.Generator(device=device).manual_seed(seed)


def _part(batch: Batch, k: int, micro: int, device) -> Batch:
    """Micro-batch k of a batch (a tensor or a LatentBatch), on ``device``."""
    if isinstance(batch, LatentBatch):
        return LatentBatch(*(t[k * micro:(k + 1) * micro].to(device) for t in batch))
    return batch[k * micro:(k + 1) * micro].to(device)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir/checkpoints`` or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and (p / "state.json").exists())
    return done[-1] if done else None


def _state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's state.json, validated (:class:`jscgc.io.DamagedFile` names a damaged one)."""
    return read_json(checkpoint / "state.json", keys=("step", "stage", "stage_step", "plan", "losses", "train_config"))


def load_weights(system: nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint folder into ``system``; returns its state.json. A file that
    cannot be read is a :class:`jscgc.io.DamagedFile` naming it; weights of another model a ValueError."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "model.safetensors").exists():
        raise FileNotFoundError(f"checkpoint: no model.safetensors in {checkpoint}")
    state = _state(checkpoint)
    try:
        load_model(system, checkpoint / "model.safetensors")
    except RuntimeError as err:                                   # keys or shapes of another model
        if "safetensor" in type(err).__name__.lower():
            raise DamagedFile(checkpoint / "model.safetensors", str(err).splitlines()[0]) from None
        raise ValueError(f"checkpoint {checkpoint} holds weights of another model ({str(err).splitlines()[0][:200]})") from None
    except Exception as err:                                      # a truncated or zeroed file
        raise DamagedFile(checkpoint / "model.safetensors", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    return state


def _optimizer_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's optimizer.pt (optimiser, schedule, data generator), validated."""
    path = checkpoint / "optimizer.pt"
    try:
        extra = torch.load(path, weights_only=False)
    except FileNotFoundError:
        raise DamagedFile(path, "missing") from None
    except Exception as err:
        raise DamagedFile(path, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'unreadable'}") from None
    if not isinstance(extra, dict) or not {"optimizer", "scheduler", "generators"} <= set(extra):
        raise DamagedFile(path, "not an optimiser checkpoint of this package")
    return extra


def check_checkpoint(checkpoint: str | Path) -> None:
    """Read every file of a checkpoint folder without loading it into a model: state.json, the safetensors
    header, optimizer.pt. Raises :class:`jscgc.io.DamagedFile` naming the first damaged file."""
    from safetensors import safe_open

    checkpoint = Path(checkpoint)
    _state(checkpoint)
    try:
        with safe_open(checkpoint / "model.safetensors", framework="pt") as f:
            list(f.keys())
    except Exception as err:
        raise DamagedFile(checkpoint / "model.safetensors", f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'unreadable'}") from None
    _optimizer_state(checkpoint)


def load_trained(system: nn.Module, out_dir: str | Path) -> Path:
    """Load the final weights a finished :func:`train` left under ``out_dir``; returns the checkpoint
    folder. A run stopped before the end of its plan is an error that says where it stopped."""
    ckpt = latest_checkpoint(out_dir)
    if ckpt is None:
        raise FileNotFoundError(f"checkpoint: no checkpoint under {out_dir}")
    state = load_weights(system, ckpt)
    total = sum(s["steps"] for s in state["plan"])
    if state["step"] != total:
        raise ValueError(f"checkpoint {ckpt} stopped at step {state['step']} of {total} (stage "
                         f"{state['plan'][state['stage']]['name']!r}); resume its training first")
    return ckpt


@dataclass
class _Position:
    """Where a run is: stage index, steps done in that stage and in all, the losses so far."""
    stage: int = 0
    stage_step: int = 0
    step: int = 0
    losses: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)


@dataclass
class _Run:
    """What every stage of one call of :func:`train` shares."""
    acc: Accelerator
    system: nn.Module
    data: DataSource
    config: TrainConfig
    plan: list[dict[str, Any]]
    out: Path | None
    last: int
    system_config: dict | None
    data_gen: torch.Generator
    desc: str = "train"
    bar: Any = None


def _save(run: _Run, pos: _Position, optimizer, scheduler) -> None:
    """Checkpoint ``out/checkpoints/step_<global step>``: weights, this stage's optimiser and schedule,
    the data generator, and state.json (plan, stage and steps reached, losses, configs)."""
    def fill(tmp: Path) -> None:
        save_model(run.system, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "generators": [run.data_gen.get_state()]}, tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {
            "step": pos.step, "stage": pos.stage, "stage_step": pos.stage_step, "plan": run.plan,
            "losses": pos.losses, "skipped": pos.skipped, "train_config": dataclasses.asdict(run.config),
            "system_config": run.system_config})
    root = run.out / "checkpoints"
    if (root / f"step_{pos.step:08d}").exists():
        return
    atomic_dir(root / f"step_{pos.step:08d}", fill)
    old = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in old[:-run.config.keep_checkpoints]:
        shutil.rmtree(p, ignore_errors=True)


def _resume(run: _Run, resume: bool) -> tuple[_Position, dict | None]:
    """The position of the latest checkpoint (weights and data generator restored) and its optimiser
    state, or a fresh start. Stale temporary folders of an interrupted checkpoint write are removed."""
    if run.out is None:
        return _Position(), None
    for stale in (run.out / "checkpoints").glob(".step_*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = latest_checkpoint(run.out)
    if ckpt is None:
        return _Position(), None
    if not resume:
        raise FileExistsError(f"train: {run.out} already holds checkpoints ({ckpt.name}); "
                              "pass resume=True to continue or choose another out_dir")
    state = load_weights(run.system, ckpt)
    bad = run.config.resumable_from(state["train_config"])
    if bad:
        raise ValueError(f"train: cannot resume {ckpt}: the config differs in {bad}")
    if state.get("plan") != run.plan:
        raise ValueError(f"train: cannot resume {ckpt}: it was made with the plan {state.get('plan')}, this run's "
                         f"plan is {run.plan}")
    extra = _optimizer_state(ckpt)
    run.data_gen.set_state(extra["generators"][0])
    return _Position(state["stage"], state["stage_step"], state["step"], list(state["losses"]),
                     list(state.get("skipped", []))), extra


def trainable_counts(system: nn.Module) -> dict[str, int]:
    """Parameters each stage of ``system.plan()`` trains, by the same rule as :func:`train` (the stage's
    name prefixes, minus parameters frozen at build), without training: {stage name: count}."""
    frozen = {name for name, p in system.named_parameters() if not p.requires_grad}
    return {stage.name: sum(p.numel() for name, p in system.named_parameters() if _trains(stage, name, frozen))
            for stage in system.plan()}


def parameter_record(system: nn.Module) -> dict:
    """The parameter counts config.json records for a system, by the rule :func:`train` uses:

    ``total`` (every parameter), ``trainable_by_stage`` ({stage: count}), ``trainable_union`` (parameters
    trained by at least one stage: what the method learns), ``trainable_largest_stage`` (the most any one
    stage trains), and ``frozen_at_build`` ({module path: count} of the parameters frozen when the system
    was built, grouped by the widest module that is frozen whole, e.g. the pretrained TAEF2 ``extractor``
    of an image system). A two-stage method such as DiffJSCC trains different parameters per stage, so its
    union exceeds its largest stage."""
    names = dict(system.named_parameters())
    frozen = {n for n, p in names.items() if not p.requires_grad}
    stages = system.plan()
    union = {n for n in names for stage in stages if _trains(stage, n, frozen)}
    by_stage = trainable_counts(system)
    groups: dict[str, int] = {}
    for name in (n for n in names if n in frozen):
        parts = name.split(".")
        prefix = next(p for p in (".".join(parts[:k]) for k in range(1, len(parts) + 1))
                      if all(n in frozen for n in names if n == p or n.startswith(p + ".")))
        groups[prefix] = groups.get(prefix, 0) + names[name].numel()
    return {"total": sum(p.numel() for p in names.values()), "trainable_by_stage": by_stage,
            "trainable_union": sum(names[n].numel() for n in union),
            "trainable_largest_stage": max(by_stage.values()), "frozen_at_build": groups}


def _trains(stage: Stage, name: str, frozen: set[str]) -> bool:
    """Whether ``stage`` trains parameter ``name``: one of its name prefixes, never one frozen at build time."""
    return name not in frozen and any(name.startswith(prefix) for prefix in stage.trains)


def _make_trainable(system: nn.Module, stage: Stage, frozen: set[str]) -> list[nn.Parameter]:
    """Exactly the stage's parameters (:func:`_trains`) require grad."""
    params = []
    for name, p in system.named_parameters():
        on = _trains(stage, name, frozen)
        p.requires_grad_(on)
        if on:
            params.append(p)
    if not params:
        raise ValueError(f"train: stage {stage.name!r} has no trainable parameters (prefixes {stage.trains})")
    return params


#: consecutive non-finite steps after which training stops (a run that cannot recover)
MAX_NONFINITE = 10


def _step(run: _Run, objective, optimizer, scheduler, params, step: int) -> tuple[float, bool]:
    """One optimiser step at global step ``step``: the global batch cut into processes × accumulation chunks.
    Returns (loss, taken). A step whose loss or gradient norm is not finite is skipped, as mixed-precision
    loss scaling skips one: no update (the schedule still advances), so one bad batch cannot turn every
    weight into NaN through the clipped update (inf · 0). The gradient norm is taken with an infinite
    bound when there is no clipping, which leaves the gradients bit for bit as they were."""
    acc, config = run.acc, run.config
    micro = config.batch_size // (acc.num_processes * config.accumulation)
    batch = run.data(config.batch_size, run.data_gen)
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=acc.device)
    for j in range(config.accumulation):
        k = acc.process_index * config.accumulation + j
        gen = _chunk_generator(config, step, k, acc.device)
        snr = _draw_snr(config, micro, gen, acc.device)
        sync = j == config.accumulation - 1 or acc.num_processes == 1
        with nullcontext() if sync else acc.no_sync(objective):
            with acc.autocast():
                loss = objective(_part(batch, k, micro, acc.device), snr, gen)
            acc.backward(loss / config.accumulation)
        total += loss.detach().float() / config.accumulation
    loss = acc.reduce(total, reduction="mean") if acc.num_processes > 1 else total
    taken = bool(torch.isfinite(loss))
    if taken:
        norm = acc.clip_grad_norm_(params, config.grad_clip if config.grad_clip is not None else float("inf"))
        taken = bool(torch.isfinite(torch.as_tensor(norm)))
    if taken:
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return float(loss), taken


def _note_skipped(run: _Run, pos: _Position, loss: float) -> None:
    """Record a skipped step (1-based) and say so; stop after MAX_NONFINITE skipped in a row."""
    pos.skipped.append(pos.step + 1)
    run.bar.write(f"{run.desc}: step {pos.step + 1} skipped (loss {loss:.4g}, or its gradient, is not finite)")
    recent = pos.skipped[-MAX_NONFINITE:]
    if len(recent) == MAX_NONFINITE and recent[0] == pos.step + 2 - MAX_NONFINITE:
        raise FloatingPointError(f"train: {MAX_NONFINITE} steps in a row up to step {pos.step + 1} had a non-finite "
                                 f"loss or gradient (last loss {loss}); lower the learning rate or check the data")


def _run_stage(run: _Run, stage: Stage, steps: int, pos: _Position, extra: dict | None, frozen: set[str]) -> int:
    """Run (the rest of) one stage from ``pos``; returns its trainable parameter count."""
    params = _make_trainable(run.system, stage, frozen)
    optimizer = torch.optim.AdamW(params, lr=run.config.lr, weight_decay=run.config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(run.config, steps))
    if extra is not None and 0 < pos.stage_step < steps:
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
    elif pos.stage_step == 0 and stage.begin is not None:
        stage.begin()
    objective, optimizer = run.acc.prepare(_Objective(run.system, stage.loss), optimizer)
    objective.train()
    run.bar.set_description(f"{run.desc} [{stage.name}]")
    while pos.stage_step < steps and pos.step < run.last:
        loss, taken = _step(run, objective, optimizer, scheduler, params, pos.step)
        pos.losses.append(loss)
        if not taken:
            _note_skipped(run, pos, loss)
        pos.step += 1
        pos.stage_step += 1
        run.bar.update(1)
        if pos.step % 10 == 0 or pos.stage_step == steps:
            run.bar.set_postfix(loss=f"{sum(pos.losses[-10:]) / len(pos.losses[-10:]):.4f}")
        every = run.config.checkpoint_every
        due = (every and pos.step % every == 0) or pos.stage_step == steps or pos.step == run.last
        if run.out is not None and run.acc.is_main_process and due:
            _save(run, pos, optimizer, scheduler)
    objective.eval()
    return sum(p.numel() for p in params)


def train(system: nn.Module, data: DataSource, config: TrainConfig,
          out_dir: str | Path | None = None, resume: bool = True,
          stop_after: int | None = None, system_config: dict | None = None,
          accelerator: Accelerator | None = None, desc: str = "train") -> TrainResult:
    """Run ``system.plan()`` stage by stage on batches from ``data``.

    Args:
        system: a module with ``plan() -> tuple[Stage, ...]`` (every system of the package).
        data: ``data(batch_size, generator) -> batch`` (CPU tensor (B, *S) or LatentBatch).
        config: hyper-parameters; ``config.steps`` is the budget of the whole plan.
        out_dir: where checkpoints go (``out_dir/checkpoints/step_XXXXXXXX``, global step); None: none.
        resume: continue from the latest checkpoint in ``out_dir`` (mid-stage or between stages). With
            ``resume=False`` an ``out_dir`` that already holds checkpoints is an error, never overwritten.
        stop_after: stop (and checkpoint) after this global step; what an interrupted run leaves behind.
        system_config: saved beside the weights (e.g. ``system.config()``).
        accelerator: an existing ``Accelerator``; one is made from the config if None.

    Returns:
        TrainResult(losses, step, stages). ``system`` holds the trained weights (on the accelerator's
        device) and the requires_grad flags it was built with.
    """
    acc = accelerator or Accelerator(cpu=config.cpu, mixed_precision=config.mixed_precision)
    if config.batch_size % (acc.num_processes * config.accumulation):
        raise ValueError(f"TrainConfig.batch_size {config.batch_size} is not divisible into {acc.num_processes} "
                         f"processes x {config.accumulation} accumulation micro-batches")
    plan = system.plan()
    counts = stage_steps(plan, config.steps)
    run = _Run(acc, system, data, config, describe_plan(plan, config.steps), Path(out_dir) if out_dir else None,
               config.steps if stop_after is None else min(config.steps, stop_after), system_config,
               torch.Generator().manual_seed(config.seed * 1_000_003), desc)
    built = {name: p.requires_grad for name, p in system.named_parameters()}
    system.to(acc.device)
    pos, extra = _resume(run, resume)
    run.bar = tqdm(total=config.steps, initial=pos.step, desc=desc, leave=False, dynamic_ncols=True,
                   disable=not config.progress or not acc.is_main_process)
    records = []
    try:
        for i, (stage, steps) in enumerate(zip(plan, counts)):
            n = -1
            if pos.step < run.last and (i > pos.stage or (i == pos.stage and pos.stage_step < steps)):
                if i > pos.stage:
                    pos.stage, pos.stage_step = i, 0
                n = _run_stage(run, stage, steps, pos, extra, {k for k, v in built.items() if not v})
            done = steps if i < pos.stage else pos.stage_step if i == pos.stage else 0
            records.append(StageRecord(stage.name, done, done * config.batch_size, n))
    finally:
        for name, p in system.named_parameters():
            p.requires_grad_(built[name])
        run.bar.close()
    return TrainResult(pos.losses, pos.step, tuple(records), tuple(pos.skipped))
