"""Run records: what a method's checkpoints were trained with, so a run resumes or loads only its own.

A results folder holds one folder per method: ``<method>/run.json`` (the record: method, preset, training
configuration, training data and its fingerprint, seed) and ``<method>/train/`` (the checkpoints of
:func:`jscgc.train.train`). A later run with the same record resumes or loads them; one with another record
is refused with one line saying what differs (:class:`jscgc.checks.UsageError`), never silently mixed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

from torch import nn

from jscgc.checks import UsageError
from jscgc.imagedata import image_files
from jscgc.io import atomic_write_json, read_json
from jscgc.checkpoints import check_checkpoint, latest_checkpoint, load_trained
from jscgc.plan import describe_plan, parameter_record
from jscgc.train import TrainConfig, train

__all__ = ["data_fingerprint", "run_record", "same_training", "refuse_other_record", "check_finished",
           "train_or_load"]


def data_fingerprint(folder: Path) -> str:
    """A hash of a training folder's image files (relative names and sizes): other data, another hash."""
    files = image_files(folder)
    listing = "\n".join(f"{f.relative_to(folder)}\t{f.stat().st_size}" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def run_record(name: str, preset, train_cfg: TrainConfig, train_data: str, fingerprint: str, seed: int) -> dict:
    """What a method's checkpoints must have been trained with to be resumed or loaded."""
    return {"method": name, "preset": preset.training_dict(), "train": dataclasses.asdict(train_cfg),
            "train_data": str(Path(train_data)), "train_data_files": fingerprint, "seed": seed}


def _as_stored(record: dict) -> dict:
    return json.loads(json.dumps(record, default=str))          # compared as JSON, as run.json stores it


def _comparable(record: dict) -> dict:
    """A stored record without what does not change the method's training: the settings of
    :attr:`TrainConfig.FREE` (a run with ``--no-progress`` loads one trained with a progress bar), and the
    preset's recipe for a method that does not read it (:attr:`jscgc.methods.Method.reads_recipe`), so a
    change of the ``jscgc`` recipe leaves the other methods' checkpoints usable."""
    from jscgc.methods import METHODS

    out = dict(record)
    if "train" in record:
        out["train"] = {k: v for k, v in record["train"].items() if k not in TrainConfig.FREE}
    method = METHODS.get(record.get("method"))
    if method is not None and not method.reads_recipe and isinstance(record.get("preset"), dict):
        out["preset"] = {k: v for k, v in record["preset"].items() if k != "recipe"}
    return out


def same_training(recorded: dict, wanted: dict) -> bool:
    """Whether checkpoints with the run record ``recorded`` are what ``wanted`` would train (as compared when a
    run resumes or loads: see :func:`_comparable`)."""
    return _comparable(_as_stored(recorded)) == _comparable(_as_stored(wanted))


def _difference(recorded: dict, wanted: dict) -> str:
    wanted = _as_stored(wanted)
    if recorded.get("preset", {}).get("name") != wanted["preset"]["name"]:
        return f"built with preset {recorded.get('preset', {}).get('name')}, this run uses {wanted['preset']['name']}"
    keys = [k for k in wanted if _comparable(recorded).get(k) != _comparable(wanted)[k]]
    return f"built with other settings ({', '.join(keys)})"


def refuse_other_record(folder: Path, wanted: dict, what: str) -> None:
    """Refuse a method folder whose run.json records other settings than ``wanted``, or that holds checkpoints
    without a record; a damaged record or checkpoint raises :class:`jscgc.io.DamagedFile` naming it."""
    path = folder / "run.json"
    recorded = read_json(path) if path.is_file() else None
    if recorded is not None and not same_training(recorded, wanted):
        raise UsageError(f"{what} {folder}: {_difference(recorded, wanted)}; "
                         f"pass --overwrite to start afresh or choose another --out")
    latest = latest_checkpoint(folder / "train")
    if recorded is None and latest is not None:
        raise UsageError(f"{what} {folder}: checkpoints without a run.json; pass --overwrite or another --out")
    if latest is not None:
        check_checkpoint(latest)


def check_finished(folder: Path, wanted: dict, what: str) -> None:
    """``folder`` holds the method, trained to the end with the settings ``wanted`` (for loading it)."""
    if not (folder / "run.json").is_file():
        raise UsageError(f"{what} {folder.parent}: no trained {wanted['method']} there ({folder / 'run.json'} "
                         f"is missing)")
    refuse_other_record(folder, wanted, what)
    state = read_json(latest_checkpoint(folder / "train") / "state.json", keys=("step", "plan"))
    total = sum(s["steps"] for s in state["plan"])
    if state["step"] != total:
        raise UsageError(f"{what} {folder}: training stopped at step {state['step']} of {total}")


def train_or_load(system: nn.Module, folder: Path, record: dict, train_cfg: TrainConfig, source=None,
                  checkpoint: Path | None = None, progress_label: str = "train") -> tuple[dict, float]:
    """Train ``system`` with the one loop into ``folder``/train (resuming a run with the same record), or,
    with ``checkpoint`` (a method folder of an earlier run), load its finished weights. Returns the method's
    entry of config.json (plan, parameter counts, examples seen, stages, final loss, the step it resumed from:
    its whole budget when ``folder`` held the finished training) and the wall seconds."""
    counts = parameter_record(system)
    info = {"parameters": counts.pop("total"), "plan": describe_plan(system.plan(), train_cfg.steps), **counts}
    if checkpoint is not None:
        info["loaded"] = str(load_trained(system, checkpoint / "train"))
        return info, 0.0
    atomic_write_json(folder / "run.json", record)
    start = time.perf_counter()
    result = train(system, source, train_cfg, out_dir=folder / "train", resume=True,
                   system_config=system.config(), desc=progress_label)
    last = result.losses[-20:]
    pixels = [r.pixels for r in result.stages]
    info.update(steps=result.step, examples=sum(r.examples for r in result.stages),
                pixels=None if None in pixels else sum(pixels),
                trainable_parameters=info["trainable_union"], stages=[r._asdict() for r in result.stages],
                skipped_steps=list(result.skipped), final_loss=sum(last) / max(1, len(last)),
                resumed_from_step=result.resumed_from)
    return info, time.perf_counter() - start
