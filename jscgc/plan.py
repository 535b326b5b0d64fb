"""A system's training plan as :func:`jscgc.train.train` reads it (it calls these, and so may anyone
without training): the optimiser steps of each stage and the learning-rate factor within one, the plan as
JSON, and which parameters each stage trains.

A plan is ``system.plan()``: an ordered tuple of :class:`~jscgc.types.Stage` (name, share of the budget,
objective, the name prefixes of the parameters it trains, what happens when it begins).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from torch import nn

from jscgc.types import Stage

__all__ = ["stage_steps", "describe_plan", "lr_factor", "trains", "trainable_counts", "parameter_record",
           "StageRecord", "stage_record"]


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


def lr_factor(steps: int, warmup: int, schedule: str) -> Callable[[int], float]:
    """Learning-rate factor at a stage's step (the stage has ``steps``): linear warm-up over ``warmup``
    steps, then ``schedule`` "constant" (1) or "cosine" (to 0 at ``steps``)."""
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            span = max(1, steps - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))
        return 1.0
    return f


def trains(stage: Stage, name: str, frozen: set[str]) -> bool:
    """Whether ``stage`` trains parameter ``name``: one of its name prefixes, never one frozen at build time."""
    return name not in frozen and any(name.startswith(prefix) for prefix in stage.trains)


def trainable_counts(system: nn.Module) -> dict[str, int]:
    """Parameters each stage of ``system.plan()`` trains, by the same rule as :func:`jscgc.train.train`
    (:func:`trains`: the stage's name prefixes, minus parameters frozen at build), without training:
    {stage name: count}."""
    frozen = {name for name, p in system.named_parameters() if not p.requires_grad}
    return {stage.name: sum(p.numel() for name, p in system.named_parameters() if trains(stage, name, frozen))
            for stage in system.plan()}


def parameter_record(system: nn.Module) -> dict:
    """The parameter counts config.json records for a system, by the rule :func:`jscgc.train.train` uses:

    ``total`` (every parameter), ``trainable_by_stage`` ({stage: count}), ``trainable_union`` (parameters
    trained by at least one stage: what the method learns), ``trainable_largest_stage`` (the most any one
    stage trains), and ``frozen_at_build`` ({module path: count} of the parameters frozen when the system
    was built, grouped by the widest module that is frozen whole, e.g. the pretrained TAEF2 ``extractor``
    of an image system). A two-stage method such as DiffJSCC trains different parameters per stage, so its
    union exceeds its largest stage."""
    names = dict(system.named_parameters())
    frozen = {n for n, p in names.items() if not p.requires_grad}
    stages = system.plan()
    union = {n for n in names for stage in stages if trains(stage, n, frozen)}
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


class StageRecord(NamedTuple):
    """What one stage of a run did: its name, optimiser steps, training examples seen, trainable parameters
    (-1 for a stage finished before a resume) and pixels of its image batches (None: not known)."""
    name: str
    steps: int
    examples: int
    trainable_parameters: int
    pixels: int | None = None


def stage_record(name: str, pos, start: int, done: int, trainable: int, batch_size: int) -> StageRecord:
    """The record of a stage that ran global steps [start, start + done) of a run at ``pos`` (a
    :class:`jscgc.checkpoints.Position`); where its batch sizes are not known (a checkpoint from before
    they were recorded), the asked batch size per step and unknown pixels."""
    if len(pos.batches) != pos.step:
        return StageRecord(name, done, done * batch_size, trainable, None)
    sizes = pos.batches[start:start + done]
    return StageRecord(name, done, sum(b[0] for b in sizes), trainable, sum(b[1] for b in sizes))
