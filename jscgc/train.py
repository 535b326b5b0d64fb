"""The one training loop, used by every experiment at every scale.

``train(system, data, config, out_dir)`` minimises ``system.loss(x0, snr_db, generator)`` — the
flow-matching objective (Eq. 10) for :class:`~jscgc.system.JSCGC`, MSE for the reference — with
accelerate handling devices and mixed precision, a tqdm progress bar, periodic checkpoints
written atomically, and resume from the latest checkpoint. On CPU a resumed run ends with
bit-identical weights to an uninterrupted one: every random number comes from two seeded
generators (data, and system: time, noise, channel) whose states are checkpointed.

A data source is any callable ``data(batch_size, generator) -> x0`` returning a CPU tensor
(B, *S); synthetic samplers and image datasets both fit (see ``jscgc.data``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from accelerate import Accelerator
from safetensors.torch import load_model, save_model
from torch import nn
from tqdm.auto import tqdm

from jscgc.io import atomic_dir, atomic_write_json

__all__ = ["TrainConfig", "TrainResult", "train", "train_stages", "latest_checkpoint", "load_weights",
           "load_trained"]

DataSource = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (saved beside every checkpoint).

    Attributes:
        steps: optimiser steps in total (a resumed run continues up to this number).
        batch_size: samples per optimiser step over all processes (the global batch).
        accumulation: micro-batches per process per step (gradient accumulation); the global batch
            is cut into processes × accumulation chunks, which must divide ``batch_size``.
        lr, weight_decay: AdamW.
        lr_schedule: ``"constant"`` or ``"cosine"`` (to 0 at ``steps``), after ``warmup`` steps.
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
        """Fields (other than steps/progress/checkpointing) that differ from a saved config."""
        free = {"steps", "progress", "checkpoint_every", "keep_checkpoints"}
        mine = dataclasses.asdict(self)
        return [k for k in mine if k not in free and k in other and other[k] != mine[k]]


class TrainResult(NamedTuple):
    """losses: the loss of every step from 1 to ``step`` (resumed runs included)."""
    losses: list[float]
    step: int


class _Objective(nn.Module):
    """Routes the system's loss through ``forward`` so that DDP/FSDP wrappers see the call."""

    def __init__(self, system: nn.Module):
        super().__init__()
        self.system = system

    def forward(self, x0, snr_db, generator):
        return self.system.loss(x0, snr_db, generator)


def _lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if config.warmup and step < config.warmup:
            return (step + 1) / config.warmup
        if config.lr_schedule == "cosine":
            span = max(1, config.steps - config.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup) / span)))
        return 1.0
    return f


def _draw_snr(config: TrainConfig, n: int, generator: torch.Generator, device) -> torch.Tensor:
    if isinstance(config.snr_db, list):
        lo, hi = config.snr_db
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)
    return torch.full((n,), float(config.snr_db), device=device)


def _chunk_generator(config: TrainConfig, step: int, chunk: int, device) -> torch.Generator:
    """The generator of chunk ``chunk`` of step ``step``: a function of (seed, step, chunk) only."""
    seed = ((config.seed * 1_000_003 + step) * 10_007 + chunk) % (2 ** 63)
    return torch.Generator(device=device).manual_seed(seed)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir/checkpoints`` or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp")
                  and (p / "state.json").exists())
    return done[-1] if done else None


def load_weights(system: nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint folder into ``system``; returns its state.json."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "model.safetensors").exists():
        raise FileNotFoundError(f"checkpoint: no model.safetensors in {checkpoint}")
    load_model(system, checkpoint / "model.safetensors")
    return json.loads((checkpoint / "state.json").read_text())


def _save(out_dir: Path, step: int, system: nn.Module, optimizer, scheduler, gens, losses,
          config: TrainConfig, system_config: dict | None) -> None:
    def fill(tmp: Path) -> None:
        save_model(system, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "generators": [g.get_state() for g in gens]}, tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {"step": step, "losses": losses,
                                               "train_config": dataclasses.asdict(config),
                                               "system_config": system_config})
    root = out_dir / "checkpoints"
    atomic_dir(root / f"step_{step:08d}", fill)
    old = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for p in old[:-config.keep_checkpoints]:
        shutil.rmtree(p, ignore_errors=True)


def train(system: nn.Module, data: DataSource, config: TrainConfig,
          out_dir: str | Path | None = None, resume: bool = True,
          stop_after: int | None = None, system_config: dict | None = None,
          accelerator: Accelerator | None = None, desc: str = "train") -> TrainResult:
    """Train ``system`` by minimising ``system.loss`` on batches from ``data``.

    Args:
        system: a module with ``loss(x0, snr_db, generator) -> scalar``.
        data: ``data(batch_size, generator) -> x0`` (CPU tensor (B, *S)).
        config: hyper-parameters.
        out_dir: where checkpoints go (``out_dir/checkpoints/step_XXXXXXXX``); None: none.
        resume: continue from the latest checkpoint in ``out_dir``. With ``resume=False`` an
            ``out_dir`` that already holds checkpoints is an error, never overwritten.
        stop_after: stop (and checkpoint) after this step even if ``config.steps`` is larger;
            this is what an interrupted run leaves behind.
        system_config: saved beside the weights (e.g. ``system.config()``).
        accelerator: an existing ``Accelerator``; one is made from the config if None.

    Returns:
        TrainResult(losses, step). ``system`` holds the trained weights (on the accelerator's
        device).
    """
    acc = accelerator or Accelerator(cpu=config.cpu, mixed_precision=config.mixed_precision)
    out = Path(out_dir) if out_dir is not None else None
    params = [p for p in system.parameters() if p.requires_grad]
    if not params:
        raise ValueError("train: the system has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    chunks = acc.num_processes * config.accumulation
    if config.batch_size % chunks:
        raise ValueError(f"TrainConfig.batch_size {config.batch_size} is not divisible into {acc.num_processes} "
                         f"processes x {config.accumulation} accumulation micro-batches")
    micro = config.batch_size // chunks
    data_gen = torch.Generator().manual_seed(config.seed * 1_000_003)
    losses: list[float] = []
    step = 0

    ckpt = latest_checkpoint(out) if out is not None else None
    if ckpt is not None and not resume:
        raise FileExistsError(f"train: {out} already holds checkpoints ({ckpt.name}); "
                              "pass resume=True to continue or choose another out_dir")
    system.to(acc.device)
    if ckpt is not None:
        state = load_weights(system, ckpt)
        bad = config.resumable_from(state["train_config"])
        if bad:
            raise ValueError(f"train: cannot resume {ckpt}: the config differs in {bad}")
        extra = torch.load(ckpt / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        data_gen.set_state(extra["generators"][0])
        losses, step = list(state["losses"]), int(state["step"])

    objective, optimizer = acc.prepare(_Objective(system), optimizer)
    last = config.steps if stop_after is None else min(config.steps, stop_after)
    bar = tqdm(total=config.steps, initial=step, desc=desc, disable=not config.progress or not acc.is_main_process,
               leave=False, dynamic_ncols=True)
    objective.train()
    while step < last:
        batch = data(config.batch_size, data_gen)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=acc.device)
        for j in range(config.accumulation):
            k = acc.process_index * config.accumulation + j
            x0 = batch[k * micro:(k + 1) * micro].to(acc.device)
            gen = _chunk_generator(config, step, k, acc.device)
            snr = _draw_snr(config, micro, gen, acc.device)
            sync = j == config.accumulation - 1 or acc.num_processes == 1
            with nullcontext() if sync else acc.no_sync(objective):
                with acc.autocast():
                    loss = objective(x0, snr, gen)
                acc.backward(loss / config.accumulation)
            total += loss.detach().float() / config.accumulation
        loss = acc.reduce(total, reduction="mean") if acc.num_processes > 1 else total
        if not torch.isfinite(loss):
            raise FloatingPointError(f"train: the loss became {loss.item()} at step {step + 1}")
        if config.grad_clip is not None:
            acc.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        losses.append(float(loss))
        bar.update(1)
        if step % 10 == 0 or step == last:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.4f}")
        at_period = config.checkpoint_every and step % config.checkpoint_every == 0
        if out is not None and acc.is_main_process and (at_period or step == last):
            if latest_checkpoint(out) is None or latest_checkpoint(out).name != f"step_{step:08d}":
                _save(out, step, acc.unwrap_model(objective).system, optimizer, scheduler,
                      (data_gen,), losses, config, system_config)
    bar.close()
    objective.eval()
    return TrainResult(losses, step)


def _stage_dir(out_dir: str | Path | None, system: nn.Module, stage: str) -> Path | None:
    if out_dir is None:
        return None
    return Path(out_dir) / stage if getattr(system, "stages", None) else Path(out_dir)


def train_stages(system: nn.Module, data: DataSource, config: TrainConfig,
                 out_dir: str | Path | None = None, desc: str = "train", **kwargs) -> dict[str, TrainResult]:
    """Run :func:`train` once per training stage of ``system``.

    A system trained in stages (e.g. :class:`~jscgc.baselines.DiffJSCC`) names them in ``stages`` and
    switches objective (and frozen parts) with ``set_stage(name)``; each stage gets ``config`` — with
    ``steps`` replaced where the system's ``stage_steps`` names a stage — and its own checkpoint folder
    ``out_dir/<stage>`` (resumed like any run). Other systems train once, in ``out_dir``.

    Returns:
        {stage: TrainResult}; {"train": TrainResult} for a single-stage system.
    """
    stages = getattr(system, "stages", None)
    if not stages:
        return {"train": train(system, data, config, out_dir, desc=desc, **kwargs)}
    results = {}
    steps = getattr(system, "stage_steps", {})
    for stage in stages:
        system.set_stage(stage)
        cfg = dataclasses.replace(config, steps=steps[stage]) if stage in steps else config
        results[stage] = train(system, data, cfg, _stage_dir(out_dir, system, stage),
                               desc=f"{desc} [{stage}]", **kwargs)
    return results


def load_trained(system: nn.Module, out_dir: str | Path) -> Path:
    """Load the final weights that :func:`train_stages` left under ``out_dir`` (its last stage's
    latest checkpoint, which holds every part); returns the checkpoint folder."""
    stages = getattr(system, "stages", None)
    where = _stage_dir(out_dir, system, stages[-1] if stages else "")
    ckpt = latest_checkpoint(where)
    if ckpt is None:
        raise FileNotFoundError(f"checkpoint: no checkpoint under {where}")
    load_weights(system, ckpt)
    return ckpt
