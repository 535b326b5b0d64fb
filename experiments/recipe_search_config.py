"""The recipe search's configuration (experiments/recipe_search.py): the variants, the CPU-scale base preset,
the flags, and the :class:`RecipeSearchConfig` built once from argv with every number checked.

:func:`configure` raises :class:`jscgc.checks.UsageError` (one line naming the input and what is expected);
the folders, data and weights are checked by ``recipe_search.check_inputs`` before any training.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from jscgc import checks
from jscgc.checks import UsageError
from jscgc.presets import PAPER_RECIPE, BackboneConfig, get_preset

__all__ = ["VARIANTS", "RecipeSearchConfig", "base_preset", "configure"]

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


def base_preset():
    """The CPU-scale stand-in for ``default``: same parts, 64-px crops, a 4-layer dim-96 backbone, the paper's
    recipe (each variant changes it)."""
    return get_preset("tiny", encoder=dict(dims=(32, 32), depths=(1, 1), d_state=8, mlp_ratio=1.0),
                      backbone=BackboneConfig(dim=96, n_layers=4, n_heads=3, cap_feat_dim=32),
                      adapter=dict(layers=(0, 2), hidden=64), caption_tokens=8, recipe=PAPER_RECIPE)


@dataclass(frozen=True)
class RecipeSearchConfig:
    """One recipe search, as the command line asked for it (see ``python experiments/recipe_search.py --help``).
    Plain fields only: the worker processes receive it pickled."""
    out: str                         # --out as given
    variants: tuple[str, ...]        # known, distinct names of VARIANTS
    steps: int
    batch_size: int
    lr: float
    pool: int
    snr: float
    eval_crop: int                   # a multiple of the base preset's token size
    val_images: int
    data: str | None
    weights: str | None
    workers: int
    seed: int
    overwrite: bool

    def recorded(self) -> dict:
        """The settings as config.json records them (one key per flag)."""
        return {**dataclasses.asdict(self), "variants": list(self.variants)}


def _parser(description: str | None) -> argparse.ArgumentParser:
    p = checks.Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def configure(argv, description: str | None = None) -> RecipeSearchConfig:
    """argv -> the checked :class:`RecipeSearchConfig` (UsageError on an unknown variant or a bad number);
    nothing is read or written."""
    args = _parser(description).parse_args(argv)
    variants = checks.names("--variants", args.variants, VARIANTS)
    for flag in ("steps", "batch_size", "pool", "val_images", "workers"):
        checks.positive_int(f"--{flag.replace('_', '-')}", getattr(args, flag))
    checks.positive_finite("--lr", args.lr)
    checks.finite("--snr", args.snr)
    checks.nonnegative_int("--seed", args.seed)
    tile = base_preset().token_px
    if checks.positive_int("--eval-crop", args.eval_crop) % tile:
        raise UsageError(f"--eval-crop {args.eval_crop}: expected a multiple of {tile} (the encoders' token size)")
    return RecipeSearchConfig(
        out=args.out, variants=tuple(variants), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        pool=args.pool, snr=args.snr, eval_crop=args.eval_crop, val_images=args.val_images, data=args.data,
        weights=args.weights, workers=args.workers, seed=args.seed, overwrite=args.overwrite)
