"""The Kodak run's configuration, built once from argv and checked before any work (experiments/kodak.py).

:func:`configure` turns the command line into one typed :class:`KodakConfig` (every number checked, the
``--dial`` points parsed); :func:`check_outputs` and :func:`dry_pass` establish that nothing can fail after
training. Each failure is one :class:`jscgc.checks.UsageError` line naming the input and what is expected.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from jscgc.channel_registry import CHANNELS, check_channel, check_pairing
from jscgc.checks import UsageError
from jscgc.evaluation import image_seed
from jscgc.io import is_complete, unwritable_reason
from jscgc.methods import METHODS, build_method
from jscgc.metrics import evaluate_images, evaluate_sets
from jscgc.presets import PRESETS
from jscgc.types import Dial

__all__ = ["KodakConfig", "parse_args", "configure", "check_out", "check_zimage", "source_seed", "train_config",
           "run_train_config", "dry_pass", "prepare_out", "estimate_cpu_seconds"]

FIGURE_IMAGES = "kodim01,kodim05,kodim15,kodim23"


@dataclass(frozen=True)
class KodakConfig:
    """One Kodak run, as the command line asked for it (see ``python experiments/kodak.py --help``)."""
    preset: str
    channel: str | None              # None: the preset's (awgn)
    methods: tuple[str, ...]
    snrs: tuple[float, ...]
    steps: int
    samples: int
    dials: dict                      # method -> tuple of extra Dial points
    images: tuple[str, ...] | None
    crop: int | None
    downscale: int | None
    figure_images: tuple[str, ...]
    data: str | None
    train_data: str
    train_steps: int | None
    batch_size: int | None
    checkpoint: Path | None
    zimage: str | None
    weights: str | None
    out: Path | None
    seed: int
    bootstrap: int
    overwrite: bool
    yes: bool
    figures: bool
    progress: bool
    workers: int = 1                 # forked training processes on a CPU (jscgc.forked)

    def recorded(self) -> dict:
        """The settings as config.json records them (where the results went is not a setting)."""
        kept = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("out", "progress", "dials")}
        kept["dials"] = {m: [d.as_dict() for d in ds] for m, ds in self.dials.items()}
        return kept


def parse_args(argv, description: str | None = None):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--methods", default="jscgc,mambajscc", help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--channel", default=None,
                   help=f"the channel every method is built with, one of {', '.join(CHANNELS)} (NAME or NAME:VALUE, "
                        f"see jscgc.channel_registry; default: the preset's, awgn)")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0], help="test SNRs (dB)")
    p.add_argument("--steps", type=int, default=9, help="Euler steps of the generator")
    p.add_argument("--samples", type=int, default=1, help="samples per ŷ for stochastic receivers")
    p.add_argument("--dial", action="append", default=[], metavar="SETTINGS",
                   help="an extra operating point of the --dial-methods receivers (jscgc.types.Dial), e.g. "
                        "'samples=4' or 'prior_noise=0.1,anchor=0'; repeat for more; scored as '<method> [<settings>]'")
    p.add_argument("--dial-methods", default="jscgc", help="comma list of the methods the --dial points apply to")
    p.add_argument("--images", default=None, help="comma list of Kodak names (default: all 24)")
    p.add_argument("--crop", type=int, default=None, help="centre-crop the Kodak images (default: whole images)")
    p.add_argument("--downscale", type=int, default=None,
                   help="box-downscale the Kodak images by this factor (default: the preset's, 2 for small)")
    p.add_argument("--figure-images", default=FIGURE_IMAGES, help="images saved as PNG for Fig. 3")
    p.add_argument("--data", default=None, help="data root with kodak/ and bsds500/ (else JSCGC_DATA)")
    p.add_argument("--train-data", default="bsds500/train",
                   help="training image folder (relative to the data root, or an absolute path)")
    p.add_argument("--train-steps", type=int, default=None,
                   help="override the preset's step budget (all stages of a method together)")
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--checkpoint", default=None,
                   help="a previous --out: load its <method>/train checkpoints instead of training")
    p.add_argument("--zimage", default=None, help="Z-Image checkpoint folder or hub id (preset full)")
    p.add_argument("--weights", default=None, help="TAEF2 weights folder (default <JSCGC_WEIGHTS>/taef2)")
    p.add_argument("--out", default=None, help="output folder (default results/kodak_<preset>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="resamples of the images for the set measures' paired intervals (sets.csv); 0: none")
    p.add_argument("--overwrite", action="store_true", help="start afresh: replace results and checkpoints in --out")
    p.add_argument("--yes", action="store_true", help="run a non-tiny preset on a CPU anyway")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--workers", type=int, default=1,
                   help="CPU only: train the methods in this many forked processes sharing the threads, started in "
                        "the --methods order (name the longest first); evaluation stays in this process")
    return p.parse_args(argv)


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _check_numbers(args) -> None:
    if args.steps < 1 or args.samples < 1:
        raise UsageError(f"--steps {args.steps} / --samples {args.samples}: expected integers >= 1")
    nonfinite = [s for s in args.snr if not math.isfinite(s)]
    if nonfinite:
        raise UsageError(f"--snr {' '.join(map(str, nonfinite))}: expected finite SNRs in dB")
    for flag, value, what in (("--crop", args.crop, "a positive size in pixels (omit it for whole images)"),
                              ("--downscale", args.downscale, "an integer factor >= 1"),
                              ("--train-steps", args.train_steps, "a positive step budget"),
                              ("--workers", args.workers, "a number of training processes >= 1")):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: expected {what}")
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap {args.bootstrap}: expected a number of resamples >= 0 (0: no intervals)")


def _check_dials(args, methods: list[str]) -> dict:
    """The --dial points by method, parsed over the run's own Euler steps (a point naming none uses --steps)."""
    dial_methods = _names(args.dial_methods)
    if args.dial and not set(dial_methods) <= set(methods):
        raise UsageError(f"--dial-methods {args.dial_methods!r}: expected some of the --methods {methods}")
    dials = []
    for text in args.dial:
        try:
            dials.append(Dial.parse(text, base=Dial(steps=args.steps)))
        except ValueError as err:
            raise UsageError(f"--dial {text!r}: {err}") from None
    if len({d.label() for d in dials} | {Dial(steps=args.steps).label()}) != len(dials) + 1:
        raise UsageError(f"--dial {args.dial}: expected distinct points, none equal to the default receiver")
    return {m: tuple(dials) if m in dial_methods else () for m in methods}


def _check_channel(name: str | None, methods: list[str]) -> None:
    """--channel names a registered channel that every method can be sent over."""
    if name is None:
        return
    try:
        check_channel(name)
        for m in methods:
            check_pairing(m, METHODS[m].binary, name)
    except ValueError as err:
        raise UsageError(f"--channel {name}: {err}") from None


def configure(argv, description: str | None = None) -> KodakConfig:
    """argv -> the checked :class:`KodakConfig` (UsageError on a bad number, method or dial)."""
    args = parse_args(argv, description)
    methods = _names(args.methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"--methods {args.methods!r}: unknown {bad}; expected some of {sorted(METHODS)}")
    _check_numbers(args)
    _check_channel(args.channel, methods)
    return KodakConfig(
        preset=args.preset, channel=args.channel, methods=tuple(methods), snrs=tuple(args.snr), steps=args.steps, samples=args.samples,
        dials=_check_dials(args, methods), images=tuple(_names(args.images)) or None, crop=args.crop,
        downscale=args.downscale, figure_images=tuple(_names(args.figure_images)), data=args.data,
        train_data=args.train_data, train_steps=args.train_steps, batch_size=args.batch_size,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None, zimage=args.zimage, weights=args.weights,
        out=Path(args.out) if args.out else None, seed=args.seed, bootstrap=args.bootstrap,
        overwrite=args.overwrite, yes=args.yes, figures=not args.no_figures, progress=not args.no_progress,
        workers=args.workers)


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_out(config: KodakConfig, out: Path) -> None:
    """``out`` is writable, not a finished run (without --overwrite), and not holding the --checkpoint that
    --overwrite would delete."""
    if is_complete(out) and not config.overwrite:
        raise UsageError(f"{out} holds a finished run ({out / 'complete.json'}); pass --overwrite or another --out")
    if config.overwrite and config.checkpoint and _inside(config.checkpoint, out):
        raise UsageError(f"--checkpoint {config.checkpoint} lies in --out {out}, and --overwrite would delete what "
                         f"this run reads; choose another --out")
    why = unwritable_reason(out)
    if why:
        raise UsageError(f"--out {out}: {why}")


def check_zimage(config: KodakConfig, preset) -> None:
    where = config.zimage or (preset.zimage if preset.latents == "flux" else None)
    if where is None:
        return
    looks_local = where.startswith(("/", "./", "../", "~")) or Path(where).exists()
    if looks_local and not Path(where).expanduser().is_dir():
        raise UsageError(f"--zimage {where}: no such folder (a local Z-Image checkpoint folder is expected)")
    if not looks_local:
        raise UsageError(f"--zimage {where}: not a local folder; this package loads no weights from a model hub "
                         f"(download the checkpoint and pass its folder)")


def source_seed(seed: int) -> int:
    """The seed of the training sources' draws (:func:`jscgc.crop_schedule.preset_sources`) for a run of
    ``--seed seed``; kodak.py, val_study.py and bench/train_workers.py share it, so equal runs draw equal crops."""
    return seed + 12345


def train_config(config: KodakConfig, preset, cuda: bool):
    """The preset's training configuration with this run's seed, step budget and batch size."""
    return run_train_config(preset, config.seed, config.progress, cuda, config.train_steps, config.batch_size)


def run_train_config(preset, seed: int, progress: bool, cuda: bool, steps: int | None = None,
                     batch_size: int | None = None):
    """The preset's training configuration as a run uses it (every runner that shares kodak.py's checkpoints
    builds it here): the seed, the progress bar, the CPU without mixed precision where there is no GPU."""
    kw = dict(seed=seed, progress=progress, cpu=not cuda)
    if steps is not None:
        kw["steps"] = steps
    if batch_size is not None:
        kw["batch_size"] = batch_size
    if not cuda:
        kw["mixed_precision"] = "no"
    try:
        return dataclasses.replace(preset.train, **kw)
    except ValueError as err:
        raise UsageError(str(err)) from None


def estimate_cpu_seconds(setup) -> float:
    per_step = setup.preset.est_seconds_per_step_cpu
    steps = 0 if setup.config.checkpoint else setup.train_cfg.steps
    return len(setup.config.methods) * (steps + len(setup.images) * len(setup.config.snrs) * setup.config.steps / 4) * per_step


def dry_pass(setup) -> None:
    """One untrained transmit → receive pass per method, image shape and SNR (one Euler step), and the
    metrics once per image shape, so that no size or SNR can fail after training."""
    config, shapes = setup.config, {}
    for name, image in setup.images:
        shapes.setdefault(tuple(image.shape), image)
    for method in config.methods:
        torch.manual_seed(config.seed)
        system = build_method(method, setup.preset, setup.extractor).eval()
        points = [Dial(steps=1)] + [replace(d, steps=1, samples=min(d.samples, 2)) for d in config.dials[method]]
        for image in shapes.values():
            x = image[None]
            for snr, dial in ((snr, dial) for snr in config.snrs for dial in points):
                g = torch.Generator().manual_seed(image_seed(config.seed, "dry", snr))
                try:
                    with torch.no_grad():
                        r = system.receive(system.transmit(x, snr, g), dial, g, tuple(x.shape))
                except ValueError as err:
                    raise UsageError(f"--dial for {method}: {err}") from None
                if not torch.isfinite(r.output).all():
                    raise UsageError(f"method {method} gives non-finite outputs at {snr} dB ({dial.label()})")
            evaluate_images(x, r.output.clamp(0, 1), setup.ready)
        del system
    refs = [image[None] for image in shapes.values()]
    evaluate_sets(refs, refs, setup.ready)


def prepare_out(setup) -> None:
    """With --overwrite: remove what this run replaces (each rerun method's folder, results, figures,
    reconstructions); otherwise only add to --out."""
    out = setup.out
    if setup.config.overwrite and out.exists():
        for name in setup.config.methods:
            shutil.rmtree(out / name, ignore_errors=True)
        shutil.rmtree(out / "recon", ignore_errors=True)
        for f in ("complete.json", "metrics.csv", "summary.csv", "sets.csv", "config.json", "timings.json", "table.md"):
            (out / f).unlink(missing_ok=True)
        for f in out.glob("fig*_*.*"):
            f.unlink()
