"""The CPU speed options against the paths they replace: same inputs, same outputs and gradients within
float32 rounding (docs/performance.md, 'CPU training: before and after').

* TAEF2 on channels-last activations (``TAEF2.channels_last``) against the default layout, forward and
  backward, both measured against a float64 copy; parameters, state dict and saved weights unchanged.
* DiffJSCC's refinement on the pool's cached latents (``cached_latents``) against re-encoding the images.
"""
import copy

import pytest
import torch
from safetensors.torch import load_file, save_model

from jscgc.baselines import DiffJSCC
from jscgc.latent_system import CachedLatents
from jscgc.latents import TAEF2
from jscgc.methods import build_method
from jscgc.presets import get_preset
from jscgc.types import LatentBatch


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a − b|| / ||b|| in float64."""
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


@pytest.fixture(scope="module")
def taef2():
    torch.manual_seed(0)
    return TAEF2().eval().requires_grad_(False)


def _decode_with_grad(ext, z, target):
    """decode_unclamped(z) and d/dz of its squared error to ``target`` (pixel MSE's path)."""
    z = z.clone().requires_grad_(True)
    out = ext.decode_unclamped(z)
    (out - target.to(out.dtype)).pow(2).mean().backward()
    return out.detach(), z.grad


def test_taef2_channels_last_decoder_matches_default_layout_forward_and_backward(taef2):
    g = torch.Generator().manual_seed(1)
    z, target = torch.randn(4, 32, 8, 8, generator=g), torch.rand(4, 3, 64, 64, generator=g)
    exact = copy.deepcopy(taef2).double()
    exact.channels_last = False
    out64, grad64 = _decode_with_grad(exact, z.double(), target)
    runs = {}
    for flag in (False, True):
        taef2.channels_last = flag
        runs[flag] = _decode_with_grad(taef2, z, target)
    taef2.channels_last = True
    (out, grad), (out_ref, grad_ref) = runs[True], runs[False]
    assert out.is_contiguous() and grad.is_contiguous() and out.shape == (4, 3, 64, 64)
    assert _rel(out, out_ref) < 1e-5
    # the forward's distance to float64 is rounding-sized, the channels-last one no more than 3x the other's
    assert _rel(out, out64) < 3 * _rel(out_ref, out64) + 1e-7
    # Backward: a ReLU whose input lies within rounding of 0 can switch in either float32 layout and move
    # the gradient near it (here one of ~10^6 inputs does in the channels-last run: 7e-5 from float64, the
    # default layout 4e-7; with the shipped weights both are 8e-5 from float64). Far from 1e-3 either way.
    assert _rel(grad, grad_ref) < 1e-3 and _rel(grad, grad64) < 1e-3 and _rel(grad_ref, grad64) < 1e-3


def test_taef2_channels_last_encoder_matches_default_layout(taef2):
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    taef2.channels_last = False
    ref = taef2.encode(x)
    taef2.channels_last = True
    out = taef2.encode(x)
    assert out.is_contiguous() and out.shape == (3, 32, 8, 8)
    assert _rel(out, ref) < 1e-5


def test_taef2_channels_last_keeps_parameters_and_saved_weights(taef2, tmp_path):
    before = {k: v.clone() for k, v in taef2.state_dict().items()}
    taef2.channels_last = True
    taef2.decode(taef2.encode(torch.rand(2, 3, 64, 64)))
    assert all(p.is_contiguous() for p in taef2.parameters())
    save_model(taef2, str(tmp_path / "w.safetensors"))                  # refuses non-contiguous tensors
    saved = load_file(str(tmp_path / "w.safetensors"))
    assert saved.keys() == before.keys() and all(torch.equal(saved[k], before[k]) for k in before)


def _diffjscc():
    torch.manual_seed(0)
    extractor = TAEF2()
    return build_method("diffjscc", get_preset("tiny"), extractor), extractor


def _refine(system, batch, seed: int):
    """refine_loss on ``batch`` at fixed SNRs and generator seed; (loss, the refiner's gradients)."""
    system.zero_grad(set_to_none=True)
    loss = system.refine_loss(batch, torch.tensor([0.0, 5.0, 10.0]), torch.Generator().manual_seed(seed))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in system.velocity.named_parameters() if p.grad is not None}


def test_diffjscc_refinement_on_cached_latents_matches_reencoding():
    system, extractor = _diffjscc()
    pool = CachedLatents(torch.rand(12, 3, 64, 64, generator=torch.Generator().manual_seed(3)), extractor)
    batch = pool(3, torch.Generator().manual_seed(4))
    pixels = pool.pixels(3, torch.Generator().manual_seed(4))
    assert torch.equal(batch.images, pixels)                             # the two sources draw the same crops
    calls = []
    hook = extractor.encoder.register_forward_hook(lambda *args: calls.append(1))
    loss, grads = _refine(system, batch, 5)
    assert len(calls) == 1                                               # the condition x̃ only
    system.cached_latents = False
    loss_ref, grads_ref = _refine(system, pixels, 5)
    assert len(calls) == 3                                               # the target and x̃
    hook.remove()
    assert abs(float(loss - loss_ref)) <= 1e-5 * abs(float(loss_ref))
    assert grads.keys() == grads_ref.keys() and grads
    assert all(_rel(grads[n], grads_ref[n]) < 1e-4 for n in grads if grads_ref[n].norm() > 0)


def test_diffjscc_takes_the_cached_latents_not_the_images():
    """The targets come from the batch's latents: other latents beside the same images change the loss."""
    system, _ = _diffjscc()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    latents = system.extractor.encode(images)
    loss = _refine(system, LatentBatch(images, latents), 7)[0]
    assert torch.allclose(_refine(system, LatentBatch(images, latents.clone()), 7)[0], loss, rtol=0, atol=0)
    assert not torch.allclose(_refine(system, LatentBatch(images, latents + 1.0), 7)[0], loss)


def test_diffjscc_reconstruction_stage_reads_a_latent_batch_as_its_images():
    system, _ = _diffjscc()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    batch = LatentBatch(images, torch.zeros(2, 32, 8, 8))
    snr = torch.tensor([2.0, 8.0])
    stage = system.plan()[0]
    got = stage.loss(batch, snr, torch.Generator().manual_seed(9))
    assert torch.equal(got, system.stage1.loss(images, snr, torch.Generator().manual_seed(9)))


def test_diffjscc_reads_the_latent_pool_only_with_cached_latents():
    system, extractor = _diffjscc()
    assert system.data == "latents"
    system.cached_latents = False
    assert system.data == "pixels"
    assert build_method("cjscc", get_preset("tiny"), extractor).data == "pixels"
    assert build_method("mambajscc", get_preset("tiny"), extractor).data == "latents"
    assert DiffJSCC(system.stage1, system.velocity).data == "pixels"        # no extractor: vectors, no latents

