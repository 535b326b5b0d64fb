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

import concurrent.futures as cf
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

from experiments.recipe_search_config import VARIANTS, RecipeSearchConfig, base_preset, configure
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.imagedata import FolderCrops, folder_images
from jscgc.io import atomic_save, atomic_write_json, atomic_write_text, is_complete, run_in
from jscgc.latents import load_extractor
from jscgc.methods import build_method
from jscgc.evaluation import score
from jscgc.metrics import available_metrics, evaluate_sets
from jscgc.latent_system import CachedLatents, LatentSystem, anchor
from jscgc.train import TrainConfig, train
from jscgc.types import Dial

SCORED = ["psnr", "psnr_lp8", "psnr_lp16", "colour_dist", "hf_ratio", "detail_match", "lpips_alex", "lpips_vgg",
          "dists", "latent_fd", "patch_fd"]

PICTURES = 4                    # the first validation images are saved as picture grids
#: extra receivers of the same trained system and sample (posterior-mean variants); order: μ, ÷16, ÷8
RECEIVERS = {"μ only": "its frozen MSE decoder μ(ŷ) alone",
             "anchor ÷16": "its sample with the ÷16 band of μ(ŷ) (LatentSystem anchor_lowpass=16)",
             "anchor ÷8": "its sample with the ÷8 band of μ(ŷ) (LatentSystem anchor_lowpass=8)"}


def build(variant: str, extractor):
    """The system of ``variant`` (a LatentSystem) and its step-budget multiplier."""
    method, overrides, budget, _ = VARIANTS[variant]
    system = build_method(method.split("-")[0], base_preset().updated(**overrides), extractor)
    if method == "mambajscc-latent":       # the same system, its MSE measured on latents
        system = LatentSystem(system.inner, extractor, pixel_loss=False)
    return system, budget


_SHARED: dict = {}     # the crops with their latents (CachedLatents) and the val images, set before the workers fork


def _receive_all(system, labels, val_images, config: RecipeSearchConfig) -> dict:
    """Per label: (originals, outputs, per-image rows). The posterior-mean receivers reuse the sample and
    μ(ŷ) of the one reception per image."""
    ready, _ = available_metrics(SCORED, extractor=system.extractor)
    per_label = {label: ([], [], []) for label in labels}
    for k, (name, image) in enumerate(val_images):
        x = image[None]
        g = torch.Generator().manual_seed(config.seed * 1000 + k)
        with torch.no_grad():
            r = system.receive(system.transmit(x, config.snr, g), Dial(), g, tuple(x.shape))
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


def run_variant(variant: str, config: RecipeSearchConfig):
    """Train one variant and evaluate it; returns (summary row, per-image rows)."""
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    system, budget = build(variant, load_extractor("taef2", config.weights))
    cfg = TrainConfig(steps=round(budget * config.steps), batch_size=config.batch_size, lr=config.lr,
                      lr_schedule="cosine", warmup=50, snr_db=[-5.0, 10.0], seed=config.seed, progress=False, cpu=True)
    start = time.perf_counter()
    result = train(system, _SHARED["pool"], cfg)
    seconds = time.perf_counter() - start
    system.eval()
    labels = [variant]
    if "prior_noise" in system.dial_options:      # a posterior-mean prior: the same sample, other receivers
        labels += [f"{variant} ({what})" for what in RECEIVERS]
    per_label, ready = _receive_all(system, labels, _SHARED["val"], config)
    summaries, rows = [], []
    pics = list(range(min(PICTURES, len(_SHARED["val"]))))
    for label, (refs, outs, these) in per_label.items():
        means = {m: sum(r[m] for r in these) / len(these) for m in these[0] if m not in ("variant", "image")}
        summaries.append({"variant": label, **means, **evaluate_sets(refs, outs, ready), "train_seconds": seconds,
                          "steps": result.step, "final_loss": sum(result.losses[-50:]) / max(1, len(result.losses[-50:])),
                          "what": VARIANTS[variant][3] if label == variant else RECEIVERS[label[len(variant) + 2:-1]]})
        rows += these
        if pics:
            _save_grid(Path(config.out) / "pictures" / _file_name(label),
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


def check_inputs(config: RecipeSearchConfig) -> tuple[list, FolderCrops, object]:
    """The folders, data and weights of ``config``, in the main process before any training (raises
    UsageError); nothing is written. Returns the validation images, the training crops and the TAEF2 extractor."""
    out = Path(config.out)
    if is_complete(out) and not config.overwrite:
        raise UsageError(f"--out {out} holds a finished run ({out / 'complete.json'} exists); pass --overwrite or another --out")
    checks.writable_folder("--out", out)
    root = checks.data_folder("--data", config.data, need="bsds500")
    try:
        extractor = load_extractor("taef2", config.weights)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"--weights: {err}") from None
    try:
        val_images = folder_images(root / "bsds500" / "val", config.val_images, config.eval_crop)
        crops = FolderCrops(root / "bsds500" / "train", base_preset().crop)
    except FileNotFoundError as err:
        raise UsageError(f"--data: {err}") from None
    except ValueError as err:                                   # ImageError: a damaged or too small image
        raise UsageError(f"--data / --eval-crop {config.eval_crop}: {err}") from None
    return val_images, crops, extractor


def main(argv: list[str] | None = None) -> int:
    """Check every input (``recipe_search: …``, exit 2, nothing written), then train and score the variants."""
    def check():
        config = configure(argv, __doc__)
        return (config, *check_inputs(config))

    return checks.run_main("recipe_search", check,
                           lambda checked: run_in("recipe_search", checked[0].out, lambda: search(*checked)))


def search(config: RecipeSearchConfig, val_images: list, crops: FolderCrops, extractor) -> int:
    """Train and evaluate every variant of ``config`` on the worker processes, then write the results."""
    import pandas as pd
    from tqdm.auto import tqdm

    out = Path(config.out)
    images = crops(config.pool, torch.Generator().manual_seed(config.seed + 12345))
    start = time.perf_counter()
    _SHARED.update(pool=CachedLatents(images, extractor), val=val_images)
    jobs = sorted(config.variants, key=lambda v: "pixel" not in v)          # the slowest first
    summaries, rows = [], []
    bar = tqdm(total=len(jobs), desc="recipe search")
    with cf.ProcessPoolExecutor(config.workers, mp_context=mp.get_context("fork")) as ex:
        for fut in cf.as_completed([ex.submit(run_variant, v, config) for v in jobs]):
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
    atomic_write_json(out / "config.json", {**config.recorded(),
                                            "base_preset": base_preset().to_dict(),
                                            "wall_seconds": time.perf_counter() - start, "torch": torch.__version__})
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
