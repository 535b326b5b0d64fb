"""Checkpoint storage of the training loop (:func:`jscgc.train.train`): writing, finding, validating and
loading the folders ``out_dir/checkpoints/step_XXXXXXXX`` (the global step, zero-padded).

A checkpoint folder holds ``model.safetensors`` (the system's weights), ``optimizer.pt`` (the stage's
optimiser and learning-rate schedule and the data generator's state) and ``state.json`` (plan, stage and
steps reached, losses, skipped steps, the training and system configs). It is written through a temporary
folder and a rename (:func:`jscgc.io.atomic_dir`), so a folder that exists is complete; every read is
validated, and a damaged file is a :class:`jscgc.io.DamagedFile` that names it.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from jscgc.io import DamagedFile, atomic_dir, atomic_write_json, read_json

__all__ = ["latest_checkpoint", "read_state", "load_weights", "optimizer_state", "check_checkpoint",
           "load_trained", "Position", "save_checkpoint", "resume_checkpoint"]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir/checkpoints`` or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and (p / "state.json").exists())
    return done[-1] if done else None


def read_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's state.json, validated (:class:`jscgc.io.DamagedFile` names a damaged one)."""
    return read_json(checkpoint / "state.json", keys=("step", "stage", "stage_step", "plan", "losses", "train_config"))


def load_weights(system: nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint folder into ``system``; returns its state.json. A file that
    cannot be read is a :class:`jscgc.io.DamagedFile` naming it; weights of another model a ValueError."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / "model.safetensors").exists():
        raise FileNotFoundError(f"checkpoint: no model.safetensors in {checkpoint}")
    state = read_state(checkpoint)
    try:
        load_model(system, checkpoint / "model.safetensors")
    except RuntimeError as err:                                   # keys or shapes of another model
        if "safetensor" in type(err).__name__.lower():
            raise DamagedFile(checkpoint / "model.safetensors", str(err).splitlines()[0]) from None
        raise ValueError(f"checkpoint {checkpoint} holds weights of another model ({str(err).splitlines()[0][:200]})") from None
    except Exception as err:                                      # a truncated or zeroed file
        raise DamagedFile(checkpoint / "model.safetensors", f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    return state


def optimizer_state(checkpoint: Path) -> dict[str, Any]:
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
    read_state(checkpoint)
    try:
        with safe_open(checkpoint / "model.safetensors", framework="pt") as f:
            list(f.keys())
    except Exception as err:
        raise DamagedFile(checkpoint / "model.safetensors", f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else 'unreadable'}") from None
    optimizer_state(checkpoint)


def load_trained(system: nn.Module, out_dir: str | Path) -> Path:
    """Load the final weights a finished :func:`jscgc.train.train` left under ``out_dir``; returns the
    checkpoint folder. A run stopped before the end of its plan is an error that says where it stopped."""
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
class Position:
    """Where a run is, as its checkpoints record it: stage index, optimiser steps done in that stage and in
    all, the loss of every step so far, the (1-based) steps skipped because a loss or gradient was not
    finite, and the [samples, pixels] of every step's batch (:func:`jscgc.chunks.batch_size_of`; a
    checkpoint written before they were recorded has [] here)."""
    stage: int = 0
    stage_step: int = 0
    step: int = 0
    losses: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    batches: list = field(default_factory=list)


def save_checkpoint(out: Path, pos: Position, system: nn.Module, optimizer, scheduler, generator: torch.Generator,
                    record: dict[str, Any], keep: int) -> None:
    """Write ``out/checkpoints/step_<pos.step>``: the weights of ``system`` (model.safetensors); the state
    dicts of ``optimizer`` and ``scheduler`` and the state of the data ``generator`` (optimizer.pt); and
    state.json, ``pos`` with ``record`` (the run's "plan", "train_config" and "system_config"). A step
    already saved is left as it is; only the ``keep`` newest folders are kept."""
    def fill(tmp: Path) -> None:
        save_model(system, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "generators": [generator.get_state()]}, tmp / "optimizer.pt")
        atomic_write_json(tmp / "state.json", {**asdict(pos), **record})
    root = out / "checkpoints"
    if (root / f"step_{pos.step:08d}").exists():
        return
    atomic_dir(root / f"step_{pos.step:08d}", fill)
    old = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def resume_checkpoint(out: Path, system: nn.Module, generator: torch.Generator, config, plan: list[dict[str, Any]],
                      resume: bool) -> tuple[Position, dict[str, Any] | None]:
    """Where the latest checkpoint under ``out`` left its run, with the weights loaded into ``system`` and
    the data ``generator`` restored, and its optimizer.pt; or (a fresh :class:`Position`, None) when there
    is no checkpoint. Stale temporary folders of an interrupted checkpoint write are removed first. Errors:
    checkpoints present with ``resume=False``; a checkpoint whose training config
    (:meth:`jscgc.train.TrainConfig.resumable_from`) or plan (``plan``, as :func:`jscgc.plan.describe_plan`
    writes it) differs from this run's."""
    for stale in (out / "checkpoints").glob(".step_*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = latest_checkpoint(out)
    if ckpt is None:
        return Position(), None
    if not resume:
        raise FileExistsError(f"train: {out} already holds checkpoints ({ckpt.name}); "
                              "pass resume=True to continue or choose another out_dir")
    state = load_weights(system, ckpt)
    bad = config.resumable_from(state["train_config"])
    if bad:
        raise ValueError(f"train: cannot resume {ckpt}: the config differs in {bad}")
    if state.get("plan") != plan:
        raise ValueError(f"train: cannot resume {ckpt}: it was made with the plan {state.get('plan')}, this run's "
                         f"plan is {plan}")
    extra = optimizer_state(ckpt)
    generator.set_state(extra["generators"][0])
    return Position(state["stage"], state["stage_step"], state["step"], list(state["losses"]),
                    list(state.get("skipped", [])), list(state.get("batches", []))), extra
