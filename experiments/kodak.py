"""Kodak: train (or resume, or load) each method at a preset's scale, then evaluate on Kodak.

    python experiments/kodak.py --preset tiny --images kodim01,kodim23 --snr 0 10 --out results/kodak_tiny
    python experiments/kodak.py --preset default --methods jscgc,mambajscc,cjscc,diffjscc,necst   # one GPU
    accelerate launch --config_file configs/accelerate_zero3.yaml experiments/kodak.py --preset full \
        --zimage /path/to/Z-Image                                                       # the paper's setting

Every method of :mod:`jscgc.methods` named in ``--methods`` is trained with the one loop
(:func:`jscgc.train.train` running the method's plan, all stages within the preset's step budget;
checkpoints under ``--out/<method>/train``, resumed when present) on
random crops of ``--train-data`` (BSDS500 by default), then evaluated on the Kodak images at full
resolution for each SNR with ``--steps`` Euler steps and ``--samples`` samples per ŷ.

Writes under ``--out``: ``metrics.csv`` (one row per method, SNR, image, sample; a column per
metric; unavailable metrics left empty and listed with reasons in ``config.json``),
``summary.csv`` (means per method and SNR, plus the set metrics), ``recon/`` (PNG reconstructions of
``--figure-images``), ``config.json``, and the figures ``fig3_*`` and ``fig4_metrics``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jscgc.imagedata import FolderCrops, data_root, kodak  # noqa: E402
from jscgc.io import atomic_save, atomic_write_json  # noqa: E402
from jscgc.latents import load_extractor  # noqa: E402
from jscgc.methods import METHODS, build_method, count_parameters  # noqa: E402
from jscgc.metrics import METRICS, available_metrics, evaluate_images, evaluate_sets  # noqa: E402
from jscgc.presets import PRESETS, get_preset  # noqa: E402
from jscgc.train import load_trained, train  # noqa: E402

FIGURE_IMAGES = "kodim01,kodim05,kodim15,kodim23"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--methods", default="jscgc,mambajscc", help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0], help="test SNRs (dB)")
    p.add_argument("--steps", type=int, default=9, help="Euler steps of the generator")
    p.add_argument("--samples", type=int, default=1, help="samples per ŷ for stochastic receivers")
    p.add_argument("--images", default=None, help="comma list of Kodak names (default: all 24)")
    p.add_argument("--crop", type=int, default=None, help="centre-crop the Kodak images (default: full resolution)")
    p.add_argument("--figure-images", default=FIGURE_IMAGES, help="images saved as PNG for Fig. 3")
    p.add_argument("--data", default=None, help="data root with kodak/ and bsds500/ (else JSCGC_DATA)")
    p.add_argument("--train-data", default="bsds500",
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
    p.add_argument("--overwrite", action="store_true", help="replace existing results in --out")
    p.add_argument("--yes", action="store_true", help="run a non-tiny preset on a CPU anyway")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _estimate_cpu_seconds(preset, steps: int, n_methods: int, n_images: int, n_snr: int) -> float:
    return n_methods * (steps * preset.est_seconds_per_step_cpu
                        + n_images * n_snr * 9 * preset.est_seconds_per_step_cpu / 4)


def _save_png(path: Path, image: torch.Tensor) -> None:
    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    atomic_save(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def train_or_load(name, system, preset, args, train_cfg, out: Path, data_fn):
    """Train with the shared loop (resuming), or load ``--checkpoint``; returns info for config.json."""
    if args.checkpoint:
        try:
            return {"loaded": str(load_trained(system, Path(args.checkpoint) / name / "train"))}
        except FileNotFoundError as err:
            raise FileNotFoundError(f"--checkpoint: {err}") from None
    start = time.perf_counter()
    result = train(system, data_fn(), train_cfg, out_dir=out / name / "train", resume=True,
                   system_config=system.config(), desc=f"train {name}")
    return {"train_seconds": time.perf_counter() - start, "steps": result.step,
            "examples": result.step * train_cfg.batch_size,
            "final_loss": sum(result.losses[-20:]) / max(1, len(result.losses[-20:])),
            "stages": [r._asdict() for r in result.stages]}


def evaluate(name, system, images, args, ready, device, out: Path, figure_images):
    """Rows of metrics.csv and the set metrics for one method."""
    rows, sets = [], []
    stochastic = METHODS[name].stochastic
    n_samples = args.samples if stochastic else 1
    system.eval()
    from tqdm import tqdm

    bar = tqdm(total=len(args.snr) * len(images), desc=f"eval {name}", disable=args.no_progress, leave=False)
    for snr in args.snr:
        refs, outs = [], []
        for k, (img_name, image) in enumerate(images):
            x = image[None].to(device)
            g = torch.Generator(device=device).manual_seed(args.seed * 100_003 + k * 101 + int(snr * 10) % 1000)
            with torch.no_grad():
                received = system.transmit(x, snr, g)
                for s in range(n_samples):
                    x_hat = system.receive(received, g, args.steps, tuple(x.shape)).output.float().clamp(0, 1)
                    values = evaluate_images(x.float(), x_hat, ready)
                    rows.append({"method": name, "snr_db": snr, "image": img_name, "sample": s,
                                 **{m: v[0] for m, v in values.items()}})
                    if s == 0:
                        refs.append(x.float().cpu())
                        outs.append(x_hat.cpu())
                        if img_name in figure_images:
                            _save_png(out / "recon" / name / f"snr{snr:+g}" / f"{img_name}.png", x_hat[0])
            bar.update(1)
        sets.append({"method": name, "snr_db": snr, **evaluate_sets(refs, outs, ready)})
    bar.close()
    return rows, sets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import pandas as pd

    overrides = {"zimage": args.zimage} if args.zimage else {}
    preset = get_preset(args.preset, **overrides)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        print(f"kodak: --methods {args.methods!r}: unknown {bad}; expected some of {sorted(METHODS)}",
              file=sys.stderr)
        return 2
    if args.steps < 1 or args.samples < 1:
        print("kodak: --steps and --samples must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out or f"results/kodak_{preset.name}")
    if (out / "metrics.csv").exists() and not args.overwrite:
        print(f"kodak: {out / 'metrics.csv'} exists; pass --overwrite or another --out", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available()
    train_kw = dict(seed=args.seed, progress=not args.no_progress, cpu=not cuda)
    if args.train_steps is not None:
        train_kw["steps"] = args.train_steps
    if args.batch_size is not None:
        train_kw["batch_size"] = args.batch_size
    if not cuda:
        train_kw["mixed_precision"] = "no"
    train_cfg = dataclasses.replace(preset.train, **train_kw)

    try:
        root = data_root(args.data, need="kodak")
        names = args.images.split(",") if args.images else None
        images = kodak(root, names=names, crop=args.crop)
    except (FileNotFoundError, ValueError) as err:
        print(f"kodak: {err}", file=sys.stderr)
        return 2
    if not cuda and preset.name != "tiny" and not args.yes:
        est = _estimate_cpu_seconds(preset, 0 if args.checkpoint else train_cfg.steps, len(methods),
                                    len(images), len(args.snr))
        print(f"kodak: no CUDA GPU here. --preset {preset.name} would take about {est / 3600:.0f} h on this "
              f"CPU. Run `python experiments/kodak.py --preset tiny` for a CPU smoke run, or pass --yes.",
              file=sys.stderr)
        return 2

    extractor = load_extractor(preset.latents, args.weights if preset.latents == "taef2" else preset.zimage)
    ready, missing = available_metrics(None, extractor=extractor if preset.latents == "taef2" else
                                       load_extractor("taef2", args.weights))
    for m, why in missing.items():
        print(f"kodak: metric {m} unavailable: {why}", file=sys.stderr)
    device = torch.device("cuda" if cuda else "cpu")
    figure_images = set(args.figure_images.split(",")) if args.figure_images else set()
    crops: list[FolderCrops] = []

    def data_fn() -> FolderCrops:      # decoded once, shared by the methods
        if not crops:
            crops.append(FolderCrops(root / args.train_data, preset.crop))
        return crops[0]

    for img_name, image in images:
        if img_name in figure_images:
            _save_png(out / "recon" / "ground_truth" / f"{img_name}.png", image)
    start = time.perf_counter()
    rows, sets, info = [], [], {}
    for name in methods:
        torch.manual_seed(args.seed)
        system = build_method(name, preset, extractor)
        info[name] = {"parameters": count_parameters(system),
                      "trainable_parameters": count_parameters(system, trainable=True)}
        info[name].update(train_or_load(name, system, preset, args, train_cfg, out, data_fn))
        system.to(device)
        r, s = evaluate(name, system, images, args, ready, device, out, figure_images)
        rows += r
        sets += s
        del system
    columns = ["method", "snr_db", "image", "sample"] + [m for m in METRICS if METRICS[m].kind == "image"]
    df = pd.DataFrame(rows).reindex(columns=columns)
    summary = df.groupby(["method", "snr_db"], sort=False)[columns[4:]].mean().reset_index()
    summary = summary.merge(pd.DataFrame(sets), on=["method", "snr_db"], how="left")
    summary = summary.reindex(columns=["method", "snr_db"] + [m for m in METRICS])
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(out / "metrics.csv", lambda f: df.to_csv(f, index=False))
    atomic_save(out / "summary.csv", lambda f: summary.to_csv(f, index=False))
    config = {"preset": preset.to_dict(), "args": vars(args), "methods": info,
              "unavailable_metrics": missing, "metrics": {m: vars(METRICS[m]) for m in METRICS},
              "images": [n for n, _ in images], "device": torch.cuda.get_device_name() if cuda else "cpu",
              "torch": torch.__version__, "wall_seconds": time.perf_counter() - start}
    atomic_write_json(out / "config.json", json.loads(json.dumps(config, default=str)))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string(index=False))
    if not args.no_figures:
        from paper_figures.kodak import draw

        draw(out)
    print(f"kodak: wrote {out} in {config['wall_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
