"""Kodak: train (or resume, or load) each method at a preset's scale, then evaluate on Kodak.

    python experiments/kodak.py --preset tiny --images kodim01,kodim23 --snr 0 10 --out results/kodak_tiny
    python experiments/kodak.py --preset default --methods jscgc,mambajscc,cjscc,diffjscc,necst   # one GPU
    python experiments/kodak.py --preset tiny --channel rayleigh      # every method over Rayleigh fading
    accelerate launch --config_file configs/accelerate_zero3.yaml experiments/kodak.py --preset full \
        --zimage /path/to/Z-Image                                                       # the paper's setting

Every input is checked before any work (``kodak: …``, exit 2, nothing written): finite SNRs, image sizes
that the encoders' tokens tile, a readable training folder, a writable ``--out``, a ``--checkpoint`` built
with this run's settings, an existing local ``--zimage``; then one untrained transmit → receive → metrics
pass per method, image shape and SNR, so nothing fails after long work.

Every method of :mod:`jscgc.methods` named in ``--methods`` is trained with the one loop
(:func:`jscgc.train.train` running the method's plan, all stages within the preset's step budget, so every
method sees the same number of training examples; checkpoints under ``--out/<method>/train``, resumed only
when ``<method>/run.json`` records the same settings) on random crops of ``--train-data`` (BSDS500 `train`
by default), all of them first (with ``--workers N`` on a CPU, in N forked processes that share the
threads, :mod:`jscgc.forked`); then each is evaluated on the Kodak images for each SNR with ``--steps``
Euler steps and ``--samples`` samples per ŷ. A receiver that anchors its sample (``jscgc``) is scored
three times: its output, its generator's own sample as ``<method> (sample)``, and μ(ŷ), the MSE estimate
whose coarse band the output copies, as ``<method> μ(ŷ)``.

Writes under ``--out``: ``metrics.csv`` (one row per receiver, SNR, image, sample; a column per metric;
unavailable metrics left empty and listed with reasons in ``config.json``), ``summary.csv`` (means per receiver
and SNR, plus the set metrics), ``sets.csv`` (each set metric per receiver and SNR with its 95 % paired bootstrap
interval over images, and paired differences against mambajscc and diffjscc), ``table.md`` (mean ± s.e. over
images, and paired differences against mambajscc when it ran), ``config.json`` (settings, per-method plan,
examples seen, trainable parameters, the step its training resumed from: the whole budget where it was loaded
finished), ``timings.json`` (wall times: the only file that differs between identical runs), ``recon/`` (PNG
reconstructions of ``--figure-images``), and the figures ``fig3_*`` and ``fig4_metrics``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from experiments.kodak_config import (KodakConfig, check_out, check_zimage, configure, dry_pass, source_seed,
                                      estimate_cpu_seconds, prepare_out, train_config)
from experiments.kodak_results import write_results
from jscgc.checks import UsageError  # (one line ``kodak: …``, exit 2)
from jscgc.evaluation import evaluate, set_intervals
from jscgc.imagedata import FolderCrops, data_root, kodak
from jscgc.io import DamagedFile, atomic_save, folder_name, run_in, source_version
from jscgc.checkpoints import load_trained
from jscgc.crop_schedule import preset_sources
from jscgc.forked import forked_map
from jscgc.latents import load_extractor
from jscgc.methods import METHODS, build_method
from jscgc.metrics import available_metrics
from jscgc.presets import get_preset
from jscgc.runs import check_finished, data_fingerprint, refuse_other_record, run_record, train_or_load


@dataclass
class Setup:
    """Everything the checks established for one :class:`KodakConfig`; nothing has been written yet."""
    config: KodakConfig
    preset: object
    images: list
    train_cfg: object
    out: Path
    extractor: object
    ready: dict
    missing: dict
    device: torch.device
    records: dict
    data: FolderCrops | None = None
    source: dict | None = None       # the code this run runs (jscgc.io.source_version), taken before any work


def _check_images(config: KodakConfig, preset, root) -> list:
    try:
        images = kodak(root, names=list(config.images) if config.images else None, crop=config.crop,
                       downscale=config.downscale or preset.test_downscale)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    tile = preset.token_px
    for name, image in images:
        h, w = image.shape[1:]
        if h % tile or w % tile:
            side = min(h, w) // tile * tile
            hint = f"use --crop {side}" if side >= tile else f"it is smaller than one {tile}x{tile} token"
            raise UsageError(f"image {name} is {w}x{h} after cropping; the encoders need sides that are "
                             f"multiples of {tile} ({hint})")
    return images


def _check_records(config: KodakConfig, out: Path, records: dict) -> None:
    """--checkpoint holds every method, finished, with this run's settings; or --out holds none of another."""
    for m in config.methods:
        if config.checkpoint:
            check_finished(config.checkpoint / m, records[m], "--checkpoint")
        elif not config.overwrite:
            refuse_other_record(out / m, records[m], "--out")


def check_inputs(config: KodakConfig) -> Setup:
    """Every check that can fail, before anything is trained or written (raises UsageError)."""
    overrides = {k: v for k, v in (("zimage", config.zimage), ("channel", config.channel)) if v}
    preset = get_preset(config.preset, **overrides)
    out = config.out or Path(f"results/kodak_{preset.name}")
    check_out(config, out)
    check_zimage(config, preset)
    try:
        root = data_root(config.data, need="kodak")
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    images = _check_images(config, preset, root)
    cuda = torch.cuda.is_available()
    if cuda and config.workers > 1:
        raise UsageError(f"--workers {config.workers}: expected 1 with a CUDA GPU (workers share a CPU's threads)")
    train_cfg = train_config(config, preset, cuda)
    try:
        fingerprint = data_fingerprint(root / config.train_data)
    except FileNotFoundError as err:
        raise UsageError(f"--train-data: {err}") from None
    records = {m: run_record(m, preset, train_cfg, config.train_data, fingerprint, config.seed) for m in config.methods}
    _check_records(config, out, records)
    try:
        extractor = load_extractor(preset.latents, config.weights if preset.latents == "taef2" else config.zimage)
        taef2 = extractor if preset.latents == "taef2" else load_extractor("taef2", config.weights)
        data = None if config.checkpoint else FolderCrops(root / config.train_data, preset.crop)
    except (FileNotFoundError, ValueError) as err:       # ImageError is a ValueError
        raise UsageError(str(err)) from None
    ready, missing = available_metrics(None, extractor=taef2)
    return Setup(config, preset, images, train_cfg, out, extractor, ready, missing,
                 torch.device("cuda" if cuda else "cpu"), records, data, source_version())


def _save_png(path: Path, image: torch.Tensor) -> None:
    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    atomic_save(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def _keep_figures(setup: Setup):
    """The ``keep`` of :func:`jscgc.evaluation.evaluate`: PNGs of the --figure-images under recon/."""
    def keep(label, snr, name, x_hat):
        if name in setup.config.figure_images:
            _save_png(setup.out / "recon" / folder_name(label) / f"snr{snr:+g}" / f"{name}.png", x_hat[0])
    return keep


def _evaluate(name: str, system, setup: Setup):
    config = setup.config
    return evaluate(system, name, setup.images, config.snrs, setup.ready, seed=config.seed, steps=config.steps,
                    samples=config.samples if METHODS[name].stochastic else 1, dials=config.dials[name],
                    device=setup.device, keep=_keep_figures(setup), progress=config.progress)


def _train_all(setup: Setup, sources: dict) -> dict[str, tuple[dict, float]]:
    """Every method trained (resumed, or loaded from --checkpoint) by :func:`train_or_load`: method -> (its
    config.json entry, wall seconds). With ``--workers`` > 1 the methods train in forked processes that
    share the CPU's threads (:func:`jscgc.forked.forked_map`), started in the --methods order."""
    config = setup.config

    def one(name: str) -> tuple[dict, float]:
        torch.manual_seed(config.seed)
        system = build_method(name, setup.preset, setup.extractor)
        return train_or_load(system, setup.out / name, setup.records[name], setup.train_cfg, sources.get(system.data),
                             config.checkpoint / name if config.checkpoint else None, progress_label=f"train {name}")

    return dict(zip(config.methods, forked_map(one, config.methods, config.workers)))


def run(setup: Setup) -> None:
    """Train (or load) every method, then evaluate each, then write the results and figures."""
    config, start = setup.config, time.perf_counter()
    prepare_out(setup)
    rows, stats, info, seconds = [], {}, {}, {}
    sources = ({} if setup.data is None
               else preset_sources(setup.data, setup.preset, setup.extractor, source_seed(config.seed)))
    t0 = time.perf_counter()
    trained = _train_all(setup, sources)
    seconds["train_all"] = time.perf_counter() - t0
    for name in config.methods:
        info[name], seconds[f"train_{name}"] = trained[name]
        torch.manual_seed(config.seed)
        system = build_method(name, setup.preset, setup.extractor)
        load_trained(system, (config.checkpoint or setup.out) / name / "train")
        system.to(setup.device)
        t0 = time.perf_counter()
        result = _evaluate(name, system, setup)
        seconds[f"eval_{name}"] = time.perf_counter() - t0
        rows += result.rows
        for snr, by_label in result.stats.items():
            stats.setdefault(snr, {}).update(by_label)
        del system
    for img_name, image in setup.images:
        if img_name in config.figure_images:
            _save_png(setup.out / "recon" / "ground_truth" / f"{img_name}.png", image)
    t0 = time.perf_counter()
    sets = set_intervals(setup.images, stats, setup.ready, config.bootstrap, config.seed)
    seconds["set_intervals"] = time.perf_counter() - t0
    seconds["wall"] = time.perf_counter() - start
    write_results(setup, rows, sets, info, seconds)
    if config.figures:
        from paper_figures.kodak import draw

        draw(setup.out)
    print(f"kodak: wrote {setup.out} in {seconds['wall']:.1f} s")


def _checked(argv) -> Setup:
    config = configure(argv, __doc__)
    try:
        setup = check_inputs(config)
    except (DamagedFile, FileNotFoundError) as err:      # a damaged run record or checkpoint, a missing folder
        raise UsageError(str(err)) from None
    if setup.device.type == "cpu" and setup.preset.name not in ("tiny", "small") and not config.yes:
        hours = estimate_cpu_seconds(setup) / 3600
        raise UsageError(f"no CUDA GPU here; --preset {setup.preset.name} would take about {hours:.0f} h on this "
                         f"CPU. Run `python experiments/kodak.py --preset tiny` for a CPU smoke run, or pass --yes")
    dry_pass(setup)
    return setup


def main(argv: list[str] | None = None) -> int:
    try:
        setup = _checked(argv)
    except UsageError as err:
        print(f"kodak: {err}", file=sys.stderr)
        return 2
    print(f"kodak: inputs checked; estimated {estimate_cpu_seconds(setup) / 60:.0f} min on this CPU"
          if setup.device.type == "cpu" else "kodak: inputs checked", file=sys.stderr)
    return run_in("kodak", setup.out, lambda: run(setup) or 0, {"source": setup.source})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
