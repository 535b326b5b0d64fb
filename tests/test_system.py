import pytest
import torch

from jscgc import AWGN, JSCGC, MSEReconstruction, RayleighBlockFading
from jscgc.checkpoints import latest_checkpoint, load_weights
from jscgc.data import ring
from jscgc.decoders import MLPDecoder
from jscgc.encoders import MLPEncoder
from jscgc.generators import MLPVelocity
from jscgc.registry import build
from jscgc.train import TrainConfig, train
from jscgc.types import Dial


def make_jscgc(seed=0, n=1, hidden=64):
    torch.manual_seed(seed)
    return JSCGC(MLPEncoder(2, n, hidden=32), AWGN(), MLPVelocity(2, n, hidden=hidden, depth=2), (2,))


def test_gradient_through_channel_matches_finite_difference():
    torch.manual_seed(0)
    sys = JSCGC(MLPEncoder(2, 2, hidden=8, depth=1), AWGN(),
                MLPVelocity(2, 2, hidden=16, depth=1), (2,)).double()
    x0 = torch.randn(6, 2, dtype=torch.float64)

    def loss():  # noise, t and x1 held fixed by re-seeding
        return sys.flow_loss(x0, 3.0, torch.Generator().manual_seed(7))

    w = sys.encoder.net[0].weight
    sys.zero_grad()
    loss().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    h = 1e-6
    for idx in [(0, 0), (3, 1), (7, 0)]:
        with torch.no_grad():
            w[idx] += h
            up = loss().item()
            w[idx] -= 2 * h
            down = loss().item()
            w[idx] += h
        fd = (up - down) / (2 * h)
        assert abs(fd - w.grad[idx].item()) < 1e-6 * max(1.0, abs(fd)), (idx, fd, w.grad[idx])


def test_gradient_reaches_encoder_through_rayleigh():
    torch.manual_seed(0)
    sys = JSCGC(MLPEncoder(2, 2), RayleighBlockFading(1), MLPVelocity(2, 2), (2,))
    sys.flow_loss(torch.randn(8, 2), 5.0, torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in sys.encoder.parameters())


def test_toy_training_generator_on_support_mse_off_support():
    cfg = dict(batch_size=256, lr=3e-3, lr_schedule="cosine", progress=False)
    flow = make_jscgc(hidden=128)
    res = train(flow, ring(), TrainConfig(steps=800, snr_db=[-5.0, 25.0], **cfg))
    assert sum(res.losses[-50:]) / 50 < 0.6 * sum(res.losses[:20]) / 20

    g = torch.Generator().manual_seed(99)
    x = ring()(400, g)
    x_hi = flow(x, 25.0, g, Dial(steps=16))
    err = (x_hi - x).norm(dim=1).median().item()
    assert err < 0.2, err  # high SNR: the sample lands near the source point

    torch.manual_seed(1)
    mse = MSEReconstruction(MLPEncoder(2, 1, hidden=32), AWGN(), MLPDecoder(2, 1, hidden=64, depth=2))
    train(mse, ring(), TrainConfig(steps=400, snr_db=-5.0, **cfg))
    x_lo_mse = mse(x, -5.0, g)
    x_lo_flow = flow(x, -5.0, g, Dial(steps=16))
    off_mse = (x_lo_mse.norm(dim=1) - 1).abs().median().item()
    off_flow = (x_lo_flow.norm(dim=1) - 1).abs().median().item()
    # The MMSE estimate at low SNR averages over the posterior: pulled inside the ring.
    assert off_mse > 0.15 and off_mse > 1.5 * off_flow, (off_mse, off_flow)


def test_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig(steps=30, batch_size=32, lr=1e-3, snr_db=[0.0, 10.0], progress=False,
                      checkpoint_every=10)
    ref = make_jscgc(seed=3)
    train(ref, ring(), cfg)

    first = make_jscgc(seed=3)
    r1 = train(first, ring(), cfg, out_dir=tmp_path, stop_after=17)
    assert r1.step == 17 and latest_checkpoint(tmp_path).name == "step_00000017"
    fresh = make_jscgc(seed=11)  # different init: everything must come from the checkpoint
    r2 = train(fresh, ring(), cfg, out_dir=tmp_path)
    assert r2.step == 30 and len(r2.losses) == 30
    for (k, a), (_, b) in zip(ref.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), k


def test_rerun_never_overwrites_and_config_mismatch(tmp_path):
    cfg = TrainConfig(steps=3, batch_size=8, progress=False)
    train(make_jscgc(), ring(), cfg, out_dir=tmp_path)
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train(make_jscgc(), ring(), cfg, out_dir=tmp_path, resume=False)
    with pytest.raises(ValueError, match="differs in \\['steps', 'lr'\\]"):
        train(make_jscgc(), ring(), TrainConfig(steps=5, batch_size=8, lr=0.5, progress=False),
              out_dir=tmp_path)


def test_checkpoint_rebuilds_from_config(tmp_path):
    sys = make_jscgc(seed=5)
    train(sys, ring(), TrainConfig(steps=2, batch_size=8, progress=False), out_dir=tmp_path,
          system_config=sys.config())
    state = load_weights(make_jscgc(seed=6), latest_checkpoint(tmp_path))
    cfg = state["system_config"]
    rebuilt = JSCGC(build(cfg["encoder"]), AWGN(), build(cfg["velocity"]), (2,))
    load_weights(rebuilt, latest_checkpoint(tmp_path))
    for a, b in zip(sys.state_dict().values(), rebuilt.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_train_config():
    with pytest.raises(ValueError, match="snr_db"):
        TrainConfig(snr_db=[10.0, 0.0])
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


class _Linear(torch.nn.Module):
    """v(x, t, ŷ) = a x + b Σŷ + c SNR: simple enough to write every recipe's result by hand."""

    def forward(self, x, t, received):
        return 0.5 * x + received.symbols.sum((1, 2))[:, None] + 0.01 * received.snr_db[:, None]


def test_guidance_is_the_cfg_combination():
    from jscgc.system import NULL_SNR_DB, Guided, Received

    r = Received(torch.randn(3, 2, 2), torch.tensor([0.0, 5.0, 10.0]))
    x, t = torch.randn(3, 2), torch.rand(3)
    v_c = 0.5 * x + r.symbols.sum((1, 2))[:, None] + 0.01 * r.snr_db[:, None]
    v_0 = 0.5 * x + 0.01 * NULL_SNR_DB
    for w in (1.0, 2.5):
        torch.testing.assert_close(Guided(_Linear(), w)(x, t, r), v_0 + w * (v_c - v_0))


def test_oneshot_prior_and_mse_stage():
    torch.manual_seed(0)
    enc = MLPEncoder(2, 1, hidden=8)
    x0 = ring()(4, torch.Generator().manual_seed(0))
    plain = JSCGC(enc, AWGN(), _Linear(), (2,))
    prior = JSCGC(enc, AWGN(), _Linear(), (2,), prior="oneshot", mse_share=0.3)
    r = plain.transmit(x0, 5.0, torch.Generator().manual_seed(1))
    mu = prior.one_shot(r, (4, 2))
    torch.testing.assert_close(mu, -_Linear()(torch.zeros(4, 2), torch.ones(4), r))
    # Euler steps start at x1 = ε (+ μ for the one-shot prior): the same ε, shifted by exactly μ
    a = plain.receive(r, Dial(steps=4), torch.Generator().manual_seed(2))
    b = prior.receive(r, Dial(steps=4), torch.Generator().manual_seed(2))
    torch.testing.assert_close(b.sample - a.sample, mu * (1 - 0.5 / 4) ** 4)   # dx/dt = 0.5 x + const: linear in x1
    assert a.estimate is None and torch.equal(b.estimate, mu)                  # μ is handed back, computed once
    # the plan: stage "mse" is the MSE of the one-pass estimate, then "flow"; both train everything
    mse, flow = prior.plan()
    assert (mse.name, mse.share, flow.name, flow.share) == ("mse", 0.3, "flow", 0.7)
    assert mse.trains == flow.trains == ("",) and flow.begin is None
    torch.testing.assert_close(mse.loss(x0, 5.0, torch.Generator().manual_seed(1)), (mu - x0).pow(2).mean())
    assert [s.name for s in plain.plan()] == ["flow"]


def test_plan_steps_add_up_and_bad_plans_are_refused():
    from jscgc.plan import stage_steps
    from jscgc.types import Stage

    def plan(*shares):
        return tuple(Stage(f"s{i}", s, None) for i, s in enumerate(shares))

    assert stage_steps(plan(1 / 3, 2 / 3), 10) == [3, 7]
    assert stage_steps(plan(0.25, 0.75), 8000) == [2000, 6000]
    assert sum(stage_steps(plan(1 / 7, 6 / 7), 2801)) == 2801
    for bad in (plan(0.5, 0.6), plan(1.0, 0.0), ()):
        with pytest.raises(ValueError, match="training plan"):
            stage_steps(bad, 10)
    with pytest.raises(ValueError, match="training plan"):
        stage_steps((Stage("a", 0.5, None), Stage("a", 0.5, None)), 10)


def test_train_runs_the_mse_stage_then_the_flow_in_one_checkpoint_folder(tmp_path):
    torch.manual_seed(0)
    system = JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16, depth=1), (2,),
                   mse_share=4 / 6)
    res = train(system, ring(), TrainConfig(steps=6, batch_size=16, progress=False), out_dir=tmp_path)
    assert [(r.name, r.steps, r.examples) for r in res.stages] == [("mse", 4, 64), ("flow", 2, 32)]
    state = load_weights(system, latest_checkpoint(tmp_path))
    assert state["step"] == 6 and state["plan"][1] == {"name": "flow", "share": 1 - 4 / 6, "trains": [""], "steps": 2}
