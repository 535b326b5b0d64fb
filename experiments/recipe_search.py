"""Training-recipe search for the from-scratch generator (docs/recipe_search.md), at CPU scale.

Every variant is the registered ``jscgc`` method (MambaJSCC encoder → AWGN → Z-Image-architecture
backbone + CA-Adapter) at a small size — 64×64 BSDS500 crops, TAEF2 latents (32×8×8), a 4-layer
dim-96 backbone — with one recipe option changed (:class:`jscgc.system.JSCGC`, ``Preset.recipe``).
The references are the MSE decoders of exactly the same network and steps (``mambajscc``): with
pixel MSE through the frozen TAEF2 decoder (the strong one, docs/recipe_search.md) and with latent MSE.

To fit a 2-core CPU the crops are encoded to latents once (a pool of ``--pool`` crops,
:class:`jscgc.latent_system.CachedLatents`) and every stage reads the cached latents — the same plan,
objectives, sampler and loop as ``kodak.py``, without re-running the frozen TAEF2 encoder every step;
stages whose loss decodes to pixels (the pixel-MSE reference, a pixel MSE stage) also read the crops.
Evaluation: centre crops (``--eval-crop``) of the first ``--val-images`` BSDS500 `val` images — never
Kodak, the test set, which only kodak.py's final evaluation reads — at ``--snr`` dB, 9 Euler steps, one
sample, the shared evaluator (PSNR, low-pass PSNR ÷8/÷16, colour distance, HF ratio, TAEF2-feature FD).

    python experiments/recipe_search.py --out results/recipe_search [--steps 800] [--variants a,b]

Writes ``summary.csv`` (a row per variant), ``metrics.csv`` (per image), ``table.md`` and ``config.json``.
Every input is checked before any training (``recipe_search: …``, exit 2, nothing written).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

from jscgc import checks
from jscgc.checks import UsageError
from jscgc.imagedata import FolderCrops, folder_images
from jscgc.io import atomic_save, atomic_write_json, atomic_write_text, is_complete, run_in
from jscgc.latents import load_extractor
from jscgc.methods import build_method
from jscgc.evaluation import score
from jscgc.metrics import available_metrics, evaluate_sets
from jscgc.presets import PAPER_RECIPE, BackboneConfig, get_preset
from jscgc.latent_system import CachedLatents, LatentSystem, anchor
from jscgc.train import TrainConfig, train
from jscgc.types import Dial

SCORED = ["psnr", "psnr_lp8", "psnr_lp16", "colour_dist", "hf_ratio", "detail_match", "lpips_alex", "lpips_vgg",
          "dists", "latent_fd", "patch_fd"]

#: name -> (method, recipe overrides, budget multiplier, what changes). Every variant trains ``budget × --steps``
#: optimiser steps over all its stages; a recipe's ``mse_share`` is the MSE stage's part of that budget.
#: The "_long" variants give the flow stage 3 × steps after a steps/2 MSE stage (3.5 × steps in all, about the
#: wall time of the pixel-MSE reference, whose every step decodes to pixels).
VARIANTS: dict[str, tuple[str, dict, float, str]] = {
    "mse_pixel": ("mambajscc", {}, 1.0, "reference: the same network run once, pixel MSE through TAEF2"),
    "mse_latent": ("mambajscc-latent", {}, 1.0, "reference: the same network run once, latent MSE"),
    "baseline": ("jscgc", {}, 1.0, "the paper's recipe: logit-normal t, adapter at layers 0 and 2"),
    "uniform_t": ("jscgc", {"time_schedule": "uniform"}, 1.0, "time schedule: uniform t"),
    "inject_all": ("jscgc", {"adapter": {"layers": (0, 1, 2, 3), "hidden": 64}}, 1.0,
                   "conditioning path: adapter features into every layer"),
    "cfg": ("jscgc", {"recipe": {"cond_dropout": 0.1, "guidance": 2.0}}, 1.0,
            "ŷ-dropout 10 % in training, classifier-free guidance w = 2 at sampling"),
    "mse_stage": ("jscgc", {"recipe": {"mse_share": 1 / 3}}, 1.0,
                  "stages: first 1/3 of the steps MSE on the one-pass estimate -v(0, 1, ŷ), then flow"),
    "oneshot_prior": ("jscgc", {"recipe": {"prior": "oneshot"}}, 1.0,
                      "parameterisation: x1 ~ N(μ(ŷ), I) around the network's own MSE estimate"),
    "oneshot_prior_cfg": ("jscgc", {"recipe": {"prior": "oneshot", "cond_dropout": 0.1, "guidance": 2.0}}, 1.0,
                          "oneshot_prior + cfg"),
    "pm_latent": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.1, "mse_share": 0.5}}, 1.0,
                  "posterior-mean prior: 1/2 of the steps latent-MSE decoder, then flow from μ(ŷ) + 0.1 ε"),
    "pm_pixel": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.1, "mse_share": 0.5,
                                      "mse_loss": "pixel"}}, 1.0,
                 "posterior-mean prior: 1/2 of the steps pixel-MSE decoder, then flow from μ(ŷ) + 0.1 ε"),
    "pm_pixel_s03": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.3, "mse_share": 0.5,
                                          "mse_loss": "pixel"}}, 1.0, "pm_pixel with σ = 0.3"),
    "pm_pixel_s03_long": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.3, "mse_share": 1 / 7,
                                               "mse_loss": "pixel"}}, 3.5,
                          "pm_pixel_s03, flow stage 3 x steps on latents (≈ the pixel-MSE reference's wall time)"),
    "pm_pixel_s01_long": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.1, "mse_share": 1 / 7,
                                               "mse_loss": "pixel"}}, 3.5, "pm_pixel_s03_long with σ = 0.1"),
    "pm_pixel_s05_long": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": 0.5, "mse_share": 1 / 7,
                                               "mse_loss": "pixel"}}, 3.5, "pm_pixel_s03_long with σ = 0.5"),
    # the re-check of the `small`/`default` recipe on BSDS500 val (docs/recipe_search.md): the `small` preset's plan exactly
    # (run with --steps 1600: a pixel-MSE stage of 1/4, then the flow), σ varied, no anchor in the output
    # (the anchors are scored as extra receivers of the same sample)
    **{f"small_s{s:02d}": ("jscgc", {"recipe": {"prior": "posterior_mean", "prior_noise": s / 10, "mse_share": 0.25,
                                                 "mse_loss": "pixel", "anchor_lowpass": 0}}, 1.0,
                           f"the small preset's plan (pixel-MSE stage 1/4 of the budget, then flow), σ = {s / 10:g}")
       for s in (1, 3, 5)},
}
PICTURES = 4                    # the first validation images are saved as picture grids
#: extra receivers of the same trained system and sample (posterior-mean variants); order: μ, ÷16, ÷8
RECEIVERS = {"μ only": "its frozen MSE decoder μ(ŷ) alone",
             "anchor ÷16": "its sample with the ÷16 band of μ(ŷ) (LatentSystem anchor_lowpass=16)",
             "anchor ÷8": "its sample with the ÷8 band of μ(ŷ) (LatentSystem anchor_lowpass=8)"}


def base_preset():
    """The CPU-scale stand-in for ``default``: same parts, 64-px crops, a 4-layer dim-96 backbone, the paper's
    recipe (each variant changes it)."""
    return get_preset("tiny", encoder=dict(dims=(32, 32), depths=(1, 1), d_state=8, mlp_ratio=1.0),
                      backbone=BackboneConfig(dim=96, n_layers=4, n_heads=3, cap_feat_dim=32),
                      adapter=dict(layers=(0, 2), hidden=64), caption_tokens=8, recipe=PAPER_RECIPE)


def build(variant: str, extractor):
    """The system of ``variant`` (a LatentSystem) and its step-budget multiplier."""
    method, overrides, budget, _ = VARIANTS[variant]
    system = build_method(method.split("-")[0], base_preset().updated(**overrides), extractor)
    if method == "mambajscc-latent":       # the same system, its MSE measured on latents
        system = LatentSystem(system.inner, extractor, pixel_loss=False)
    return system, budget


_SHARED: dict = {}     # the crops with their latents (CachedLatents) and the val images, set before the workers fork


def _receive_all(system, labels, val_images, args) -> dict:
    """Per label: (originals, outputs, per-image rows). The posterior-mean receivers reuse the sample and
    μ(ŷ) of the one reception per image."""
    ready, _ = available_metrics(SCORED, extractor=system.extractor)
    per_label = {label: ([], [], []) for label in labels}
    for k, (name, image) in enumerate(val_images):
        x = image[None]
        g = torch.Generator().manual_seed(args.seed * 1000 + k)
        with torch.no_grad():
            r = system.receive(system.transmit(x, args.snr, g), Dial(), g, tuple(x.shape))
        outputs = {labels[0]: r.output.clamp(0, 1)}
        if len(labels) > 1:
            sample = r.sample.clamp(0, 1)
            outputs.update({labels[1]: r.estimate, labels[2]: anchor(sample, r.estimate, 16),
                            labels[3]: anchor(sample, r.estimate, 8)})
        for label, out in outputs.items():
            refs, outs, these = per_label[label]
            these.append({"variant": label, "image": name, **score(x, out, ready)})
            refs.append(x)
            outs.append(out)
    return per_label, ready


def run_variant(variant: str, args):
    """Train one variant and evaluate it; returns (summary row, per-image rows)."""
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    system, budget = build(variant, load_extractor("taef2", args.weights))
    cfg = TrainConfig(steps=round(budget * args.steps), batch_size=args.batch_size, lr=args.lr,
                      lr_schedule="cosine", warmup=50, snr_db=[-5.0, 10.0], seed=args.seed, progress=False, cpu=True)
    start = time.perf_counter()
    result = train(system, _SHARED["pool"], cfg)
    seconds = time.perf_counter() - start
    system.eval()
    labels = [variant]
    if "prior_noise" in system.dial_options:      # a posterior-mean prior: the same sample, other receivers
        labels += [f"{variant} ({what})" for what in RECEIVERS]
    per_label, ready = _receive_all(system, labels, _SHARED["val"], args)
    summaries, rows = [], []
    pics = list(range(min(PICTURES, len(_SHARED["val"]))))
    for label, (refs, outs, these) in per_label.items():
        means = {m: sum(r[m] for r in these) / len(these) for m in these[0] if m not in ("variant", "image")}
        summaries.append({"variant": label, **means, **evaluate_sets(refs, outs, ready), "train_seconds": seconds,
                          "steps": result.step, "final_loss": sum(result.losses[-50:]) / max(1, len(result.losses[-50:])),
                          "what": VARIANTS[variant][3] if label == variant else RECEIVERS[label[len(variant) + 2:-1]]})
        rows += these
        if pics:
            _save_grid(Path(args.out) / "pictures" / _file_name(label),
                       [refs[k] for k in pics], [outs[k] for k in pics])
    return summaries, rows


def _file_name(label: str) -> str:
    """"pm_pixel (anchor ÷16)" -> "pm_pixel_anchor_lp16.png" (ASCII file names)."""
    for a, b in ((" (", "_"), (")", ""), ("μ only", "mu_only"), ("÷", "lp"), (" ", "_")):
        label = label.replace(a, b)
    return f"{label}.png"


def _save_grid(path: Path, refs: list[torch.Tensor], outs: list[torch.Tensor]) -> None:
    """A PNG: the originals in the top row, the outputs below (each (1, 3, H, W) in [0, 1])."""
    from PIL import Image

    grid = torch.cat([torch.cat(refs, -1), torch.cat(outs, -1)], -2)[0]
    pixels = (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    atomic_save(path, lambda f: Image.fromarray(pixels).save(f, format="PNG"))


def _table(df) -> str:
    ref = df.set_index("variant").loc["mse_pixel"]
    lines = ["| variant | what | PSNR | PSNR ÷16 | PSNR ÷8 | colour dist | HF ratio | latent FD | "
             "loss | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(f"| {r.variant} | {r.what} | {r.psnr:.2f} | {r.psnr_lp16:.2f} | {r.psnr_lp8:.2f} | "
                     f"{r.colour_dist:.3f} | {r.hf_ratio:.2f} | {r.latent_fd:.2f} | {r.final_loss:.3f} | "
                     f"{r.train_seconds:.0f} |")
    lines.append(f"\nReference (mse_pixel): PSNR {ref.psnr:.2f} dB, ÷16 {ref.psnr_lp16:.2f} dB, latent FD "
                 f"{ref.latent_fd:.2f}.")
    return "\n".join(lines) + "\n"


def _parser():
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/recipe_search")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list (default: all)")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps per variant (all stages)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--pool", type=int, default=2048, help="training crops encoded once")
    p.add_argument("--snr", type=float, default=5.0, help="test SNR (dB)")
    p.add_argument("--eval-crop", type=int, default=128, help="validation centre crop (pixels)")
    p.add_argument("--val-images", type=int, default=24, help="how many BSDS500 val images (name order)")
    p.add_argument("--data", default=None)
    p.add_argument("--weights", default=None, help="TAEF2 weights folder")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    return p


def check_inputs(args) -> tuple[list[str], list, FolderCrops, object]:
    """Every input, in the main process before any training (raises UsageError); nothing is written.
    Returns the variants, the validation images, the training crops and the TAEF2 extractor."""
    variants = checks.names("--variants", args.variants, VARIANTS)
    for flag in ("steps", "batch_size", "pool", "val_images", "workers"):
        checks.positive_int(f"--{flag.replace('_', '-')}", getattr(args, flag))
    checks.positive_finite("--lr", args.lr)
    checks.finite("--snr", args.snr)
    checks.nonnegative_int("--seed", args.seed)
    tile = base_preset().token_px
    if checks.positive_int("--eval-crop", args.eval_crop) % tile:
        raise UsageError(f"--eval-crop {args.eval_crop}: expected a multiple of {tile} (the encoders' token size)")
    out = Path(args.out)
    if is_complete(out) and not args.overwrite:
        raise UsageError(f"--out {out} holds a finished run ({out / 'complete.json'} exists); pass --overwrite or another --out")
    checks.writable_folder("--out", out)
    root = checks.data_folder("--data", args.data, need="bsds500")
    try:
        extractor = load_extractor("taef2", args.weights)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"--weights: {err}") from None
    try:
        val_images = folder_images(root / "bsds500" / "val", args.val_images, args.eval_crop)
        crops = FolderCrops(root / "bsds500" / "train", base_preset().crop)
    except FileNotFoundError as err:
        raise UsageError(f"--data: {err}") from None
    except ValueError as err:                                   # ImageError: a damaged or too small image
        raise UsageError(f"--data / --eval-crop {args.eval_crop}: {err}") from None
    return variants, val_images, crops, extractor


def main(argv: list[str] | None = None) -> int:
    """Check every input (``recipe_search: …``, exit 2, nothing written), then train and score the variants."""
    def check():
        args = _parser().parse_args(argv)
        return (args, *check_inputs(args))

    return checks.run_main("recipe_search", check,
                           lambda checked: run_in("recipe_search", checked[0].out, lambda: search(*checked)))


def search(args, variants: list[str], val_images: list, crops: FolderCrops, extractor) -> int:
    """Train and evaluate every variant on the worker processes, then write the results."""
    import pandas as pd
    from tqdm.auto import tqdm

    out = Path(args.out)
    images = crops(args.pool, torch.Generator().manual_seed(args.seed + 12345))
    start = time.perf_counter()
    _SHARED.update(pool=CachedLatents(images, extractor), val=val_images)
    jobs = sorted(variants, key=lambda v: "pixel" not in v)          # the slowest first
    summaries, rows = [], []
    bar = tqdm(total=len(jobs), desc="recipe search")
    with cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("fork")) as ex:
        for fut in cf.as_completed([ex.submit(run_variant, v, args) for v in jobs]):
            these, r = fut.result()
            summaries += these
            rows += r
            bar.update(1)
            for s in these:
                bar.write(f"{s['variant']}: psnr {s['psnr']:.2f} lp16 {s['psnr_lp16']:.2f} "
                          f"hf {s['hf_ratio']:.2f} fd {s['latent_fd']:.2f} ({s['train_seconds']:.0f} s)")
    bar.close()
    order = {v: i for i, v in enumerate(VARIANTS)}
    df = pd.DataFrame(summaries).sort_values("variant", kind="stable", key=lambda c: c.map(
        lambda v: order[v.split(" ")[0]] + 0.5 * (" " in v)))
    atomic_save(out / "summary.csv", lambda f: df.to_csv(f, index=False))
    atomic_save(out / "metrics.csv", lambda f: pd.DataFrame(rows).to_csv(f, index=False))
    atomic_write_text(out / "table.md", _table(df) if "mse_pixel" in set(df.variant) else df.to_string())
    atomic_write_json(out / "config.json", {**{k: v for k, v in vars(args).items()}, "variants": variants,
                                            "base_preset": base_preset().to_dict(),
                                            "wall_seconds": time.perf_counter() - start, "torch": torch.__version__})
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
