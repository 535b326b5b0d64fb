"""Resuming a training plan: inside a stage, at a stage boundary, and from an older periodic checkpoint,
with warm-up + cosine schedules and gradient accumulation, for a two-stage JSCGC (posterior-mean prior:
the second stage begins by copying the first stage's decoder) and for DiffJSCC. On CPU the resumed run
must end bit-identical to an uninterrupted one — losses and every weight."""
import shutil

import pytest
import torch

from jscgc import AWGN, JSCGC
from jscgc.checkpoints import latest_checkpoint, load_trained
from jscgc.data import ring
from jscgc.encoders import MLPEncoder
from jscgc.generators import MLPVelocity
from jscgc.methods import ToySpec, build_toy
from jscgc.train import TrainConfig, train
from jscgc.types import Dial

CFG = TrainConfig(steps=20, batch_size=16, accumulation=2, lr=1e-2, lr_schedule="cosine", warmup=3,
                  snr_db=[0.0, 10.0], progress=False, checkpoint_every=4, seed=5)


def _jscgc(seed):
    torch.manual_seed(seed)
    return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16, depth=1), (2,),
                 prior="posterior_mean", prior_noise=0.2, mse_share=0.35)       # stages of 7 and 13 steps


def _diffjscc(seed):
    torch.manual_seed(seed)
    return build_toy("diffjscc", ToySpec(2, 1, hidden=16, encoder_hidden=8))   # stages of 10 and 10 steps


def _same(a, b):
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


@pytest.mark.parametrize("make", [_jscgc, _diffjscc], ids=["jscgc_two_stage", "diffjscc"])
@pytest.mark.parametrize("stop", [5, 7, 10, 15])
def test_resume_across_stages_is_bit_identical(make, stop, tmp_path):
    ref = make(0)
    want = train(ref, ring(), CFG)
    train(make(0), ring(), CFG, out_dir=tmp_path, stop_after=stop)
    assert latest_checkpoint(tmp_path).name == f"step_{stop:08d}"
    fresh = make(123)                       # another init: everything must come from the checkpoint
    got = train(fresh, ring(), CFG, out_dir=tmp_path)
    assert got.losses == want.losses and got.step == 20
    assert [r.steps for r in got.stages] == [r.steps for r in want.stages]
    _same(ref, fresh)


@pytest.mark.parametrize("make", [_jscgc, _diffjscc], ids=["jscgc_two_stage", "diffjscc"])
def test_a_killed_run_resumes_from_its_last_periodic_checkpoint(make, tmp_path):
    """Killed at step 11, after the periodic checkpoint of step 8 (and for DiffJSCC the end-of-stage one of
    step 10): the checkpoint written at the kill is removed, and a half-written temporary folder is left
    behind as a kill during a write would leave it."""
    ref = make(0)
    train(ref, ring(), CFG)
    train(make(0), ring(), CFG, out_dir=tmp_path, stop_after=11)
    shutil.rmtree(tmp_path / "checkpoints" / "step_00000011")
    (tmp_path / "checkpoints" / ".step_00000012.abc.tmp").mkdir()
    assert latest_checkpoint(tmp_path).name in ("step_00000008", "step_00000010")
    fresh = make(7)
    train(fresh, ring(), CFG, out_dir=tmp_path)
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    _same(ref, fresh)


def test_an_unfinished_run_is_not_loaded_as_trained(tmp_path):
    train(_jscgc(0), ring(), CFG, out_dir=tmp_path, stop_after=9)
    with pytest.raises(ValueError, match="stopped at step 9 of 20 \\(stage 'flow'\\)"):
        load_trained(_jscgc(0), tmp_path)


def test_resume_refuses_another_plan(tmp_path):
    train(_jscgc(0), ring(), CFG, out_dir=tmp_path, stop_after=4)
    other = JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16, depth=1), (2,),
                  prior="posterior_mean", prior_noise=0.2, mse_share=0.5)
    with pytest.raises(ValueError, match="plan"):
        train(other, ring(), CFG, out_dir=tmp_path)


def test_tiny_image_system_killed_mid_stage_resumes_to_the_same_outputs(tmp_path):
    """The tiny preset's jscgc (pixel-MSE stage through TAEF2, then the posterior-mean flow) on colour fields:
    stopped inside the flow stage and resumed, it ends with the same weights and the same receptions."""
    from jscgc.latents import TAEF2
    from jscgc.methods import build_method
    from jscgc.presets import get_preset

    def fields(n, g):
        return torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, 64, 64).contiguous()

    def build():
        torch.manual_seed(0)
        return build_method("jscgc", get_preset("tiny"), TAEF2())

    cfg = TrainConfig(steps=8, batch_size=4, accumulation=2, lr=1e-3, lr_schedule="cosine", warmup=2,
                      snr_db=[0.0, 10.0], progress=False, checkpoint_every=3)
    ref = build()
    train(ref, fields, cfg)
    train(build(), fields, cfg, out_dir=tmp_path, stop_after=5)          # stages of 2 and 6 steps: inside "flow"
    resumed = build()
    train(resumed, fields, cfg, out_dir=tmp_path)
    _same(ref, resumed)
    x = fields(2, torch.Generator().manual_seed(9))
    outs = [s.eval().receive(s.transmit(x, 5.0, torch.Generator().manual_seed(1)), Dial(steps=3),
                             torch.Generator().manual_seed(2), tuple(x.shape)) for s in (ref, resumed)]
    for field in ("output", "sample", "estimate"):
        assert torch.equal(getattr(outs[0], field), getattr(outs[1], field)), field
