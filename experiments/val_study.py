"""The validation study at the test size (docs/val_study.md): train each variant at the ``small`` scale and
score it on BSDS500 `val` at the test grid, never on Kodak.

    python experiments/val_study.py --variants mambajscc,ours,paper --seed 0      # train (or resume) and score
    python experiments/val_study.py --report --to docs/val_study                   # apply the rule to what ran

Each variant (:mod:`experiments.val_study_variants`) is built on the ``small`` preset with its settings,
trained by the one loop under the preset's budget on kodak.py's training sources (BSDS500 `train`, the same
latent pool and seed), and received at its dial point on the first ``--images`` images of
:func:`jscgc.imagedata.val_grid` (256×384, the grid of Kodak ÷2) at each ``--snr``, scored by
:func:`jscgc.evaluation.evaluate` like every other run. Variants that share a training share its checkpoint.

Writes under ``--out`` (default results/val_study): ``seed<S>/train/<training variant>/`` (run.json and
checkpoints, resumed with the same record) and, per variant, ``seed<S>/<variant>/`` with ``metrics.csv``
(one row per receiver view, SNR and image), ``sets.csv`` (set measures with bootstrap intervals) and
``info.json`` (the variant, its plan, trainable parameters, examples and pixels seen, wall times), written
last: a variant with an info.json is finished and is skipped by a rerun unless ``--overwrite``.
``--report`` applies the rule of docs/val_study.md (:mod:`experiments.val_study_report`); ``--restore
docs/val_study`` first puts the committed variants back under ``--out`` (results/ does not travel between
machines), so that new variants are ranked beside them.
Every input is checked before any work (``val_study: …``, exit 2, nothing written).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from experiments.kodak_config import run_train_config, source_seed
from experiments.val_study_variants import VARIANTS, preset_of, training_of
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.evaluation import evaluate, image_seed, set_intervals
from jscgc.imagedata import FolderCrops, data_root, val_grid
from jscgc.io import atomic_save, atomic_write_json, run_in, source_version, unwritable_reason
from jscgc.crop_schedule import preset_sources
from jscgc.latents import load_extractor
from jscgc.methods import build_method
from jscgc.metrics import available_metrics
from jscgc.runs import data_fingerprint, refuse_other_record, run_record, train_or_load

TRAIN_DATA = "bsds500/train"
#: what the rule reads (PSNR, LPIPS-alex, DISTS, LPIPS-vgg) and what is read beside it; the slower measures
#: of kodak.py (LPIPS-squeeze, MS-SSIM, PSD distance, TAEF2-latent FD) are left to the final evaluation
METRICS = "psnr,psnr_lp16,colour_dist,hf_ratio,detail_match,lpips_alex,lpips_vgg,dists,patch_fd"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="mambajscc,ours,paper", help=f"comma list of {list(VARIANTS)}")
    p.add_argument("--seed", type=int, default=0, help="training seed (the evaluation noise uses it too)")
    p.add_argument("--images", type=int, default=24, help="the first N images of BSDS500 val (1-100)")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0], help="test SNRs (dB)")
    p.add_argument("--metrics", default=METRICS, help="comma list of jscgc.metrics names to score")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the set measures' intervals")
    p.add_argument("--data", default=None, help="data root with bsds500/ (else JSCGC_DATA, ../shared/data)")
    p.add_argument("--out", default="results/val_study")
    p.add_argument("--overwrite", action="store_true",
                   help="redo the named variants (and the trainings they own; a receive-only variant keeps its shared one)")
    p.add_argument("--report", action="store_true", help="only apply the rule to the finished variants")
    p.add_argument("--to", default=None, help="with --report: also copy the tables to this folder")
    p.add_argument("--versus", default=None, metavar="A,B",
                   help="with --report: also print receiver A − receiver B paired over images, per seed and pooled")
    p.add_argument("--restore", default=None, metavar="FOLDER",
                   help="first put the variants of an earlier --report --to FOLDER under --out as finished")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def check(argv):
    """argv -> (args, variant names, data root, val images, extractor, ready metrics); UsageError first."""
    a = parse_args(argv)
    names = checks.names("--variants", a.variants, list(VARIANTS))
    if not 1 <= a.images <= 100:
        raise UsageError(f"--images {a.images}: expected 1 to 100 (BSDS500 val has 100 images)")
    if not all(math.isfinite(s) for s in a.snr):
        raise UsageError(f"--snr {a.snr}: expected finite SNRs in dB")
    if a.bootstrap < 0:
        raise UsageError(f"--bootstrap {a.bootstrap}: expected resamples >= 0")
    why = unwritable_reason(Path(a.out))
    if why:
        raise UsageError(f"--out {a.out}: {why}")
    lacking = [f for f in ("metrics.csv", "runs.csv") if a.restore and not (Path(a.restore) / f).is_file()]
    if lacking:
        raise UsageError(f"--restore {a.restore}: expected the folder of an earlier --report --to (it lacks {lacking})")
    if a.versus is not None and (len(a.versus.split(",")) != 2 or not a.report):
        raise UsageError(f"--versus {a.versus}: expected two receivers, A,B, with --report")
    if a.report:
        return a, names, None, None, None, None
    try:
        root = data_root(a.data, need=TRAIN_DATA)
        images = val_grid(root, a.images)
        extractor = load_extractor("taef2")
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    from jscgc.metrics import METRICS as TABLE

    ready, missing = available_metrics(checks.names("--metrics", a.metrics, list(TABLE)), extractor=extractor)
    if missing:
        raise UsageError(f"--metrics: unavailable here: {missing}")
    return a, names, root, images, extractor, ready


def train_cfg(preset, seed: int, progress: bool):
    """kodak.py's training configuration, so an unchanged method's record is kodak.py's."""
    return run_train_config(preset, seed, progress, torch.cuda.is_available())


def dry_pass(names, images, extractor, seed: int, snrs) -> None:
    """One untrained one-step receive per training variant at its dial, so nothing fails after training."""
    x = images[0][1][None]
    for train_name in dict.fromkeys(training_of(n) for n in names):
        dials = {dataclasses.replace(VARIANTS[n].dial, steps=1) for n in names if training_of(n) == train_name}
        system = build_method(VARIANTS[train_name].method, preset_of(train_name), extractor).eval()
        for dial in dials:
            g = torch.Generator().manual_seed(image_seed(seed, "dry", snrs[0]))
            try:
                with torch.no_grad():
                    r = system.receive(system.transmit(x, snrs[0], g), dial, g, tuple(x.shape))
            except ValueError as err:
                raise UsageError(f"variant {train_name}: {err}") from None
            if not torch.isfinite(r.output).all():
                raise UsageError(f"variant {train_name} gives non-finite outputs ({dial.label()})")


class Study:
    """One seed's runs: the training sources are made once, on first need."""

    def __init__(self, a, root: Path, images, extractor, ready):
        self.a, self.root, self.images, self.extractor, self.ready = a, root, images, extractor, ready
        self.folder = Path(a.out) / f"seed{a.seed}"
        self.fingerprint = data_fingerprint(root / TRAIN_DATA)
        self._crops, self._sources = None, {}

    def sources(self, preset) -> dict:
        """The training sources of ``preset`` (made once per crop and schedule)."""
        key = (preset.crop, preset.crop_schedule, preset.latent_pool)
        if key not in self._sources:
            if self._crops is None:
                self._crops = FolderCrops(self.root / TRAIN_DATA, preset.crop)
            crops = self._crops if self._crops.size == (preset.crop, preset.crop) else self._crops.at(preset.crop)
            self._sources[key] = preset_sources(crops, preset, self.extractor, source_seed(self.a.seed))
        return self._sources[key]

    def record(self, name: str) -> tuple[dict, object]:
        v, preset = VARIANTS[training_of(name)], preset_of(name)
        cfg = train_cfg(preset, self.a.seed, not self.a.no_progress)
        return run_record(v.method, preset, cfg, TRAIN_DATA, self.fingerprint, self.a.seed), cfg

    def refuse_others(self, names) -> None:
        for n in names:
            if not self.a.overwrite:
                refuse_other_record(self.folder / "train" / training_of(n), self.record(n)[0], "--out")

    def run(self, name: str) -> None:
        variant, where = VARIANTS[name], self.folder / name
        train_name, preset = training_of(name), preset_of(name)
        record, cfg = self.record(name)
        torch.manual_seed(self.a.seed)
        system = build_method(variant.method, preset, self.extractor)
        info, train_s = train_or_load(system, self.folder / "train" / train_name, record, cfg,
                                      self.sources(preset).get(system.data), progress_label=f"train {train_name}")
        t0 = time.perf_counter()
        result = evaluate(system, name, self.images, self.a.snr, self.ready, seed=self.a.seed,
                          steps=variant.dial.steps, dial=variant.dial, progress=not self.a.no_progress)
        sets = set_intervals(self.images, result.stats, self.ready, self.a.bootstrap, self.a.seed, references=())
        eval_s = time.perf_counter() - t0
        write_variant(where, name, result.rows, sets, info, preset,
                      {"train_s": train_s, "eval_s": eval_s, "images": [n for n, _ in self.images],
                       "snrs": list(self.a.snr), "seed": self.a.seed})
        print(f"val_study: {name} done (train {train_s:.0f} s, eval {eval_s:.0f} s)", file=sys.stderr, flush=True)


def _pixels_seen(info: dict, preset) -> int | None:
    """The training pixels the loop counted, or for a run from before it counted them, examples x crop²
    (without a crop schedule every example is one base crop)."""
    if info.get("pixels") is not None:
        return info["pixels"]
    examples = info.get("examples")
    return None if examples is None or preset.crop_schedule else examples * preset.crop ** 2


def write_variant(where: Path, name: str, rows, sets, info, preset, extra) -> None:
    """metrics.csv, sets.csv, then info.json last (its presence marks the variant finished)."""
    import pandas as pd

    v = VARIANTS[name]
    atomic_save(where / "metrics.csv", lambda f: pd.DataFrame(rows).to_csv(f, index=False))
    atomic_save(where / "sets.csv", lambda f: sets.to_csv(f, index=False))
    atomic_write_json(where / "info.json", {
        "variant": name, "method": v.method, "description": v.description, "role": v.role,
        "trains": training_of(name), "dial": v.dial.as_dict(), "preset": preset.to_dict(),
        **{k: value for k, value in info.items() if k != "pixels"},
        "pixels_seen": _pixels_seen(info, preset),
        **extra, "torch": torch.__version__, "source": source_version()})


def _restore(a) -> None:
    """With ``--restore``: the committed variants put back under ``--out`` as finished (already finished: kept)."""
    if a.restore:
        from experiments.val_study_report import restore

        print(f"val_study: restored {len(restore(Path(a.restore), Path(a.out)))} finished variants from "
              f"{a.restore}", file=sys.stderr)


def main(argv=None) -> int:
    try:
        a, names, root, images, extractor, ready = check(argv)
        if a.report:
            from experiments.val_study_report import report

            _restore(a)
            report(Path(a.out), Path(a.to) if a.to else None)
            if a.versus:
                from experiments.val_study_report import load, versus

                try:
                    table = versus(load(Path(a.out)), *a.versus.split(",", 1))
                except ValueError as err:                  # a receiver no finished seed has
                    raise UsageError(f"--versus {a.versus}: {err}") from None
                print(table.to_string(index=False, float_format="%+.4f"))
            return 0
        study = Study(a, root, images, extractor, ready)
        study.refuse_others(names)
        dry_pass(names, images, extractor, a.seed, a.snr)
    except UsageError as err:
        print(f"val_study: {err}", file=sys.stderr)
        return 2

    def work():
        _restore(a)                                    # under the folder's lock, before any variant runs
        for name in names:
            where = study.folder / name
            if (where / "info.json").is_file() and not a.overwrite:
                print(f"val_study: {name} is finished in {where}; skipped (--overwrite redoes it)", file=sys.stderr)
                continue
            if a.overwrite:
                shutil.rmtree(where, ignore_errors=True)
                if training_of(name) == name:          # a receive-only variant keeps the training it shares
                    shutil.rmtree(study.folder / "train" / name, ignore_errors=True)
            study.run(name)
        return 0

    return run_in("val_study", Path(a.out), work, {"source": source_version()})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
