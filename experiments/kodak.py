"""Kodak: train (or resume, or load) each method at a preset's scale, then evaluate on Kodak.

    python experiments/kodak.py --preset tiny --images kodim01,kodim23 --snr 0 10 --out results/kodak_tiny
    python experiments/kodak.py --preset default --methods jscgc,mambajscc,cjscc,diffjscc,necst   # one GPU
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
by default), then evaluated on the Kodak images for each SNR with ``--steps`` Euler steps and ``--samples``
samples per ŷ. A receiver that anchors its sample (``jscgc``) is scored three times: its output, its
generator's own sample as ``<method> (sample)``, and μ(ŷ), the MSE estimate whose coarse band the output
copies, as ``<method> μ(ŷ)``.

Writes under ``--out``: ``metrics.csv`` (one row per receiver, SNR, image, sample; a column per metric;
unavailable metrics left empty and listed with reasons in ``config.json``), ``summary.csv`` (means per
receiver and SNR, plus the set metrics), ``sets.csv`` (each set metric per receiver and SNR with its 95 %
paired bootstrap interval over images, and paired differences against mambajscc and diffjscc), ``table.md`` (mean ± s.e. over images, and paired differences against
mambajscc when it ran), ``config.json`` (settings, per-method plan, examples seen,
trainable parameters), ``timings.json`` (wall times: the only file that differs between identical runs),
``recon/`` (PNG reconstructions of ``--figure-images``), and the figures ``fig3_*`` and ``fig4_metrics``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jscgc.checkpoints import check_checkpoint, latest_checkpoint, load_trained  # noqa: E402
from jscgc.checks import UsageError  # noqa: E402  (one line ``kodak: …``, exit 2)
from jscgc.dial import Dial, receive as dial_receive  # noqa: E402
from jscgc.imagedata import FolderCrops, data_root, image_files, kodak  # noqa: E402
from jscgc.io import (DamagedFile, atomic_save, atomic_write_json, atomic_write_text, folder_name,  # noqa: E402
                      is_complete, read_json, run_in, source_version,
                      unwritable_reason)
from jscgc.latent_system import LatentSystem, training_sources  # noqa: E402
from jscgc.latents import load_extractor  # noqa: E402
from jscgc.methods import METHODS, build_method  # noqa: E402
from jscgc.metrics import METRICS, available_metrics, evaluate_images, evaluate_sets  # noqa: E402
from jscgc.plan import describe_plan, parameter_record  # noqa: E402
from jscgc.presets import PRESETS, get_preset  # noqa: E402
from jscgc.train import train  # noqa: E402
from jscgc.types import LatentBatch  # noqa: E402

FIGURE_IMAGES = "kodim01,kodim05,kodim15,kodim23"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--methods", default="jscgc,mambajscc", help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0], help="test SNRs (dB)")
    p.add_argument("--steps", type=int, default=9, help="Euler steps of the generator")
    p.add_argument("--samples", type=int, default=1, help="samples per ŷ for stochastic receivers")
    p.add_argument("--dial", action="append", default=[], metavar="SETTINGS",
                   help="an extra operating point of the --dial-methods receivers (jscgc.dial), e.g. "
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
    return p.parse_args(argv)


def image_seed(seed: int, name: str, snr: float) -> int:
    """The seed of one (image, SNR) evaluation: a hash of the run seed, the image name and the SNR's exact
    value, so every finite SNR works and different SNRs (or images) never share noise."""
    key = f"{seed}|{name}|{float(snr).hex()}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % (2 ** 63)


def _save_png(path: Path, image: torch.Tensor) -> None:
    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    atomic_save(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def _data_fingerprint(folder: Path) -> str:
    """A hash of a training folder's image files (relative names and sizes): other data, another hash."""
    files = image_files(folder)
    listing = "\n".join(f"{f.relative_to(folder)}\t{f.stat().st_size}" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _run_record(name: str, preset, train_cfg, args, fingerprint: str) -> dict:
    """What a method's checkpoints must have been trained with to be resumed or loaded."""
    return {"method": name, "preset": preset.to_dict(), "train": dataclasses.asdict(train_cfg),
            "train_data": str(Path(args.train_data)), "train_data_files": fingerprint, "seed": args.seed}


def _describe_difference(recorded: dict, wanted: dict) -> str:
    wanted = json.loads(json.dumps(wanted, default=str))          # compared as JSON, as run.json stores it
    if recorded.get("preset", {}).get("name") != wanted["preset"]["name"]:
        return f"built with preset {recorded.get('preset', {}).get('name')}, this run uses {wanted['preset']['name']}"
    keys = [k for k in wanted if recorded.get(k) != wanted[k]]
    return f"built with other settings ({', '.join(keys)})"


def _existing_record(folder: Path, wanted: dict, what: str) -> None:
    """Refuse a method folder whose run.json records other settings than this run's."""
    path = folder / "run.json"
    recorded = read_json(path) if path.is_file() else None
    if recorded is not None and recorded != json.loads(json.dumps(wanted, default=str)):
        raise UsageError(f"{what} {folder}: {_describe_difference(recorded, wanted)}; "
                         f"pass --overwrite to start afresh or choose another --out")
    if recorded is None and latest_checkpoint(folder / "train") is not None:
        raise UsageError(f"{what} {folder}: checkpoints without a run.json; pass --overwrite or another --out")
    if latest_checkpoint(folder / "train") is not None:
        check_checkpoint(latest_checkpoint(folder / "train"))          # DamagedFile names a damaged file


@dataclasses.dataclass
class Setup:
    """Everything the checks established; nothing has been written yet."""
    preset: object
    methods: list[str]
    images: list
    train_cfg: object
    out: Path
    extractor: object
    ready: dict
    missing: dict
    device: torch.device
    records: dict
    data: FolderCrops | None = None
    dials: tuple = ()


def _check_numbers(args) -> list[str]:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UsageError(f"--methods {args.methods!r}: unknown {bad}; expected some of {sorted(METHODS)}")
    if args.steps < 1 or args.samples < 1:
        raise UsageError(f"--steps {args.steps} / --samples {args.samples}: expected integers >= 1")
    nonfinite = [s for s in args.snr if not math.isfinite(s)]
    if nonfinite:
        raise UsageError(f"--snr {' '.join(map(str, nonfinite))}: expected finite SNRs in dB")
    if args.crop is not None and args.crop < 1:
        raise UsageError(f"--crop {args.crop}: expected a positive size in pixels (omit it for whole images)")
    if args.downscale is not None and args.downscale < 1:
        raise UsageError(f"--downscale {args.downscale}: expected an integer factor >= 1")
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap {args.bootstrap}: expected a number of resamples >= 0 (0: no intervals)")
    if args.train_steps is not None and args.train_steps < 1:
        raise UsageError(f"--train-steps {args.train_steps}: expected a positive step budget")
    dial_methods = [m.strip() for m in args.dial_methods.split(",") if m.strip()]
    if args.dial and not set(dial_methods) <= set(methods):
        raise UsageError(f"--dial-methods {args.dial_methods!r}: expected some of the --methods {methods}")
    return methods


def _check_dials(args) -> tuple:
    """The --dial points, parsed over the run's own Euler steps (a point that names none uses --steps)."""
    dials = []
    for text in args.dial:
        try:
            dials.append(Dial.parse(text, base=Dial(steps=args.steps)))
        except ValueError as err:
            raise UsageError(f"--dial {text!r}: {err}") from None
    if len({d.label() for d in dials} | {Dial(steps=args.steps).label()}) != len(dials) + 1:
        raise UsageError(f"--dial {args.dial}: expected distinct points, none equal to the default receiver")
    return tuple(dials)


def _check_writable(out: Path) -> None:
    why = unwritable_reason(out)
    if why:
        raise UsageError(f"--out {out}: {why}")


def _check_images(args, preset, root) -> list:
    try:
        images = kodak(root, names=args.images.split(",") if args.images else None, crop=args.crop,
                       downscale=args.downscale or preset.test_downscale)
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


def _check_zimage(args, preset) -> None:
    where = args.zimage or (preset.zimage if preset.latents == "flux" else None)
    if where is None:
        return
    looks_local = where.startswith(("/", "./", "../", "~")) or Path(where).exists()
    if looks_local and not Path(where).expanduser().is_dir():
        raise UsageError(f"--zimage {where}: no such folder (a local Z-Image checkpoint folder is expected)")
    if not looks_local:
        raise UsageError(f"--zimage {where}: not a local folder; this package loads no weights from a model hub "
                         f"(download the checkpoint and pass its folder)")


def _check_checkpoints(args, methods, records: dict) -> None:
    """``--checkpoint`` holds every method, finished, trained with this run's settings."""
    for name in methods:
        folder = Path(args.checkpoint) / name
        if not (folder / "run.json").is_file():
            raise UsageError(f"--checkpoint {args.checkpoint}: no trained {name} there ({folder / 'run.json'} "
                             f"is missing)")
        _existing_record(folder, records[name], "--checkpoint")
        state = read_json(latest_checkpoint(folder / "train") / "state.json", keys=("step", "plan"))
        total = sum(s["steps"] for s in state["plan"])
        if state["step"] != total:
            raise UsageError(f"--checkpoint {folder}: training stopped at step {state['step']} of {total}")


def _train_config(args, preset, cuda: bool):
    kw = dict(seed=args.seed, progress=not args.no_progress, cpu=not cuda)
    if args.train_steps is not None:
        kw["steps"] = args.train_steps
    if args.batch_size is not None:
        kw["batch_size"] = args.batch_size
    if not cuda:
        kw["mixed_precision"] = "no"
    try:
        return dataclasses.replace(preset.train, **kw)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_inputs(args) -> Setup:
    """Every check that can fail, before anything is trained or written (raises UsageError)."""
    methods = _check_numbers(args)
    preset = get_preset(args.preset, **({"zimage": args.zimage} if args.zimage else {}))
    out = Path(args.out or f"results/kodak_{preset.name}")
    if is_complete(out) and not args.overwrite:
        raise UsageError(f"{out} holds a finished run ({out / 'complete.json'}); pass --overwrite or another --out")
    if args.overwrite and args.checkpoint and _inside(Path(args.checkpoint), out):
        raise UsageError(f"--checkpoint {args.checkpoint} lies in --out {out}, and --overwrite would delete what this "
                         f"run reads; choose another --out")
    _check_writable(out)
    _check_zimage(args, preset)
    try:
        root = data_root(args.data, need="kodak")
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    images = _check_images(args, preset, root)
    cuda = torch.cuda.is_available()
    train_cfg = _train_config(args, preset, cuda)
    try:
        fingerprint = _data_fingerprint(root / args.train_data)
    except FileNotFoundError as err:
        raise UsageError(f"--train-data: {err}") from None
    records = {m: _run_record(m, preset, train_cfg, args, fingerprint) for m in methods}
    if args.checkpoint:
        _check_checkpoints(args, methods, records)
    elif not args.overwrite:
        for m in methods:
            _existing_record(out / m, records[m], "--out")
    try:
        extractor = load_extractor(preset.latents, args.weights if preset.latents == "taef2" else args.zimage)
        taef2 = extractor if preset.latents == "taef2" else load_extractor("taef2", args.weights)
        data = None if args.checkpoint else FolderCrops(root / args.train_data, preset.crop)
    except (FileNotFoundError, ValueError) as err:       # ImageError is a ValueError
        raise UsageError(str(err)) from None
    ready, missing = available_metrics(None, extractor=taef2)
    return Setup(preset, methods, images, train_cfg, out, extractor, ready, missing,
                 torch.device("cuda" if cuda else "cpu"), records, data, _check_dials(args))


def _estimate_cpu_seconds(setup: Setup, args) -> float:
    per_step = setup.preset.est_seconds_per_step_cpu
    steps = 0 if args.checkpoint else setup.train_cfg.steps
    return len(setup.methods) * (steps + len(setup.images) * len(args.snr) * args.steps / 4) * per_step


def dry_pass(setup: Setup, args) -> None:
    """One untrained transmit → receive pass per method, image shape and SNR (one Euler step), and the
    metrics once per image shape, so that no size or SNR can fail after training."""
    shapes = {}
    for name, image in setup.images:
        shapes.setdefault(tuple(image.shape), image)
    for method in setup.methods:
        torch.manual_seed(args.seed)
        system = build_method(method, setup.preset, setup.extractor).eval()
        points = [Dial(steps=1)] + [replace(d, steps=1, samples=min(d.samples, 2)) for d in _dials_of(method, setup, args)]
        for image in shapes.values():
            x = image[None]
            for snr, dial in ((snr, dial) for snr in args.snr for dial in points):
                g = torch.Generator().manual_seed(image_seed(args.seed, "dry", snr))
                try:
                    with torch.no_grad():
                        r = dial_receive(system, system.transmit(x, snr, g), dial, g, tuple(x.shape))
                except ValueError as err:
                    raise UsageError(f"--dial for {method}: {err}") from None
                if not torch.isfinite(r.output).all():
                    raise UsageError(f"method {method} gives non-finite outputs at {snr} dB ({dial.label()})")
            evaluate_images(x, r.output.clamp(0, 1), setup.ready)
        del system
    refs = [image[None] for image in shapes.values()]
    evaluate_sets(refs, refs, setup.ready)


def prepare_out(setup: Setup, args) -> None:
    """With --overwrite: remove what this run replaces (each rerun method's folder, results, figures,
    reconstructions); otherwise only add to --out."""
    out = setup.out
    if args.overwrite and out.exists():
        for name in setup.methods:
            shutil.rmtree(out / name, ignore_errors=True)
        shutil.rmtree(out / "recon", ignore_errors=True)
        for f in ("complete.json", "metrics.csv", "summary.csv", "sets.csv", "config.json", "timings.json", "table.md"):
            (out / f).unlink(missing_ok=True)
        for f in out.glob("fig*_*.*"):
            f.unlink()


def _training_sources(setup: Setup, args) -> dict:
    """The data sources, by kind: "pixels" for systems on images, "latents" for LatentSystems. With a
    ``latent_pool`` preset both draw the same crops from one pool, whose latents are encoded once."""
    if setup.data is None:
        return {}
    return training_sources(setup.data, setup.extractor, setup.preset.latent_pool, args.seed + 12345)


def train_or_load(name: str, system, setup: Setup, args, sources: dict) -> tuple[dict, float]:
    """Train with the shared loop (resuming a matching run), or load ``--checkpoint``; returns the
    method's entry of config.json and its wall time."""
    record = setup.records[name]
    counts = parameter_record(system)
    info = {"parameters": counts.pop("total"), "plan": describe_plan(system.plan(), setup.train_cfg.steps), **counts}
    if args.checkpoint:
        info["loaded"] = str(load_trained(system, Path(args.checkpoint) / name / "train"))
        return info, 0.0
    atomic_write_json(setup.out / name / "run.json", record)
    start = time.perf_counter()
    data = sources["latents" if isinstance(system, LatentSystem) else "pixels"]
    result = train(system, data, setup.train_cfg, out_dir=setup.out / name / "train", resume=True,
                   system_config=system.config(), desc=f"train {name}")
    info.update(steps=result.step, examples=result.step * setup.train_cfg.batch_size,
                trainable_parameters=info["trainable_union"],
                stages=[r._asdict() for r in result.stages],
                skipped_steps=list(result.skipped),
                final_loss=sum(result.losses[-20:]) / max(1, len(result.losses[-20:])))
    return info, time.perf_counter() - start


def _receivers(name: str, system) -> list[tuple[str, str]]:
    """(row label, field) of each receiver a trained system gives at its own operating point: its
    output; for an anchored system also its generator's own sample and μ(ŷ), the MSE estimate whose
    coarse band the output copies (so the anchored output's low-pass scores are read beside μ's)."""
    if isinstance(system, LatentSystem) and system.anchor_lowpass:
        return [(name, "output"), (f"{name} (sample)", "sample"), (f"{name} μ(ŷ)", "estimate")]
    return [(name, "output")]


def _dials_of(method: str, setup: Setup, args) -> tuple:
    """The --dial points that apply to ``method`` (those of --dial-methods)."""
    return setup.dials if method in [m.strip() for m in args.dial_methods.split(",")] else ()


def _points(name: str, system, setup: Setup, args) -> list[tuple[Dial, list[tuple[str, str]], int]]:
    """(dial, receivers, seed offset) per operating point: the system as built (at --steps), then each --dial
    point as one more receiver ``<name> [<settings>]`` with its own random stream."""
    points = [(Dial(steps=args.steps), _receivers(name, system), 0)]
    for k, dial in enumerate(_dials_of(name, setup, args), start=1):
        points.append((dial, [(f"{name} [{dial.label()}]", "output")], k))
    return points


def _score(label: str, field: str, reception, x, setup: Setup, args, where: tuple) -> tuple[dict, torch.Tensor]:
    """One metrics.csv row for one receiver's output (or first sample) and the image scored."""
    img_name, snr, s = where
    x_hat = {"output": reception.output, "sample": reception.samples[0],
             "estimate": reception.estimate}[field].float().clamp(0, 1)
    values = evaluate_images(x.float(), x_hat, setup.ready)
    diversity = float("nan") if reception.diversity is None else float(reception.diversity[0])
    return ({"method": label, "snr_db": snr, "image": img_name, "sample": s,
             **{m: v[0] for m, v in values.items()}, "diversity": diversity}, x_hat)


def _set_measures(setup: Setup) -> dict:
    """The ready set measures (:class:`jscgc.metrics.SetMeasure`), by name."""
    return {n: fn for n, fn in setup.ready.items() if METRICS[n].kind == "set"}


def evaluate(name: str, system, setup: Setup, args, latents: dict) -> tuple[list, dict]:
    """Rows of metrics.csv, and per SNR, receiver (and dial point) and set measure the per-image feature
    statistics of the first sample ({snr: {label: {measure: [stats in image order]}}})."""
    from tqdm.auto import tqdm

    rows, stats, measures = [], {}, _set_measures(setup)
    points = _points(name, system, setup, args)
    n_samples = args.samples if METHODS[name].stochastic else 1
    figure_images = set(args.figure_images.split(",")) if args.figure_images else set()
    system.eval()
    bar = tqdm(total=len(args.snr) * len(setup.images), desc=f"eval {name}", disable=args.no_progress, leave=False)
    for snr in args.snr:
        kept = stats[snr] = {label: {m: [] for m in measures} for _, receivers, _ in points for label, _ in receivers}
        for img_name, image in setup.images:
            x = image[None].to(setup.device)
            sent = LatentBatch(x, latents[img_name]) if isinstance(system, LatentSystem) else x
            seed = image_seed(args.seed, img_name, snr)
            g = torch.Generator(device=setup.device).manual_seed(seed)
            with torch.no_grad():
                received = system.transmit(sent, snr, g)
                for (dial, receivers, k), s in ((p, s) for p in points for s in range(n_samples)):
                    stream = g if k == 0 else torch.Generator(device=setup.device).manual_seed(seed + k)
                    reception = dial_receive(system, received, dial, stream, tuple(x.shape))
                    for label, field in receivers:
                        row, x_hat = _score(label, field, reception, x, setup, args, (img_name, snr, s))
                        rows.append(row)
                        if s == 0:
                            for m, measure in measures.items():
                                kept[label][m].append(measure.stats(x_hat.cpu()))
                            if img_name in figure_images:
                                _save_png(setup.out / "recon" / folder_name(label) / f"snr{snr:+g}" / f"{img_name}.png",
                                          x_hat[0])
            bar.update(1)
    bar.close()
    return rows, stats


def set_intervals(setup: Setup, args, stats: dict) -> "pd.DataFrame":
    """sets.csv: per set measure, SNR and receiver the value on the 24 images and its paired basic bootstrap
    interval (:func:`jscgc.bootstrap.paired_bootstrap`, ``--bootstrap`` resamples, the same for every receiver
    of an SNR), and the paired differences against mambajscc and diffjscc where they ran."""
    import pandas as pd

    from jscgc.bootstrap import frechet_from_stats, paired_bootstrap

    frames, resample = [], args.bootstrap and len(setup.images) >= 2      # a bootstrap needs two images
    for m, measure in _set_measures(setup).items():
        refs = [measure.stats(image[None].float()) for _, image in setup.images]
        for snr, by_label in stats.items():
            outs = {label: per[m] for label, per in by_label.items()}
            references = [r for r in ("mambajscc", "diffjscc") if r in outs]
            if resample:
                table = paired_bootstrap(refs, outs, references or None, n_boot=args.bootstrap, seed=args.seed)
            else:
                table = pd.DataFrame({"receiver": list(outs), "n_images": len(refs),
                                      "value": [frechet_from_stats(refs, xs) for xs in outs.values()]})
            frames.append(table.rename(columns={"receiver": "method"}).assign(snr_db=snr, metric=m))
    if not frames:
        return pd.DataFrame(columns=["metric", "snr_db", "method", "value"])
    table = pd.concat(frames, ignore_index=True)
    return table[["metric", "snr_db", "method"] + [c for c in table.columns if c not in ("metric", "snr_db", "method")]]


def _tables(df, sets, reference: str = "mambajscc") -> str:
    """Markdown: mean ± s.e. over images per receiver and SNR, paired differences against ``reference``
    (per image, samples averaged first) when it was run, and the set measures with their intervals."""
    from jscgc import paired

    text = "## Mean ± s.e. over images\n\n" + paired.to_markdown(paired.summary(df)) + "\n"
    if reference in set(df["method"]):
        diffs = paired.paired_differences(df, reference)
        text += f"\n## Paired differences against {reference} (± s.e. over images)\n\n" + paired.to_markdown(diffs) + "\n"
    if len(sets):
        text += "\n## Set measures (95 % paired bootstrap intervals over images, sets.csv)\n\n" + set_markdown(sets) + "\n"
    return text


def set_markdown(sets) -> str:
    """sets.csv as markdown: value [lo, hi] per receiver and SNR, a column per measure; with a reference,
    its paired difference [lo, hi], marked * where the interval excludes 0."""
    def cell(r, col):
        if f"{col}_lo" not in r or r.isna()[f"{col}_lo"]:
            return f"{r[col]:.3f}"
        star = "*" if (r[f"{col}_lo"] > 0 or r[f"{col}_hi"] < 0) and col != "value" else ""
        return f"{r[col]:.3f} [{r[f'{col}_lo']:.3f}, {r[f'{col}_hi']:.3f}]{star}"

    frame = sets.rename(columns={"lo": "value_lo", "hi": "value_hi"})
    diffs = [c for c in frame.columns if c.startswith("diff") and not c.endswith(("_lo", "_hi", "_excludes_zero"))]
    lines = ["| measure | SNR (dB) | receiver | value [95 % interval] | " + " | ".join(f"{d} [interval]" for d in diffs) + " |",
             "|---|---|---|---|" + "---|" * len(diffs)]
    for _, r in frame.iterrows():
        lines.append(f"| {r.metric} | {r.snr_db:g} | {r.method} | {cell(r, 'value')} | "
                     + " | ".join(cell(r, d) for d in diffs) + " |")
    return "\n".join(lines)


def _write_results(setup: Setup, args, rows, sets, info, seconds) -> None:
    """metrics.csv, summary.csv (rows in a fixed order; the set measures' values from ``sets``, the table of
    :func:`set_intervals`), sets.csv, config.json; wall times apart in timings.json."""
    import pandas as pd

    columns = ["method", "snr_db", "image", "sample"] + [m for m in METRICS if METRICS[m].kind == "image"] + ["diversity"]
    df = pd.DataFrame(rows).reindex(columns=columns)
    summary = df.groupby(["method", "snr_db"], sort=False)[columns[4:]].mean().reset_index()
    if len(sets):
        wide = sets.pivot_table(index=["method", "snr_db"], columns="metric", values="value", sort=False).reset_index()
        summary = summary.merge(wide, on=["method", "snr_db"], how="left")
    summary = summary.reindex(columns=["method", "snr_db"] + list(METRICS) + ["diversity"])
    atomic_save(setup.out / "metrics.csv", lambda f: df.to_csv(f, index=False))
    atomic_save(setup.out / "summary.csv", lambda f: summary.to_csv(f, index=False))
    atomic_save(setup.out / "sets.csv", lambda f: sets.to_csv(f, index=False))
    recorded = {k: v for k, v in vars(args).items() if k not in ("out", "no_progress")}   # where, not what
    config = {"preset": setup.preset.to_dict(), "args": recorded, "methods": info,
              "train_config": dataclasses.asdict(setup.train_cfg), "unavailable_metrics": setup.missing,
              "metrics": {m: METRICS[m].describe() for m in METRICS},
              "images": [n for n, _ in setup.images], "torch": torch.__version__,
              "dials": {f"{m} [{d.label()}]": d.as_dict() for m in setup.methods for d in _dials_of(m, setup, args)},
              "device": torch.cuda.get_device_name() if setup.device.type == "cuda" else "cpu",
              "source": source_version()}
    atomic_write_json(setup.out / "config.json", json.loads(json.dumps(config, default=str)))
    atomic_write_json(setup.out / "timings.json", seconds)
    atomic_write_text(setup.out / "table.md", _tables(df, sets))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string(index=False))


def run(setup: Setup, args) -> None:
    """Train (or load) and evaluate every method, then write the results and figures."""
    start = time.perf_counter()
    prepare_out(setup, args)
    with torch.no_grad():
        latents = {n: setup.extractor.encode(im[None].to(setup.device)) for n, im in setup.images}
    rows, stats, info, seconds = [], {}, {}, {}
    sources = _training_sources(setup, args)
    for name in setup.methods:
        torch.manual_seed(args.seed)
        system = build_method(name, setup.preset, setup.extractor)
        info[name], seconds[f"train_{name}"] = train_or_load(name, system, setup, args, sources)
        system.to(setup.device)
        t0 = time.perf_counter()
        r, s = evaluate(name, system, setup, args, latents)
        seconds[f"eval_{name}"] = time.perf_counter() - t0
        rows += r
        for snr, by_label in s.items():
            stats.setdefault(snr, {}).update(by_label)
        del system
    for img_name, image in setup.images:
        if img_name in (args.figure_images or "").split(","):
            _save_png(setup.out / "recon" / "ground_truth" / f"{img_name}.png", image)
    t0 = time.perf_counter()
    sets = set_intervals(setup, args, stats)
    seconds["set_intervals"] = time.perf_counter() - t0
    seconds["wall"] = time.perf_counter() - start
    _write_results(setup, args, rows, sets, info, seconds)
    if not args.no_figures:
        from paper_figures.kodak import draw

        draw(setup.out)
    print(f"kodak: wrote {setup.out} in {seconds['wall']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        try:
            setup = check_inputs(args)
        except (DamagedFile, FileNotFoundError) as err:      # a damaged run record or checkpoint, a missing folder
            raise UsageError(str(err)) from None
        if setup.device.type == "cpu" and setup.preset.name not in ("tiny", "small") and not args.yes:
            hours = _estimate_cpu_seconds(setup, args) / 3600
            raise UsageError(f"no CUDA GPU here; --preset {setup.preset.name} would take about {hours:.0f} h on this "
                             f"CPU. Run `python experiments/kodak.py --preset tiny` for a CPU smoke run, or pass --yes")
        dry_pass(setup, args)
    except UsageError as err:
        print(f"kodak: {err}", file=sys.stderr)
        return 2
    print(f"kodak: inputs checked; estimated {_estimate_cpu_seconds(setup, args) / 60:.0f} min on this CPU"
          if setup.device.type == "cpu" else "kodak: inputs checked", file=sys.stderr)
    return run_in("kodak", setup.out, lambda: run(setup, args) or 0, {"source": source_version()})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
