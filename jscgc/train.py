"""The one training loop, used by every experiment at every scale.

``train(system, data, config, out_dir)`` runs the system's training plan — ``system.plan()``, an ordered
tuple of :class:`~jscgc.types.Stage` (name, share of the budget, objective, which parameters train, what
happens when it begins; read through :mod:`jscgc.plan`) — with one AdamW optimiser and learning-rate
schedule per stage, accelerate handling devices and mixed precision, a tqdm progress bar, periodic
checkpoints written atomically, and resume from the latest checkpoint, inside a stage or between stages
(storage: :mod:`jscgc.checkpoints`). On CPU a resumed run ends with bit-identical weights to an
uninterrupted one: every random number comes from the data generator (checkpointed) and from per-chunk
generators seeded by (seed, step, chunk) only (:mod:`jscgc.chunks`).

This is the only place where a backward pass or an optimiser step happens; nothing outside a system
switches its state: the loop reads the plan and makes exactly the stage's parameters trainable.

A data source is any callable ``data(batch_size, generator) -> batch`` returning a CPU tensor
(B, *S) or a :class:`~jscgc.types.LatentBatch`; synthetic samplers and image datasets both fit (see
``jscgc.data``, ``jscgc.imagedata``, :class:`jscgc.latent_system.CachedLatents`).
"""
from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple

import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm

from jscgc.checkpoints import Position, resume_checkpoint, save_checkpoint
from jscgc.chunks import batch_size_of, chunk_generator, draw_snr, micro_batch
from jscgc.plan import StageRecord, describe_plan, lr_factor, stage_record, stage_steps, trains
from jscgc.types import DataSource, Stage

__all__ = ["TrainConfig", "TrainResult", "StageRecord", "MAX_NONFINITE", "train"]


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (saved beside every checkpoint).

    Attributes:
        steps: the method's optimiser-step budget, all stages of its plan together; stage i gets
            ``stage_steps(plan, steps)[i]`` of them (its share, rounded so that the counts add up).
        batch_size: samples asked of the data source per optimiser step over all processes (the global
            batch); a source may give fewer, larger ones (:mod:`jscgc.crop_schedule`).
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

    #: fields that do not change what a run computes (how it shows progress and keeps checkpoints)
    FREE: ClassVar[frozenset] = frozenset({"progress", "checkpoint_every", "keep_checkpoints"})

    def resumable_from(self, other: dict[str, Any]) -> list[str]:
        """Fields (other than :attr:`FREE`) that differ from a saved config."""
        mine = dataclasses.asdict(self)
        return [k for k in mine if k not in self.FREE and k in other and other[k] != mine[k]]


class TrainResult(NamedTuple):
    """losses: the loss of every step from 1 to ``step`` over all stages (resumed runs included);
    stages: a record per stage of the plan, in order; skipped: the (1-based) steps whose loss or gradient
    was not finite and that made no update; resumed_from: the step of the checkpoint this call resumed
    from (0: from the start; ``step``: found finished, nothing trained)."""
    losses: list[float]
    step: int
    stages: tuple[StageRecord, ...]
    skipped: tuple[int, ...] = ()
    resumed_from: int = 0


class _Objective(nn.Module):
    """Routes a stage's loss through ``forward`` so that DDP/FSDP wrappers see the call."""

    def __init__(self, system: nn.Module, loss: Callable[..., torch.Tensor]):
        super().__init__()
        self.system = system
        self.loss = loss

    def forward(self, batch, snr_db, generator):
        return self.loss(batch, snr_db, generator)


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


def _save(run: _Run, pos: Position, optimizer, scheduler) -> None:
    """Checkpoint the run at ``pos`` (:func:`jscgc.checkpoints.save_checkpoint`)."""
    record = {"plan": run.plan, "train_config": dataclasses.asdict(run.config), "system_config": run.system_config}
    save_checkpoint(run.out, pos, run.system, optimizer, scheduler, run.data_gen, record, run.config.keep_checkpoints)


def _make_trainable(system: nn.Module, stage: Stage, frozen: set[str]) -> list[nn.Parameter]:
    """Exactly the stage's parameters (:func:`jscgc.plan.trains`) require grad."""
    params = []
    for name, p in system.named_parameters():
        on = trains(stage, name, frozen)
        p.requires_grad_(on)
        if on:
            params.append(p)
    if not params:
        raise ValueError(f"train: stage {stage.name!r} has no trainable parameters (prefixes {stage.trains})")
    return params


#: consecutive non-finite steps after which training stops (a run that cannot recover)
MAX_NONFINITE = 10


def _step(run: _Run, objective, optimizer, scheduler, params, step: int) -> tuple[float, bool, list[int]]:
    """One optimiser step at global step ``step``: the global batch cut into processes × accumulation chunks.
    A step whose loss or gradient norm is not finite is skipped, as mixed-precision
    loss scaling skips one: no update (the schedule still advances), so one bad batch cannot turn every
    weight into NaN through the clipped update (inf · 0). The gradient norm is taken with an infinite
    bound when there is no clipping, which leaves the gradients bit for bit as they were. Returns (loss,
    taken, the batch's [samples, pixels])."""
    acc, config = run.acc, run.config
    batch = run.data(config.batch_size, run.data_gen)
    size = list(batch_size_of(batch))
    micro, rest = divmod(size[0], acc.num_processes * config.accumulation)
    if rest or not micro:
        raise ValueError(f"train: a batch of {size[0]} samples does not divide into {acc.num_processes} processes "
                         f"x {config.accumulation} accumulation micro-batches")
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=acc.device)
    for j in range(config.accumulation):
        k = acc.process_index * config.accumulation + j
        gen = chunk_generator(config.seed, step, k, acc.device)
        snr = draw_snr(config.snr_db, micro, gen, acc.device)
        sync = j == config.accumulation - 1 or acc.num_processes == 1
        with nullcontext() if sync else acc.no_sync(objective):
            with acc.autocast():
                loss = objective(micro_batch(batch, k, micro, acc.device), snr, gen)
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
    return float(loss), taken, size


def _note_skipped(run: _Run, pos: Position, loss: float) -> None:
    """Record a skipped step (1-based) and say so; stop after MAX_NONFINITE skipped in a row."""
    pos.skipped.append(pos.step + 1)
    run.bar.write(f"{run.desc}: step {pos.step + 1} skipped (loss {loss:.4g}, or its gradient, is not finite)")
    recent = pos.skipped[-MAX_NONFINITE:]
    if len(recent) == MAX_NONFINITE and recent[0] == pos.step + 2 - MAX_NONFINITE:
        raise FloatingPointError(f"train: {MAX_NONFINITE} steps in a row up to step {pos.step + 1} had a non-finite "
                                 f"loss or gradient (last loss {loss}); lower the learning rate or check the data")


def _run_stage(run: _Run, stage: Stage, steps: int, pos: Position, extra: dict | None, frozen: set[str]) -> int:
    """Run (the rest of) one stage from ``pos``; returns its trainable parameter count."""
    params = _make_trainable(run.system, stage, frozen)
    optimizer = torch.optim.AdamW(params, lr=run.config.lr, weight_decay=run.config.weight_decay)
    factor = lr_factor(steps, run.config.warmup, run.config.lr_schedule)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if extra is not None and 0 < pos.stage_step < steps:
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
    elif pos.stage_step == 0 and stage.begin is not None:
        stage.begin()
    objective, optimizer = run.acc.prepare(_Objective(run.system, stage.loss), optimizer)
    objective.train()
    run.bar.set_description(f"{run.desc} [{stage.name}]")
    while pos.stage_step < steps and pos.step < run.last:
        loss, taken, size = _step(run, objective, optimizer, scheduler, params, pos.step)
        pos.losses.append(loss)
        pos.batches.append(size)
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
        TrainResult(losses, step, stages, skipped, resumed_from). ``system`` holds the trained weights (on
        the accelerator's device) and the requires_grad flags it was built with.
    """
    acc = accelerator or Accelerator(cpu=config.cpu, mixed_precision=config.mixed_precision)
    sizes = getattr(data, "sample_counts", lambda n: [n])(config.batch_size)      # a crop schedule: several
    if any(n % (acc.num_processes * config.accumulation) for n in sizes):
        raise ValueError(f"TrainConfig.batch_size {config.batch_size}: the data source's batches of {sizes} samples "
                         f"do not all divide into {acc.num_processes} processes x {config.accumulation} "
                         f"accumulation micro-batches")
    plan = system.plan()
    counts = stage_steps(plan, config.steps)
    run = _Run(acc, system, data, config, describe_plan(plan, config.steps), Path(out_dir) if out_dir else None,
               config.steps if stop_after is None else min(config.steps, stop_after), system_config,
               torch.Generator().manual_seed(config.seed * 1_000_003), desc)
    built = {name: p.requires_grad for name, p in system.named_parameters()}
    system.to(acc.device)
    pos, extra = (Position(), None) if run.out is None else resume_checkpoint(
        run.out, system, run.data_gen, config, run.plan, resume)
    resumed_from = pos.step
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
            records.append(stage_record(stage.name, pos, sum(counts[:i]), done, n, config.batch_size))
    finally:
        for name, p in system.named_parameters():
            p.requires_grad_(built[name])
        run.bar.close()
    return TrainResult(pos.losses, pos.step, tuple(records), tuple(pos.skipped), resumed_from)
