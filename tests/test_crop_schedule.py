"""The crop schedule (jscgc/crop_schedule.py, docs/design.md 'Crop schedule'): the draw of sizes and the batch
per size, the pools, landscape crops, the loop's count of examples and pixels (replayed independently), bit-
identical resume with batches of varying size, and the preset's record."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from jscgc.checkpoints import Position
from jscgc.crop_schedule import MixedSizes, preset_sources
from jscgc.imagedata import FolderCrops, ImageError
from jscgc.latent_system import training_sources
from jscgc.latents import IdentityLatent
from jscgc.plan import stage_record
from jscgc.presets import get_preset
from jscgc.train import TrainConfig, train
from jscgc.types import LatentBatch, Stage

SCHEDULE = ((16, 16, 0.5), (32, 32, 0.25), (32, 48, 0.25))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(40, 60), (64, 50), (50, 70)]):          # one portrait image
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path


class _Denoiser(nn.Module):
    """A one-stage system on image batches of any size: a 3x3 convolution that removes added noise."""

    data = "pixels"

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def plan(self):
        return (Stage("train", 1.0, self._loss, ("conv",)),)

    def _loss(self, batch, snr_db, generator=None):
        noisy = batch + 0.1 * torch.randn(batch.shape, generator=generator)
        return (self.conv(noisy) - batch).pow(2).mean()


def _sizes(source, draws: int, batch: int = 16, seed: int = 0) -> list[tuple[int, ...]]:
    g = torch.Generator().manual_seed(seed)
    return [tuple(source(batch, g).shape) for _ in range(draws)]


def test_sizes_are_drawn_by_share_with_batches_of_about_the_base_pixels():
    def source(h, w):
        return lambda n, g: torch.zeros(n, 3, h, w)
    mixed = MixedSizes([source(64, 64), source(128, 128), source(256, 384)], [64 * 64, 128 * 128, 256 * 384],
                       [0.5, 0.25, 0.25], 64 * 64)
    shapes = _sizes(mixed, 4000)
    assert {s[0]: s[2:] for s in shapes} == {16: (64, 64), 4: (128, 128), 1: (256, 384)}   # n = round(16·64²/hw)
    for n, share in ((16, 0.5), (4, 0.25), (1, 0.25)):
        freq = sum(s[0] == n for s in shapes) / len(shapes)
        assert abs(freq - share) < 4 * math.sqrt(share * (1 - share) / len(shapes))
    assert _sizes(mixed, 50, seed=9) == _sizes(mixed, 50, seed=9)          # the data generator decides


def test_landscape_crops_come_from_every_image_turned_landscape(folder):
    crops = FolderCrops(folder, (32, 48))
    batch = crops(6, torch.Generator().manual_seed(0))
    assert batch.shape == (6, 3, 32, 48) and len(crops) == 3
    assert all(img.shape[1] <= img.shape[2] for img in crops.images)     # the portrait one is turned
    square = crops.at(16)
    assert square(2, torch.Generator()).shape == (2, 3, 16, 16) and square._decoded is crops._decoded
    with pytest.raises(ImageError, match="smaller than the crop 48x72"):
        crops.at((48, 72))
    with pytest.raises(ValueError, match=r"h <= w"):
        FolderCrops(folder, (48, 32))


def test_without_a_schedule_the_sources_are_the_base_ones_bit_for_bit(folder):
    preset = get_preset("tiny", crop=16, latent_pool=8)
    mine = preset_sources(FolderCrops(folder, 16), preset, IdentityLatent(), 7)
    base = training_sources(FolderCrops(folder, 16), IdentityLatent(), 8, 7)
    for kind in ("pixels", "latents"):
        a = mine[kind](4, torch.Generator().manual_seed(1))
        b = base[kind](4, torch.Generator().manual_seed(1))
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_each_size_has_a_pool_of_about_the_base_pixels(folder):
    preset = get_preset("tiny", crop=16, latent_pool=24, crop_schedule=SCHEDULE)
    sources = preset_sources(FolderCrops(folder, 16), preset, IdentityLatent(), 7)
    pools = [s.__self__ for s in sources["pixels"].sources]             # the pools' .pixels methods
    assert [len(p) for p in pools] == [24, 6, math.ceil(24 * 256 / (32 * 48))]
    assert [tuple(p.images.shape[-2:]) for p in pools] == [(16, 16), (32, 32), (32, 48)]
    batch = sources["latents"](16, torch.Generator().manual_seed(0))
    assert isinstance(batch, LatentBatch) and torch.equal(batch.images, batch.latents)   # identity "latents"


def test_the_loop_counts_examples_and_pixels_of_each_step(folder):
    """Independent replay: the loop's data generator (seed · 1 000 003) drawn again outside the loop."""
    mixed = preset_sources(FolderCrops(folder, 16), get_preset("tiny", crop=16, crop_schedule=SCHEDULE),
                           IdentityLatent(), 0)["pixels"]
    config = TrainConfig(steps=12, batch_size=16, lr=1e-3, progress=False, seed=4)
    result = train(_Denoiser(), mixed, config)
    shapes = _sizes(mixed, 12, seed=4 * 1_000_003)
    (record,) = result.stages
    assert record.examples == sum(s[0] for s in shapes) < 12 * 16
    assert record.pixels == sum(s[0] * s[2] * s[3] for s in shapes)


def test_resume_with_batches_of_varying_size_is_bit_identical(folder, tmp_path):
    mixed = preset_sources(FolderCrops(folder, 16), get_preset("tiny", crop=16, crop_schedule=SCHEDULE),
                           IdentityLatent(), 0)["pixels"]
    config = TrainConfig(steps=10, batch_size=16, lr=1e-2, progress=False, seed=2, checkpoint_every=3)
    ref = _Denoiser()
    want = train(ref, mixed, config)
    train(_Denoiser(), mixed, config, out_dir=tmp_path, stop_after=4)
    got_system = _Denoiser(seed=99)
    got = train(got_system, mixed, config, out_dir=tmp_path)
    assert got.losses == want.losses and got.stages == want.stages
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), got_system.state_dict().values()))


def test_a_batch_that_does_not_split_into_micro_batches_is_refused_before_any_step(folder):
    schedule = ((16, 16, 0.5), (32, 48, 0.5))                            # batches of 16 and 16·256/1536 → 3
    mixed = preset_sources(FolderCrops(folder, 16), get_preset("tiny", crop=16, crop_schedule=schedule),
                           IdentityLatent(), 0)["pixels"]
    system = _Denoiser()
    before = [p.clone() for p in system.parameters()]
    with pytest.raises(ValueError, match=r"batches of \[16, 3\] samples do not all divide into 1 processes x 2"):
        train(system, mixed, TrainConfig(steps=2, batch_size=16, accumulation=2, progress=False))
    assert all(torch.equal(a, b) for a, b in zip(before, system.parameters()))
    plain = lambda n, g: mixed.sources[1](3, g)                          # noqa: E731  (no sample_counts: the step checks)
    with pytest.raises(ValueError, match="a batch of 3 samples does not divide into 1 processes x 2"):
        train(_Denoiser(), plain, TrainConfig(steps=2, batch_size=16, accumulation=2, progress=False))


def test_a_record_from_before_sizes_were_counted_falls_back_to_the_asked_batch():
    old = Position(stage=0, stage_step=5, step=5, losses=[0.0] * 5)
    assert stage_record("train", old, 0, 5, 10, 16) == ("train", 5, 80, 10, None)
    new = Position(stage=1, stage_step=2, step=5, losses=[0.0] * 5, batches=[[16, 16 * 64]] * 3 + [[1, 96]] * 2)
    assert stage_record("flow", new, 3, 2, 10, 16) == ("flow", 2, 2, 10, 192)


@pytest.mark.parametrize("schedule, bad", [(((60, 64, 1.0),), "(60, 64, 1.0)"), (((64, 32, 1.0),), "(64, 32, 1.0)"),
                                           (((64, 64, 0.0),), "(64, 64, 0.0)"), (((64, 64),), "(64, 64)")])
def test_a_bad_schedule_is_one_line_naming_it(schedule, bad):
    with pytest.raises(ValueError, match=r"preset small: crop_schedule: expected .* got " + bad.replace("(", r"\(")
                       .replace(")", r"\)")):
        get_preset("small", crop_schedule=schedule)


def test_the_schedule_is_recorded_only_when_set():
    assert "crop_schedule" not in get_preset("small", crop_schedule=()).to_dict()
    assert "crop_schedule" not in get_preset("tiny").to_dict()
    preset = get_preset("small", crop_schedule=[[64, 64, 0.5], [256, 384, 0.5]])
    assert preset.crop_schedule == ((64, 64, 0.5), (256, 384, 0.5))
    assert preset.training_dict()["crop_schedule"] == ((64, 64, 0.5), (256, 384, 0.5))
