"""LPIPS and DISTS (jscgc.perceptual) against the official values, an independent evaluation, and the
mistakes a re-implementation makes (swapped heads, a skipped normalisation); the detail-match measure.

The calibration data and weights live in ../shared (never committed): without them those tests skip,
naming what is missing. The structural tests run everywhere, on random weights."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jscgc import metrics as M
from jscgc import perceptual as P
from jscgc.latents import weights_root

CALIBRATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "iqa_calibration"
ROOT = weights_root()
PAIRS = ("I03", "I04", "I06", "I08", "I19")


def _need_weights():
    if ROOT is None or not (ROOT / "lpips" / "vgg16_features.pth").is_file() or not (ROOT / "dists").is_dir():
        pytest.skip("LPIPS/DISTS weights not found (JSCGC_WEIGHTS or ../shared/weights)")


def _need_calibration():
    _need_weights()
    if not (CALIBRATION / "official.csv").is_file():
        pytest.skip(f"{CALIBRATION} not found")


def _image(path: Path) -> torch.Tensor:
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float().div(255)[None]


@pytest.fixture(scope="module")
def pairs():
    _need_calibration()
    return {n: (_image(CALIBRATION / "ref" / f"{n}.png"), _image(CALIBRATION / "dist" / f"{n}.png")) for n in PAIRS}


@pytest.fixture(scope="module")
def official():
    _need_calibration()
    with open(CALIBRATION / "official.csv") as f:
        return {row["metric"]: {n: float(row[n]) for n in PAIRS} for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def alex():
    _need_weights()
    return P.load_lpips("alex", ROOT / "lpips")


@pytest.fixture(scope="module")
def dists():
    _need_weights()
    return P.load_dists(ROOT)


def _lpips_values(model, pairs) -> dict:
    with torch.no_grad():
        return {n: float(model(r * 2 - 1, d * 2 - 1)) for n, (r, d) in pairs.items()}


def _off_by(values: dict, expected: dict) -> float:
    return max(abs(values[n] - expected[n]) for n in expected)


# ----------------------------------------------------------------------------- calibration
def test_lpips_alex_reproduces_the_official_values(alex, pairs, official):
    assert _off_by(_lpips_values(alex, pairs), official["lpips_alex"]) <= 1e-3


def test_dists_reproduces_the_official_values_in_either_order(dists, pairs, official):
    with torch.no_grad():
        forward = {n: float(dists(r, d)) for n, (r, d) in pairs.items()}
        backward = {n: float(dists(d, r)) for n, (r, d) in pairs.items()}
    assert _off_by(forward, official["dists"]) <= 1e-3
    assert _off_by(backward, forward) < 1e-6                # DISTS is symmetric by construction


def test_lpips_squeeze_reproduces_the_torchmetrics_docstring_example():
    _need_weights()
    model = P.load_lpips("squeeze", ROOT / "lpips")
    gen = torch.Generator().manual_seed(42)
    a = torch.rand(2, 3, 100, 100, generator=gen) * 2 - 1
    b = torch.rand(2, 3, 100, 100, generator=gen) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model(a, b), torch.tensor([0.1024, 0.0938]), atol=1e-4)


def _independent_lpips_vgg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS-vgg written again from the raw files in float64 with functional ops and the published recipe
    (VGG16 relu1_2 … relu5_3, unit-normalised, v0.1 heads): shares no code with jscgc.perceptual."""
    conv = torch.load(ROOT / "lpips" / "vgg16_features.pth", map_location="cpu", weights_only=True)
    heads = torch.load(ROOT / "lpips" / "vgg.pth", map_location="cpu", weights_only=True)
    shift = torch.tensor([-.030, -.088, -.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450], dtype=torch.float64).view(1, 3, 1, 1)

    def taps(x):
        x, out = (x.double() - shift) / scale, []
        for block, convs in enumerate(([0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28])):
            if block:
                x = F.max_pool2d(x, 2)
            for i in convs:
                x = F.relu(F.conv2d(x, conv[f"features.{i}.weight"].double(), conv[f"features.{i}.bias"].double(),
                                    padding=1))
            out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return out

    total = 0
    for k, (fa, fb) in enumerate(zip(taps(a), taps(b))):
        w = heads[f"lin{k}.model.1.weight"].double().view(1, -1, 1, 1)
        total = total + (w * (fa - fb) ** 2).sum(1).mean((1, 2))
    return total


def test_lpips_vgg_matches_an_independent_evaluation(pairs):
    _need_weights()
    model = P.load_lpips("vgg", ROOT / "lpips")
    for name in ("I03", "I06"):                       # a strong and a weak distortion, at half size for speed
        r, d = (F.avg_pool2d(t, 2) * 2 - 1 for t in pairs[name])
        with torch.no_grad():
            ours, theirs = model(r, d), _independent_lpips_vgg(r, d)
        assert abs(float(ours) - float(theirs)) < 1e-5 * max(1.0, float(theirs)), name


def test_lpips_vgg_matches_torchmetrics_where_it_builds(pairs):
    _need_weights()
    try:
        import torchvision  # noqa: F401
        from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity
    except Exception as err:                          # the registry's torchvision does not load on this torch
        pytest.skip(f"torchmetrics' LPIPS cannot be built here ({type(err).__name__})")
    r, d = pairs["I04"]
    ours = P.load_lpips("vgg", ROOT / "lpips")(r * 2 - 1, d * 2 - 1)
    theirs = learned_perceptual_image_patch_similarity(d * 2 - 1, r * 2 - 1, net_type="vgg")
    assert abs(float(ours) - float(theirs)) < 1e-4


def test_swapped_heads_or_a_skipped_normalisation_fail_the_calibration(alex, dists, pairs, official):
    """Each mistake moves at least one official value by more than the 1e-3 the calibration allows."""
    import copy

    swapped = copy.deepcopy(alex)
    w3, w4 = swapped.heads[3].weight.clone(), swapped.heads[4].weight.clone()   # both 256 channels
    swapped.heads[3].weight.copy_(w4)
    swapped.heads[4].weight.copy_(w3)
    assert _off_by(_lpips_values(swapped, pairs), official["lpips_alex"]) > 1e-3
    unshifted = copy.deepcopy(alex)
    unshifted.shift.zero_()
    unshifted.scale.fill_(1.0)
    assert _off_by(_lpips_values(unshifted, pairs), official["lpips_alex"]) > 1e-3
    with torch.no_grad():                             # LPIPS fed [0, 1] instead of [−1, 1]
        raw = {n: float(alex(r, d)) for n, (r, d) in pairs.items()}
    assert _off_by(raw, official["lpips_alex"]) > 1e-3
    plain = copy.deepcopy(dists)
    plain.mean.zero_()
    plain.std.fill_(1.0)
    with torch.no_grad():
        values = {n: float(plain(r, d)) for n, (r, d) in pairs.items()}
    assert _off_by(values, official["dists"]) > 1e-3


def test_metric_table_values_are_the_models_on_zero_one_images(pairs):
    _need_weights()
    ready, missing = M.available_metrics(["lpips_alex", "dists"])
    assert not missing
    r, d = (F.avg_pool2d(t, 2) for t in pairs["I19"])
    with torch.no_grad():
        assert torch.allclose(ready["lpips_alex"](r, d), P.load_lpips("alex", ROOT / "lpips")(r * 2 - 1, d * 2 - 1))
        assert torch.allclose(ready["dists"](r, d), P.load_dists(ROOT)(r, d))
        assert torch.allclose(ready["lpips_alex"](r, r), torch.zeros(1), atol=1e-7)   # an image with itself
        assert torch.allclose(ready["dists"](r, r), torch.zeros(1), atol=1e-6)


# ----------------------------------------------------------------------------- structure, on random weights
@pytest.mark.parametrize("net", sorted(P.BACKBONES))
def test_backbone_taps_have_the_published_channels(net):
    model = P.LPIPS(net)
    feats = model.features(torch.rand(2, 3, 64, 96) * 2 - 1)
    assert [f.shape[1] for f in feats] == list(P.BACKBONES[net][3])
    for f in feats:                                   # unit norm over channels, or 0 where the ReLUs gave 0
        norm = f.norm(dim=1)
        assert (((norm - 1).abs() < 1e-4) | (norm < 1e-4)).all()
    x, y = torch.rand(2, 3, 64, 96) * 2 - 1, torch.rand(2, 3, 64, 96) * 2 - 1
    for head in model.heads:                          # non-negative heads, as v0.1's, make it a distance
        head.weight.data.uniform_(0, 1)
    assert torch.allclose(model(x, x), torch.zeros(2)) and (model(x, y) > 0).all()
    assert torch.allclose(model(x, y), model(y, x))


def test_state_dict_keys_are_torchvisions_layout():
    keys = set(P.vgg16_features().state_dict())
    assert {f"{i}.weight" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)} <= keys
    assert "3.expand3x3.weight" in P.squeezenet11_features().state_dict()
    assert {k for k in P.alexnet_features().state_dict() if k.endswith("weight")} == {
        f"{i}.weight" for i in (0, 3, 6, 8, 10)}


def test_l2pool_of_a_constant_is_the_constant_inside():
    pool = P.L2Pool(4)
    out = pool(torch.full((1, 4, 8, 8), 3.0))
    assert out.shape == (1, 4, 4, 4) and torch.allclose(out[..., 1:, 1:], torch.full((1, 4, 3, 3), 3.0))


def test_missing_or_damaged_weights_are_reported_not_invented(monkeypatch, tmp_path):
    monkeypatch.setenv("JSCGC_WEIGHTS", str(tmp_path))
    (tmp_path / "lpips").mkdir()
    (tmp_path / "lpips" / "alexnet_features.pth").write_bytes(b"\0" * 64)     # damaged
    (tmp_path / "dists").mkdir()
    ready, missing = M.available_metrics(["lpips_alex", "lpips_vgg", "dists", "psnr"])
    assert set(ready) == {"psnr"}
    assert "alexnet_features.pth is damaged" in missing["lpips_alex"]
    assert "vgg16_features.pth is missing" in missing["lpips_vgg"] and "dists" in missing["dists"]


def test_wrong_backbone_file_is_named(tmp_path):
    torch.save({f"features.{k}": v for k, v in P.vgg16_features().state_dict().items()}, tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError, match="x.pth does not hold this backbone"):
        P._load_backbone(P.alexnet_features(), tmp_path / "x.pth")


# ----------------------------------------------------------------------------- detail match
def _textured(seed: int = 0) -> torch.Tensor:
    """A smooth left half and a textured right half: (1, 3, 64, 96)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 3, 64, 96), 0.5)
    x[..., 48:] += 0.2 * torch.rand(1, 3, 64, 48, generator=g) - 0.1
    return x


def test_detail_match_closed_forms():
    x = _textured()
    assert torch.allclose(M.detail_match(x, x), torch.ones(1))
    for c in (0.25, 0.5, 2.0, 3.0):                   # E(c·x) = c E(x): the score is min(c, 1/c)
        assert torch.allclose(M.detail_match(x, c * x), torch.tensor([min(c, 1 / c)]), atol=1e-5)
    y = _textured(1)
    assert torch.allclose(M.detail_match(x, y), M.detail_match(y, x))


def test_noise_wins_the_hf_ratio_but_not_the_detail_match():
    x = _textured()
    noisy = x + 0.08 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert M.hf_ratio(x, noisy) > 1.5                  # the HF ratio counts noise as detail
    assert M.detail_match(x, noisy) < 0.6 and M.detail_match(x, blurred) < 0.8
    assert M.detail_match(x, noisy) < M.detail_match(x, x) and M.detail_match(x, blurred) < M.detail_match(x, x)


def test_memo_keeps_within_its_byte_budget():
    calls = []
    memo = M.MemoisedFeatures(lambda x: (calls.append(1), [x.clone(), x.clone()])[1], max_bytes=3 * 2 * 4 * 16)
    images = [torch.full((1, 16), float(i)) for i in range(5)]
    for im in images:
        memo(im)
    assert len(memo.cache) == 3 and len(calls) == 5
    memo(images[-1].clone())                          # same content: a hit
    assert len(calls) == 5
    memo(images[0])                                    # evicted: recomputed
    assert len(calls) == 6
