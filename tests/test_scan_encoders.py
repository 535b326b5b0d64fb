"""Selective scan against a sequential reference; MambaJSCC and Deep JSCC encoders; CBR accounting."""
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings, strategies as st

from jscgc.cbr import achieved_cbr, as_fraction, n_symbols, symbols_per_token
from jscgc.channels import symbol_power
from jscgc.encoders.cnn import CNNEncoder
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.scan import selective_scan, selective_scan_reference, selective_scan_torch


def _scan_inputs(seed, b, d, n, length, groups, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return (r(b, d, length), r(b, d, length), -torch.rand(d, n, generator=g, dtype=dtype) * 4,
            r(b, groups, n, length), r(b, groups, n, length), r(d), r(d))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 3), d=st.sampled_from([2, 4, 6]),
       n=st.integers(1, 5), length=st.integers(1, 70), groups=st.sampled_from([1, 2]))
def test_parallel_scan_matches_sequential_reference(seed, b, d, n, length, groups):
    u, delta, A, B, C, D, bias = _scan_inputs(seed, b, d, n, length, groups)
    ref = selective_scan_reference(u, delta, A, B, C, D, bias, True)
    out = selective_scan_torch(u, delta, A, B, C, D, bias, True)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_scan_shared_B_C_and_gradients_match_reference():
    u, delta, A, B, C, D, bias = _scan_inputs(0, 2, 4, 3, 33, 1, torch.float64)
    B, C = B[:, 0], C[:, 0]                                   # (batch, N, L) form
    grads = []
    for fn in (selective_scan_reference, selective_scan_torch):
        x = u.clone().requires_grad_(True)
        fn(x, delta, A, B, C, D, bias, True).pow(2).sum().backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


@pytest.mark.parametrize("step_decay,chunk,scale", [(0.5, 16, 1.0), (3.0, 16, 1.0), (4.9, 16, 1.0), (4.9, 16, 1e-8),
                                                    (1.2, 64, 1.0), (1.2, 64, 1e-8), (19.0, 16, 1.0)])
def test_float32_scan_gradients_are_finite_and_match_float64_under_strong_decay(step_decay, chunk, scale):
    """Per-step log-decays Δ·A of −0.5 to −19 drive a chunk's cumulative log-decay S to −8…−304 (−78 at
    chunk 16 and −77 at chunk 64 stay on the float32 path). The float32 forward was always finite, but
    its backward once formed (inp / e^S) / e^S, which overflowed past |S| ≈ 44: NaN gradients, MambaJSCC's
    50 skipped steps in the Kodak `small` benchmark. A loss scaled by 1e-8 (a mean over a large batch) once
    lost the decayed terms to underflow. The float32 gradients of u, Δ, A, B and C must equal the float64
    reference loop's, relative to the largest (A's more loosely)."""
    u, _, _, B, C, D, _ = _scan_inputs(3, 2, 4, 3, 80, 1)
    delta = torch.full_like(u, step_decay)
    A = -torch.ones(4, 3)
    grads = {}
    for name, fn, dt in (("f32", lambda *a: selective_scan_torch(*a, chunk=chunk), torch.float32),
                         ("ref", selective_scan_reference, torch.float64)):
        xs = [t.detach().to(dt, copy=True).requires_grad_(True) for t in (u, delta, A, B, C)]
        (scale * fn(xs[0], xs[1], xs[2], xs[3], xs[4], D.to(dt)).pow(2).sum()).backward()
        grads[name] = [x.grad / scale for x in xs]
    # float32 has ~1e-7 relative precision against the largest term; A's gradient sums, over the whole
    # sequence, the two exponentials' contributions of opposite sign, which cancel: 1e-3 for A.
    for g32, g64, tol in zip(grads["f32"], grads["ref"], (1e-5, 1e-5, 1e-3, 1e-5, 1e-5)):
        assert torch.isfinite(g32).all()
        assert (g32.double() - g64).abs().max() <= tol * g64.abs().max()


def test_scan_rejects_bad_shapes():
    u, delta, A, B, C, D, bias = _scan_inputs(0, 1, 4, 3, 5, 1)
    with pytest.raises(ValueError, match="B, C"):
        selective_scan(u, delta, A, B[..., :4], C, D)
    with pytest.raises(ValueError, match="backend"):
        selective_scan(u, delta, A, B, C, D, backend="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mamba-ssm's kernel needs a CUDA GPU")
def test_mamba_ssm_kernel_matches_torch_scan():
    pytest.importorskip("mamba_ssm")
    args = [t.cuda() for t in _scan_inputs(3, 2, 8, 4, 257, 2)]
    u, delta, A, B, C, D, bias = args
    a = selective_scan(u, delta, A, B, C, D, bias, True, backend="mamba_ssm")
    b = selective_scan(u, delta, A, B, C, D, bias, True, backend="torch")
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def tiny_mamba(spt=2, **kw):
    torch.manual_seed(0)
    return MambaJSCCEncoder(in_channels=32, symbols_per_token=spt, patch_size=2, dims=(8, 16),
                            depths=(1, 1), d_state=4, mlp_ratio=1.0, **kw)


def test_mamba_encoder_forward_backward_unit_power():
    enc = tiny_mamba()
    x = torch.randn(3, 32, 8, 12, requires_grad=True)
    z = enc(x)
    assert z.shape == (3, (8 // 4) * (12 // 4) * 2, 2)
    assert torch.allclose(symbol_power(z), torch.ones(3), atol=1e-5)
    z.square().mul(torch.randn_like(z)).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="multiples of 4"):
        enc(torch.randn(1, 32, 6, 8))


def test_mamba_encoder_scan_routes_see_the_whole_grid():
    """Every input position influences every output symbol's token through the 2-D scan."""
    enc = tiny_mamba().double()
    x = torch.randn(1, 32, 8, 8, dtype=torch.float64, requires_grad=True)
    z = enc(x)
    z[0, 0].sum().backward()                      # the first token's symbol
    reach = x.grad.abs().sum(1)[0]
    assert (reach > 0).all()


@settings(max_examples=25, deadline=None)
@given(th=st.integers(1, 3), tw=st.integers(1, 3), k=st.integers(1, 4), factor=st.sampled_from([1, 8]))
def test_encoder_symbols_match_cbr_exactly(th, tw, k, factor):
    """A latent of (th·s, tw·s) positions is an image of (th·s·f, tw·s·f) pixels; at the CBR that
    gives k symbols per token, the encoder emits exactly H·W·3·CBR symbols."""
    enc = tiny_mamba(spt=k)
    stride_px = enc.stride * factor
    cbr = Fraction(k, 3 * stride_px ** 2)
    assert symbols_per_token(stride_px, cbr) == k
    H, W = th * stride_px, tw * stride_px
    z = enc(torch.randn(1, 32, th * enc.stride, tw * enc.stride))
    assert z.shape[1] == n_symbols(H, W, cbr)
    assert achieved_cbr(z.shape[1], H, W) == cbr


@given(h=st.integers(1, 512), w=st.integers(1, 512), den=st.integers(1, 2000))
def test_n_symbols_is_exact_or_refuses(h, w, den):
    cbr = Fraction(1, den)
    if (h * w * 3) % den == 0:
        assert n_symbols(h, w, cbr) * den == h * w * 3
    else:
        with pytest.raises(ValueError, match="not a whole number"):
            n_symbols(h, w, cbr)


def test_cbr_parsing_and_paper_numbers():
    assert as_fraction("1/384") == as_fraction(1 / 384) == Fraction(1, 384)
    assert n_symbols(256, 256, "1/384") == 512
    assert n_symbols(512, 768, "1/384") == 3072
    assert symbols_per_token(16, "1/384") == 2
    with pytest.raises(ValueError, match="whole number"):
        symbols_per_token(4, "1/384")
    for bad in ("abc", 0, -1):
        with pytest.raises(ValueError, match="cbr"):
            as_fraction(bad)


def test_cnn_encoder_cbr_and_power():
    torch.manual_seed(0)
    enc = CNNEncoder(symbols_per_token=symbols_per_token(16, "1/384"), n_down=4)
    x = torch.rand(2, 3, 64, 32)
    z = enc(x)
    assert z.shape[1] == n_symbols(64, 32, "1/384")
    assert torch.allclose(symbol_power(z), torch.ones(2), atol=1e-5)
