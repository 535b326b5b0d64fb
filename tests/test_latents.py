"""Latent extractors: TAEF2 with the shipped weights, the FLUX VAE route, identity."""
import pytest
import torch

from jscgc.imagedata import data_root
from jscgc.latents import TAEF2, FluxVAE, IdentityLatent, load_extractor, weights_root


def _shared_or_skip():
    root, weights = None, weights_root()
    try:
        root = data_root(need="kodak")
    except FileNotFoundError:
        pass
    if root is None or weights is None or not (weights / "taef2").is_dir():
        pytest.skip("../shared (kodak images and taef2 weights) is absent; set JSCGC_DATA and JSCGC_WEIGHTS")
    return root


@pytest.mark.parametrize("name, floor", [("kodim01", 27.0), ("kodim05", 27.0), ("kodim15", 30.0),
                                         ("kodim23", 32.0)])
def test_taef2_round_trip_psnr(name, floor):
    _shared_or_skip()
    from jscgc.imagedata import kodak
    from jscgc.metrics import psnr

    ae = load_extractor("taef2")
    (_, x), = kodak(names=[name])
    with torch.no_grad():
        z = ae.encode(x[None])
        y = ae.decode(z)
    assert z.shape == (1, 32, x.shape[1] // 8, x.shape[2] // 8)
    assert 0.6 < float(z.std()) < 1.0                       # ARCHITECTURE.md: std about 0.8
    assert float(psnr(x[None], y)) >= floor


def test_taef2_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="taef2_encoder.pth"):
        TAEF2(tmp_path)


def test_taef2_random_shapes_and_range():
    torch.manual_seed(0)
    ae = TAEF2()
    x = torch.rand(2, 3, 32, 48)
    z = ae.encode(x)
    assert z.shape == (2, 32, 4, 6)
    y = ae.decode(z * 100)                                  # soft clamp and output clamp
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="multiples of 8"):
        ae.encode(torch.rand(1, 3, 30, 32))


def test_flux_vae_loads_from_a_folder_and_applies_scale_and_shift(tmp_path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                        latent_channels=4, norm_num_groups=8, layers_per_block=1,
                        scaling_factor=0.3611, shift_factor=0.1159)
    vae.save_pretrained(tmp_path / "ckpt" / "vae")
    ext = FluxVAE.from_pretrained(str(tmp_path / "ckpt"))
    assert ext.channels == 4 and ext.factor == 2
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        z = ext.encode(x)
        mean = vae.encode(x * 2 - 1).latent_dist.mean
        assert torch.allclose(z, (mean - 0.1159) * 0.3611, atol=1e-5)
        ref = ((vae.decode(mean).sample + 1) / 2).clamp(0, 1)
        assert torch.allclose(ext.decode(z), ref, atol=1e-5)


def test_flux_vae_missing_weights_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="FLUX VAE: no weights"):
        FluxVAE.from_pretrained(str(tmp_path / "nothing"))


def test_identity_and_unknown_name():
    x = torch.rand(1, 3, 5, 7)
    assert torch.equal(IdentityLatent().decode(IdentityLatent().encode(x)), x)
    with pytest.raises(ValueError, match="taef2"):
        load_extractor("sd3")
