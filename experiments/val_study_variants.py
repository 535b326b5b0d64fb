"""The validation study's variants (docs/val_study.md): what each one trains, and where it is received.

A :class:`Variant` is a registered method (:mod:`jscgc.methods`) built on the ``small`` preset with some
settings replaced, trained under the preset's budget, and received at one operating point
(:class:`jscgc.types.Dial`). Variants that change only the receiver name the variant whose training they
share (``trains``), so one checkpoint serves several receivers. The unchanged methods keep kodak.py's run
record exactly, so their checkpoints are what ``experiments/kodak.py --preset small`` would train.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from jscgc.presets import CROP_SCHEDULE, OUR_RECIPE, PAPER_RECIPE, Preset, get_preset
from jscgc.types import Dial

__all__ = ["Variant", "VARIANTS", "preset_of", "training_of"]


@dataclass(frozen=True)
class Variant:
    """method: a name of jscgc.methods.METHODS. settings: Preset.updated overrides of the ``small`` preset
    (a section as a dict or an instance). dial: the receiver's operating point. trains: the variant whose
    checkpoint this one receives with (None: its own). role: "reference", "screen" or "diagnostic".
    reference: the variant whose PSNR the rule's cost is measured against (the MSE decoder trained alike)."""
    method: str
    description: str
    settings: dict = field(default_factory=dict)
    dial: Dial = Dial()
    trains: str | None = None
    role: str = "screen"
    reference: str = "mambajscc"


_ALONE = {"recipe": replace(PAPER_RECIPE, cond_dropout=1.0)}
_WIDE = {"backbone": {"dim": 192, "n_heads": 6}}
#: half the steps on 64x64 crops, a quarter on 128x128, a quarter on the test grid 256x384 (batch 16, 4, 1)
_CROPS = {"crop_schedule": CROP_SCHEDULE}
#: the paper's recipe moved toward the posterior: trained with 10 % ŷ-dropout, sampled with guidance w = 2
_CFG2 = {"recipe": replace(PAPER_RECIPE, cond_dropout=0.1, guidance=2.0)}

VARIANTS: dict[str, Variant] = {
    # the references: the constraint's MSE decoder and the other realistic receiver
    "mambajscc": Variant("mambajscc", "MambaJSCC: the same network run once, pixel MSE (the PSNR reference)",
                         role="reference"),
    "diffjscc": Variant("diffjscc", "DiffJSCC: CNN JSCC then a conditional flow refiner", role="reference"),
    # the two ends as they stand
    "ours": Variant("jscgc", "our recipe before the study: pixel-MSE stage ¼, flow from μ(ŷ) + 0.3 ε, ÷8 anchor, "
                    "whole grid"),
    "paper": Variant("jscgc-paper", "the paper's recipe: Gaussian start, Eq. 10 end to end, no anchor"),
    # ours moved toward realism, at the receiver only
    "ours-a16": Variant("jscgc", "ours with the ÷16 anchor", dial=Dial(anchor=16), trains="ours"),
    "ours-s01": Variant("jscgc", "ours sampled from μ(ŷ) + 0.1 ε", dial=Dial(prior_noise=0.1), trains="ours"),
    "ours-s05": Variant("jscgc", "ours sampled from μ(ŷ) + 0.5 ε", dial=Dial(prior_noise=0.5), trains="ours"),
    "ours-16": Variant("jscgc", "ours with 16 Euler steps", dial=Dial(steps=16), trains="ours"),
    # the paper's recipe moved toward the posterior
    "paper-16": Variant("jscgc-paper", "the paper's recipe with 16 Euler steps", dial=Dial(steps=16), trains="paper"),
    "paper-cfg2": Variant("jscgc", "the paper's recipe trained with 10 % ŷ-dropout, guidance w = 2", _CFG2),
    # receiving in overlapping windows of the training crop (4x4 tokens), fused at every Euler step
    "ours-win4": Variant("jscgc", "ours received in 4x4-token windows (the training crop), hop 2",
                         dial=Dial(window=4), trains="ours"),
    "paper-win4": Variant("jscgc-paper", "the paper's recipe received in 4x4-token windows, hop 2",
                          dial=Dial(window=4), trains="paper"),
    # offset RoPE positions in training: a 4x4-patch crop placed anywhere in 24x24 patches (the test grid is 16x24)
    "ours-rope": Variant("jscgc", "ours trained with RoPE positions offset by up to 20 patches per axis",
                         {"recipe": {"rope_offset": 20}}),
    "paper-rope": Variant("jscgc", "the paper's recipe trained with RoPE positions offset by up to 20 patches",
                          {"recipe": replace(PAPER_RECIPE, rope_offset=20)}),
    # the structure of ours
    "ours-mse-half": Variant("jscgc", "ours with a pixel-MSE stage of ½",
                             {"recipe": {"mse_share": 0.5}}),
    # the generator alone (ŷ dropped in training, guidance 0 at sampling): what texture the backbone makes
    "alone": Variant("jscgc", "the backbone trained without ŷ (paper's recipe, ŷ always dropped), sampled "
                     "unconditionally", _ALONE, Dial(guidance=0.0), role="diagnostic"),
    "alone-win4": Variant("jscgc", "the generator alone, sampled in 4x4-token windows", _ALONE,
                          Dial(guidance=0.0, window=4), trains="alone", role="diagnostic"),
    "alone-2x": Variant("jscgc", "the generator alone, twice the budget (3200 steps)",
                        {**_ALONE, "train": {"steps": 3200}}, Dial(guidance=0.0), role="diagnostic"),
    "alone-wide": Variant("jscgc", "the generator alone, backbone dim 192 (≈ 4× the parameters)",
                          {**_ALONE, **_WIDE}, Dial(guidance=0.0), role="diagnostic"),
    # a crop schedule up to the test grid, shared by the MSE reference it is measured against
    "mambajscc-crops": Variant("mambajscc", "MambaJSCC trained on the crop schedule (its PSNR reference)", _CROPS,
                               role="reference", reference="mambajscc-crops"),
    "mambajscc-latent-crops": Variant("mambajscc-latent", "MambaJSCC on the crop schedule, its MSE on the latent "
                                      "(no decoder in the loss)", _CROPS, role="reference",
                                      reference="mambajscc-crops"),
    "ours-crops": Variant("jscgc", "ours trained on crops of 64², 128² and the test grid (½, ¼, ¼ of the steps), "
                          "whole grid", _CROPS, reference="mambajscc-crops"),
    "ours-crops-win4": Variant("jscgc", "ours trained on the crop schedule, received in 4x4-token windows",
                               dial=Dial(window=4), trains="ours-crops", reference="mambajscc-crops"),
    "ours-crops-win8": Variant("jscgc", "ours trained on the crop schedule, received in 8x8-token windows",
                               dial=Dial(window=8), trains="ours-crops", reference="mambajscc-crops"),
    "paper-crops": Variant("jscgc-paper", "the paper's recipe trained on the crop schedule, whole grid", _CROPS,
                           reference="mambajscc-crops"),
    # ours on the schedule moved toward realism (σ of the start, trained and sampled) and its MSE-stage share
    "ours-crops-s06": Variant("jscgc", "ours on the crop schedule, trained and sampled from μ(ŷ) + 0.6 ε",
                              {**_CROPS, "recipe": {"prior_noise": 0.6}}, reference="mambajscc-crops"),
    "ours-crops-s10": Variant("jscgc", "ours on the crop schedule, trained and sampled from μ(ŷ) + 1.0 ε",
                              {**_CROPS, "recipe": {"prior_noise": 1.0}}, reference="mambajscc-crops"),
    "ours-crops-s20": Variant("jscgc", "ours on the crop schedule, trained and sampled from μ(ŷ) + 2.0 ε",
                              {**_CROPS, "recipe": {"prior_noise": 2.0}}, reference="mambajscc-crops"),
    "ours-crops-s10-mse-half": Variant("jscgc", "ours on the crop schedule, σ = 1.0 and a pixel-MSE stage of ½",
                                       {**_CROPS, "recipe": {"prior_noise": 1.0, "mse_share": 0.5}},
                                       reference="mambajscc-crops"),
    "ours-crops-s20-mse-half": Variant("jscgc", "ours on the crop schedule, σ = 2.0 and a pixel-MSE stage of ½",
                                       {**_CROPS, "recipe": {"prior_noise": 2.0, "mse_share": 0.5}},
                                       reference="mambajscc-crops"),
    "ours-crops-mse-half": Variant("jscgc", "ours on the crop schedule with a pixel-MSE stage of ½",
                                   {**_CROPS, "recipe": {"mse_share": 0.5}}, reference="mambajscc-crops"),
    # the chosen recipe (SMALL_RECIPE) at the receiver: the ÷16 anchor and 16 Euler steps on the schedule
    # (no anchor is its "(sample)" view, scored with it)
    "ours-crops-s20-mse-half-a16": Variant("jscgc", "the chosen recipe with the ÷16 anchor",
                                           dial=Dial(anchor=16), trains="ours-crops-s20-mse-half",
                                           reference="mambajscc-crops"),
    "ours-crops-s20-mse-half-16": Variant("jscgc", "the chosen recipe with 16 Euler steps", dial=Dial(steps=16),
                                          trains="ours-crops-s20-mse-half", reference="mambajscc-crops"),
    "paper-cfg2-crops": Variant("jscgc", "the paper's recipe on the crop schedule with 10 % ŷ-dropout, guidance "
                                "w = 2", {**_CFG2, **_CROPS}, reference="mambajscc-crops"),
}


def training_of(name: str) -> str:
    """The variant whose checkpoint ``name`` is received with."""
    return VARIANTS[name].trains or name


def preset_of(name: str) -> Preset:
    """The ``small`` preset with the settings of ``name``'s training variant, received on the whole grid
    unless the variant's dial names a window. The study's base is the preset as it stood before the study:
    64x64 crops only, ``OUR_RECIPE``, whole grid. The schedule's reference and the paper's recipe on it
    (``mambajscc-crops``, ``paper-crops``) and the recipe it chose (``ours-crops-s10-mse-half``) train as
    ``small`` now does, so their run records are kodak.py's."""
    base = get_preset("small").updated(recipe=OUR_RECIPE, crop_schedule=())
    return base.updated(**VARIANTS[training_of(name)].settings)
