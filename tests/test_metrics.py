"""Metrics against closed forms and known orderings."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jscgc import metrics as M
from jscgc.metrics import pixel


def image(seed=0, size=(2, 3, 64, 64)):
    """A smooth-plus-texture test image in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    h, w = size[-2:]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(6 * xx + 3 * yy)
    return (base + 0.15 * torch.rand(size, generator=g)).clamp(0, 1)


def blur(x, sigma=2.0):
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


def test_psnr_closed_form_and_identity():
    x = image()
    assert torch.isinf(M.psnr(x, x)).all()
    noisy = x.clone()
    noisy[0] = x[0] + 0.05 * torch.sign(torch.randn_like(x[0]))       # MSE exactly 0.0025 (no clamp)
    noisy[1] = x[1] + 0.1
    assert torch.allclose(M.psnr(x, noisy), torch.tensor([10 * math.log10(1 / 0.0025),
                                                          10 * math.log10(1 / 0.01)]), atol=1e-4)


def test_ms_ssim_identity_and_order():
    x = image(size=(1, 3, 192, 192))
    assert torch.allclose(M.ms_ssim(x, x), torch.ones(1), atol=1e-6)
    assert M.ms_ssim(x, blur(x, 3.0)) < M.ms_ssim(x, blur(x, 1.0)) < 1
    small = image(size=(1, 3, 48, 48))
    assert torch.allclose(M.ms_ssim(small, small), torch.ones(1), atol=1e-6)   # fewer scales


def _tm_ms_ssim(x, y, betas=(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as msssim

    return msssim(y.double(), x.double(), data_range=1.0, betas=betas, reduction="none", normalize="relu").float()


def test_ms_ssim_standard_case_is_torchmetrics_exactly():
    x = image(size=(2, 3, 192, 176))
    y = blur(x, 1.0)
    assert M.ms_ssim_scales(176) == 5
    assert torch.allclose(M.ms_ssim(x, y), _tm_ms_ssim(x, y), rtol=0, atol=1e-6)     # default betas


@pytest.mark.parametrize("side", [41, 100, 128])
def test_ms_ssim_fewer_scales_match_torchmetrics_where_it_accepts_the_size(side):
    x = image(size=(1, 3, side, side + 7))
    y = blur(x, 1.0)
    scales = M.ms_ssim_scales(side)
    betas = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)[:scales]
    expected = _tm_ms_ssim(x, y, tuple(b / sum(betas) for b in betas))
    assert torch.allclose(M.ms_ssim(x, y), expected, rtol=0, atol=1e-6)


def test_ms_ssim_every_side_from_32_to_200_runs_and_matches_torchmetrics_where_it_accepts():
    """Every side 32..200 px (non-square, short side = side) gives a value in (0, 1); wherever
    torchmetrics' MS-SSIM accepts the size with the same scales and betas, the two agree to 1e-6."""
    compared = 0
    for side in range(32, 201):
        x = image(seed=side, size=(1, 3, side, side + 5))
        y = blur(x, 1.0)
        value = M.ms_ssim(x, y)
        assert 0 < value.item() < 1, side
        betas = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)[:M.ms_ssim_scales(side)]
        betas = tuple(b / sum(betas) for b in betas) if len(betas) < 5 else betas
        try:
            expected = _tm_ms_ssim(x, y, betas)
        except ValueError:                      # torchmetrics' size guard (see ms_ssim's docstring)
            continue
        assert torch.allclose(value, expected, rtol=0, atol=1e-6), side
        compared += 1
    assert compared >= 100                      # most sizes are comparable: the comparison really ran


def test_separable_blur_is_torchmetrics_gaussian_conv():
    """The separable window filter equals one grouped 11x11 conv2d with the outer-product kernel."""
    x = torch.rand(2, 3, 40, 37, dtype=torch.float64)
    g = torch.tensor(pixel._gaussian_window(), dtype=torch.float64)
    kernel = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)
    assert abs(sum(pixel._gaussian_window()) - 1) < 1e-12 and g[5] == g.max()
    assert torch.allclose(pixel._separable_blur(x, pixel._gaussian_window()), F.conv2d(x, kernel, groups=3), atol=1e-14)


@pytest.mark.parametrize("side,scales", [(96, 4), (41, 2), (43, 2), (81, 3), (98, 4), (161, 4), (175, 4)])
def test_ms_ssim_sizes_torchmetrics_refuses(side, scales):
    """Sides 41–43, 81–98 and 161–175 used to raise inside torchmetrics (its guard needs side > 10·(L−1)²);
    every scale here keeps a whole 11-px window, and the result behaves like MS-SSIM."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    assert M.ms_ssim_scales(side) == scales and side >> (scales - 1) >= 11 and side >> scales < 11
    x = image(size=(1, 3, side, side))
    assert torch.allclose(M.ms_ssim(x, x), torch.ones(1), atol=1e-6)
    sharp, soft = M.ms_ssim(x, blur(x, 1.0)), M.ms_ssim(x, blur(x, 3.0))
    assert 0 < soft < sharp < 1
    a, b, terms = blur(x, 1.0).double(), x.double(), []     # the definition, scale by scale
    for _ in range(scales):
        sim, cs = ssim(a, b, data_range=1.0, reduction="none", return_contrast_sensitivity=True)
        terms.append(cs)
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    betas = torch.tensor((0.0448, 0.2856, 0.3001, 0.2363, 0.1333)[:scales], dtype=torch.float64)
    expected = torch.stack(terms[:-1] + [sim]).clamp(min=0).pow((betas / betas.sum())[:, None]).prod(0)
    assert torch.allclose(sharp.double(), expected, rtol=1e-6)


def test_ms_ssim_refuses_below_one_window():
    assert M.ms_ssim_scales(10) == 0 and M.ms_ssim_scales(11) == 1 and M.ms_ssim_scales(21) == 1
    x = image(size=(1, 3, 10, 64))
    with pytest.raises(ValueError, match="at least 11 px, got 10"):
        M.ms_ssim(x, x)


def test_lowpass_psnr_ignores_texture_but_not_colour():
    x = image(size=(1, 3, 64, 64))
    g = torch.Generator().manual_seed(5)
    texture = torch.rand(1, 3, 64, 64, generator=g) - 0.5
    texture = texture - F.interpolate(F.avg_pool2d(texture, 16), scale_factor=16)  # zero mean per 16-block
    swapped = (x + 0.2 * texture)
    assert M.lowpass_psnr(x, swapped, 16) > 60                   # block means unchanged
    assert M.psnr(x, swapped) < 30
    cast = x + 0.1
    assert torch.allclose(M.lowpass_psnr(x, cast, 16), torch.tensor([20.0]), atol=1e-3)


def test_colour_distance_closed_form():
    x = image()
    assert torch.allclose(M.colour_distance(x, x), torch.zeros(2))
    assert torch.allclose(M.colour_distance(x, x + 0.1), torch.full((2,), math.sqrt(3) * 0.1), atol=1e-5)


def test_power_spectrum_distance_ranks_blur_worse():
    x = image(size=(1, 3, 128, 128))
    assert float(M.power_spectrum_distance(x, x)) == 0
    d1, d3 = M.power_spectrum_distance(x, blur(x, 1.0)), M.power_spectrum_distance(x, blur(x, 3.0))
    assert 0 < d1 < d3
    assert M.hf_ratio(x, blur(x, 2.0)) < 0.6 and torch.allclose(M.hf_ratio(x, x), torch.ones(1))


def test_radial_spectrum_of_a_pure_tone_peaks_at_its_frequency():
    n, cycles = 64, 8                                          # 8/64 = 0.125 cycles/px
    xx = torch.arange(n).float()
    tone = (0.5 + 0.4 * torch.cos(2 * math.pi * cycles * xx / n)).view(1, 1, 1, n).expand(1, 3, n, n)
    spec = M.radial_power_spectrum(tone, bins=32)
    assert int(spec.argmax()) == int(0.125 / 0.5 * 32)


def test_frechet_closed_form_and_growth():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert M.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    b = a * 2 + 1                  # N(1, 4I) vs N(0, I): 3·1 + 3·(1 + 4 − 2·2) = 6 (for the samples' moments)
    assert M.frechet_distance(a, b) == pytest.approx(6, rel=0.05)
    d = [M.frechet_distance(a, a + s * rng.normal(size=a.shape)) for s in (0.1, 0.5, 1.0)]
    assert d[0] < d[1] < d[2]


def test_latent_fd_proxy_self_zero_and_grows_with_noise():
    from jscgc.latents import TAEF2

    torch.manual_seed(0)
    ready, missing = M.available_metrics(["latent_fd"], extractor=TAEF2())
    assert not missing
    refs = [image(s, (1, 3, 32, 32)) for s in range(4)]
    g = torch.Generator().manual_seed(1)
    noisy = lambda s: [(r + s * torch.randn(r.shape, generator=g)).clamp(0, 1) for r in refs]  # noqa: E731
    fd = [M.evaluate_sets(refs, imgs, ready)["latent_fd"] for imgs in (refs, noisy(0.05), noisy(0.3))]
    assert abs(fd[0]) < 1e-6 and fd[0] < fd[1] < fd[2]


def test_unavailable_metrics_are_named_not_invented(monkeypatch, tmp_path):
    monkeypatch.setenv("JSCGC_WEIGHTS", str(tmp_path))          # an empty weights folder
    ready, missing = M.available_metrics()
    for name in ("lpips_alex", "lpips_vgg", "lpips_squeeze", "dists", "dino", "rfid", "latent_fd"):
        assert name in missing and name not in ready and missing[name]
    assert {"psnr", "ms_ssim", "psnr_lp16", "psd_dist"} <= set(ready)
    values = M.evaluate_images(image(), image(1), ready)
    assert set(values) == {n for n in ready if M.METRICS[n].kind == "image"}
    with pytest.raises(ValueError, match="unknown metric"):
        M.available_metrics(["fid"])


def test_one_table_describes_every_metric():
    import importlib
    import json

    for name, m in M.METRICS.items():
        assert m.name == name and m.kind in ("image", "set") and m.better in ("higher", "lower", "one")
        assert m.needs in ("", "extractor", "lpips", "dists", "dino", "fid") and m.input_range == (0.0, 1.0) and m.label
        assert json.loads(json.dumps(m.describe()))["kind"] == m.kind
    text = M.METRICS["psnr_lp8"].describe()["function"]             # names the function where it lives
    assert text == "jscgc.metrics.pixel.lowpass_psnr(factor=8)"
    module, _, function = text.split("(")[0].rpartition(".")
    assert getattr(importlib.import_module(module), function) is M.lowpass_psnr
    ready, missing = M.available_metrics(["psnr_lp8", "latent_fd"])
    assert missing == {"latent_fd": "latent_fd needs the TAEF2 extractor"}
    x = image()
    assert torch.equal(ready["psnr_lp8"](x, x * 0.9), M.lowpass_psnr(x, x * 0.9, 8))


# ----------------------------------------------------------------------------- patch_fd
def _scipy_patch_dct(img, size=8):
    """Independent reference: scipy's orthonormal 2-D DCT-II of every patch of one (3, H, W) image,
    patches in row-major grid order: (patches, 3, size²)."""
    from scipy.fft import dctn

    x = img.double().numpy()
    rows = []
    for i in range(x.shape[1] // size):
        for j in range(x.shape[2] // size):
            p = x[:, i * size:(i + 1) * size, j * size:(j + 1) * size]
            rows.append(dctn(p, type=2, norm="ortho", axes=(1, 2)).reshape(3, -1))
    return np.stack(rows)


def test_dct_matrix_is_scipys_orthonormal_dct():
    from scipy.fft import dct

    c = M.dct_matrix(8).numpy()
    assert np.allclose(c, dct(np.eye(8), type=2, norm="ortho", axis=0), atol=1e-14)
    assert np.allclose(c @ c.T, np.eye(8), atol=1e-14)


def test_patch_dct_features_equal_scipy_dctn():
    x = image(3, (2, 3, 44, 61))                         # 5x7 patches, ragged borders cropped
    full = M.patch_dct_features(x, cap=None, keep_dc=True)
    expected = np.concatenate([_scipy_patch_dct(x[b]) for b in range(2)])
    assert full.shape == (2 * 35, 3, 64) and np.allclose(full, expected, atol=1e-12)
    assert np.allclose(full[:, :, 0], 8 * x[..., :40, :56].unfold(2, 8, 8).unfold(3, 8, 8)
                       .mean((-1, -2)).permute(0, 2, 3, 1).reshape(-1, 3).double().numpy(), atol=1e-12)
    ac = M.patch_dct_features(x, cap=None)               # the default drops DC
    assert ac.shape == (70, 3, 63) and np.array_equal(ac, full[:, :, 1:])


def test_patch_cap_draws_the_same_places_in_every_image():
    x = image(4, (2, 3, 64, 64))                         # 64 patches per image
    full = M.patch_dct_features(x, cap=None).reshape(2, 64, 3, 63)
    capped = M.patch_dct_features(x, cap=10).reshape(2, 10, 3, 63)
    rows = [[int(np.flatnonzero((full[b] == r).all((1, 2)))[0]) for r in capped[b]] for b in range(2)]
    assert rows[0] == rows[1] and len(set(rows[0])) == 10 and rows[0] == sorted(rows[0])
    assert np.array_equal(M.patch_dct_features(x, cap=10), M.patch_dct_features(x, cap=10))   # fixed seed
    assert not np.array_equal(M.patch_dct_features(x, cap=10, seed=1), capped.reshape(-1, 3, 63))
    assert M.patch_dct_features(x, cap=64).shape == M.patch_dct_features(x, cap=None).shape == (128, 3, 63)


def _set(seed0, n=6, sizes=((64, 96), (72, 48))):
    return [image(seed0 + i, (1, 3, *sizes[i % len(sizes)])) for i in range(n)]


def test_patch_fd_identity_order_and_table():
    refs = _set(10)
    threads = torch.get_num_threads()
    assert abs(M.patch_fd(refs, refs)) < 1e-9
    assert torch.get_num_threads() == threads                # its one-thread section is undone
    outs = [blur(r, 1.0) for r in refs]
    d = M.patch_fd(refs, outs)
    perm = [3, 0, 5, 1, 4, 2]
    assert d > 0 and M.patch_fd([refs[i] for i in perm], outs[::-1]) == pytest.approx(d, rel=1e-9)
    m = M.METRICS["patch_fd"]
    assert (m.kind, m.needs, m.better) == ("set", "", "lower") and "DCT" in m.label
    ready, missing = M.available_metrics(["patch_fd"])
    assert not missing and M.evaluate_sets(refs, outs, ready) == {"patch_fd": pytest.approx(d, rel=1e-12)}


def test_patch_fd_grows_monotonically_with_blur():
    refs = _set(20)
    fd = [M.patch_fd(refs, [blur(r, s) for r in refs]) for s in (0.5, 1.0, 1.5, 2.0, 3.0)]
    assert 0 < fd[0] and all(a < b for a, b in zip(fd, fd[1:])), fd


def test_memoised_features_encode_each_content_once_and_never_confuse_two():
    calls = []

    def features(images):
        calls.append(images.shape)
        return images.flatten(1).double().numpy() * 2

    memo = M.MemoisedFeatures(features, size=2)
    a, b = image(seed=1, size=(1, 3, 16, 16)), image(seed=2, size=(1, 3, 16, 16))
    first = memo(a)
    assert np.array_equal(memo(a.clone()), first) and len(calls) == 1        # same content: one encode
    assert not np.array_equal(memo(b), first) and len(calls) == 2             # other content: encoded
    changed = a.clone()
    changed[0, 0, 0, 0] += 1e-3
    memo(changed)
    assert len(calls) == 3                                                     # one changed pixel: a miss
    memo(a)
    assert len(calls) == 4                                                     # evicted (size 2): encoded again
    before = len(calls)
    M.set_frechet([a, b], [b.clone(), a.clone()], memo)                       # a is cached, b was evicted
    assert len(calls) == before + 1
