"""The method harness: VIMCO against an enumerated gradient, the matched BSC, NECST's bit
errors, the two DiffJSCC stages, and every registered method training and evaluating on the toy
manifold and on images at tiny size."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from theory.tasks import sphere_source
from experiments.toy_manifold import Config, evaluate
from jscgc.baselines import NECST
from jscgc.checkpoints import load_trained
from jscgc.channels import BSC, bsc_crossover_for_snr
from jscgc.data import manifold_source
from jscgc.latents import TAEF2
from jscgc.methods import METHODS, ToySpec, build_method, build_toy
from jscgc.metrics import available_metrics, evaluate_images
from jscgc.presets import get_preset
from jscgc.train import TrainConfig, train
from jscgc.types import Dial

X = torch.tensor([0.3, -0.5])
P, K, SIGMA = 0.2, 3, 0.5


class ConstantLogits(nn.Module):
    """An encoder whose bit logits are a parameter θ (one channel use, two bits), whatever x is; (B, 1, 2)."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([0.4, -0.7]))

    def forward(self, x):
        return self.theta.expand(x.shape[0], 2).reshape(-1, 1, 2)


class LinearDecoder(nn.Module):
    """x̂ = W s + b on the received Gray QPSK values s (B, 2) of the one channel use."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.5, -0.2], [0.1, 0.8]]))
            self.lin.bias.copy_(torch.tensor([0.05, -0.1]))

    def forward(self, received, shape=None):
        return self.lin(received.symbols.flatten(1))


def _tiny_necst():
    return NECST(ConstantLogits(), BSC(P), LinearDecoder(), samples=K, sigma=SIGMA)


def _exact_objective(system) -> torch.Tensor:
    """NECST's loss −(2σ²/D) E[log mean_k f(ŷ_k)], enumerated over all K-tuples of received words.
    Through a BSC, a received bit is 1 with probability π(1 − p) + (1 − π) p."""
    pi = torch.sigmoid(system.encoder.theta)
    q1 = pi * (1 - P) + (1 - pi) * P
    words = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))      # (4, 2)
    prob = (words * q1 + (1 - words) * (1 - q1)).prod(-1)                     # (4,)
    x_hat = system.decoder.lin((2 * words - 1) / math.sqrt(2))
    log_f = -(x_hat - X).pow(2).sum(-1) / (2 * SIGMA ** 2)                   # (4,)
    total = 0.0
    for combo in itertools.product(range(4), repeat=K):
        c = list(combo)
        total = total + prob[c].prod() * (torch.logsumexp(log_f[c], 0) - math.log(K))
    return -(2 * SIGMA ** 2 / 2) * total


def _grads(system) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in system.parameters()])


def test_vimco_mean_matches_the_enumerated_gradient():
    system = _tiny_necst()
    system.zero_grad()
    _exact_objective(system).backward()
    exact = _grads(system).clone()
    reps, batch = 40, 2000
    g = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(reps):
        system.zero_grad()
        system.loss(X.expand(batch, 2), 0.0, g).backward()
        draws.append(_grads(system).clone())
    draws = torch.stack(draws)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(reps)
    assert (se > 0).all()
    assert ((mean - exact).abs() <= 4 * se + 1e-6).all(), (mean, exact, se)
    # the encoder's gradient comes only from the score term: it is clearly non-zero here
    assert (exact[:2].abs() > 10 * se[:2]).all()


def test_loss_value_is_the_bound():
    """With θ → ±∞ (deterministic bits) and p = 0 the bound is the decoder's squared error."""
    system = NECST(ConstantLogits(), BSC(0.0), LinearDecoder(), samples=4, sigma=SIGMA)
    with torch.no_grad():
        system.encoder.theta.copy_(torch.tensor([50.0, -50.0]))
        expected = (system.decoder.lin(torch.tensor([1.0, -1.0]) / math.sqrt(2)) - X).pow(2).mean()
        got = system.loss(X.expand(8, 2), 0.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 3.0, 8.0])
def test_matched_bsc_has_the_gray_qpsk_crossover(snr_db):
    bits = torch.zeros(4, 3)
    snr = torch.tensor([snr_db, snr_db - 2, snr_db, snr_db + 1])
    p = BSC().crossover(snr, bits).flatten()
    q = stats.norm.sf(np.sqrt(10 ** (snr.numpy() / 10)))                       # Q(sqrt(SNR))
    np.testing.assert_allclose(p.numpy(), q, rtol=1e-5)
    assert bsc_crossover_for_snr(snr_db) == pytest.approx(stats.norm.sf(math.sqrt(10 ** (snr_db / 10))),
                                                          rel=1e-9)
    with pytest.raises(ValueError, match="snr_db"):
        BSC()(bits)


def test_necst_bit_error_rate_is_the_channels():
    torch.manual_seed(0)
    system = build_toy("necst", ToySpec(3, 8)).eval()
    x = torch.as_tensor(sphere_source(2, 3, 8).sample(20000, 0), dtype=torch.float32)
    g = torch.Generator().manual_seed(3)
    for snr in (-2.0, 4.0):
        with torch.no_grad():
            sent = system.send_bits(system.bit_logits(x))
            got = (system.transmit(x, snr, g).symbols > 0).float()
        errors, n = int((got != sent).sum()), sent.numel()
        ci = stats.binomtest(errors, n).proportion_ci(confidence_level=0.9999)
        assert ci.low <= bsc_crossover_for_snr(snr) <= ci.high, (snr, errors / n)


def test_diffjscc_stages_train_one_part_each():
    torch.manual_seed(0)
    system = build_toy("diffjscc", ToySpec(2, 1))
    assert [(st.name, st.share, st.trains) for st in system.plan()] == [
        ("reconstruction", 0.5, ("stage1.",)), ("refinement", 0.5, ("velocity.",))]
    before = {n: p.detach().clone() for n, p in system.named_parameters()}
    src = sphere_source(1, 2, 1)
    cfg = TrainConfig(steps=30, batch_size=64, lr=3e-3, snr_db=[0.0, 10.0], progress=False)
    train(system, manifold_source(src), cfg, stop_after=15)              # the reconstruction stage only
    middle = {n: p.detach().clone() for n, p in system.named_parameters()}
    for n, p in middle.items():
        assert (not torch.equal(p, before[n])) == n.startswith("stage1."), n
    result = train(system, manifold_source(src), cfg, stop_after=30)     # no checkpoints: a fresh run of 30
    assert [(r.name, r.steps) for r in result.stages] == [("reconstruction", 15), ("refinement", 15)]


def test_diffjscc_keeps_a_frozen_backbone_frozen():
    system = build_method("diffjscc", get_preset("tiny", backbone_mode="frozen"), TAEF2())
    frozen = {n: p.detach().clone() for n, p in system.named_parameters() if "backbone" in n}
    assert frozen and not any(p.requires_grad for n, p in system.named_parameters() if n in frozen)

    def fields(n, g):
        return torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, 64, 64).contiguous()

    result = train(system, fields, TrainConfig(steps=4, batch_size=2, lr=1e-2, progress=False))
    assert [r.steps for r in result.stages] == [2, 2] and all(r.trainable_parameters > 0 for r in result.stages)
    for n, p in system.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]) and not p.requires_grad, n


def _by_stage(result):
    """The losses of each stage of a TrainResult, {name: [...]}."""
    out, start = {}, 0
    for r in result.stages:
        out[r.name], start = result.losses[start:start + r.steps], start + r.steps
    return out


def _falls(losses, k=10):
    return np.mean(losses[-k:]) < np.mean(losses[:k])


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_and_evaluates_on_the_toy_manifold(name, tmp_path):
    torch.manual_seed(0)
    src = sphere_source(1, 2, 1)
    system = build_toy(name, ToySpec(src.m, src.n_symbols, hidden=64))
    cfg = TrainConfig(steps=150, batch_size=128, lr=3e-3, snr_db=[0.0, 10.0], progress=False)
    results = _by_stage(train(system, manifold_source(src), cfg, out_dir=tmp_path))
    assert all(_falls(losses) for losses in results.values()), {k: v[::15] for k, v in results.items()}
    fresh = build_toy(name, ToySpec(src.m, src.n_symbols, hidden=64))
    load_trained(fresh, tmp_path)                                      # the saved weights round-trip
    assert all(torch.equal(a, b) for a, b in zip(system.state_dict().values(), fresh.state_dict().values()))
    system.eval()
    ev = Config(snrs=[5.0], methods=[name], train_steps=0, batch_size=0, lr=0, hidden=64, euler_steps=4,
                eval_n=300, mi_batch=256, mi_batches=1, per_snr=False, seed=0, workers=1)
    rows, curve, _ = evaluate(system, name, src, 5.0, ev, seed=1)
    assert len(rows) == 3 and rows[0]["decoder"] == name
    assert 0 < rows[0]["mi_bits"] <= rows[0]["capacity_bits"] + 0.05
    assert rows[0]["mse"] < 1.0                        # better than guessing the centre (MSE 1)


def test_toy_methods_use_identical_channel_uses():
    x = torch.randn(5, 3)
    for name in METHODS:
        system = build_toy(name, ToySpec(3, 4)).eval()
        with torch.no_grad():
            r = system.transmit(x, 2.0, torch.Generator().manual_seed(0))
        assert r.symbols.shape == (5, 4, 2), name
        assert torch.equal(r.snr_db, torch.full((5,), 2.0)), name


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_and_evaluates_on_images(name):
    """Tiny preset on a random-weight TAEF2 (no shared files needed): smooth colour fields so that
    a few steps suffice to lower the loss; then the shared image evaluator."""
    torch.manual_seed(0)
    system = build_method(name, get_preset("tiny"), TAEF2())

    def fields(n, g):
        c = torch.rand(n, 3, 1, 1, generator=g)
        ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64)
        return (0.7 * c + 0.3 * ramp * torch.rand(n, 3, 1, 1, generator=g)).expand(n, 3, 64, 64).contiguous()

    cfg = TrainConfig(steps=60, batch_size=4, lr=2e-3, snr_db=[0.0, 10.0], progress=False, seed=1)
    results = _by_stage(train(system, fields, cfg))
    assert all(_falls(losses, min(8, len(losses) // 2)) for losses in results.values()), results
    system.eval()
    g = torch.Generator().manual_seed(0)
    x = fields(2, g)
    with torch.no_grad():
        x_hat = system.receive(system.transmit(x, 5.0, g), Dial(steps=3), g, tuple(x.shape)).output.clamp(0, 1)
    assert x_hat.shape == x.shape
    ready, _ = available_metrics(["psnr", "psnr_lp16", "colour_dist"], extractor=None)
    values = evaluate_images(x, x_hat, ready)
    assert np.isfinite(values["psnr"]).all() and np.isfinite(values["psnr_lp16"]).all()
