"""The Z-Image receiver at tiny size: adapter injection, convention conversion, gradients, presets."""
import copy
import shutil

import pytest
import torch

from jscgc import AWGN, JSCGC
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.flow import euler_sample
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone
from jscgc.latents import IdentityLatent
from jscgc.methods import METHODS, build_method, meta_parameter_counts
from jscgc.presets import get_preset
from jscgc.system import Received
from jscgc.train import TrainConfig, load_weights, latest_checkpoint, train

C, H, W = 4, 8, 12


def tiny_velocity(seed=0, layers=(0, 1), mode="frozen"):
    torch.manual_seed(seed)
    bb = build_backbone(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=C, dim=32, n_layers=2,
                        n_refiner_layers=1, n_heads=2, n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6],
                        axes_lens=[64, 32, 32])
    ad = CAAdapter(C, 32, symbols_per_token=2, symbol_stride=2, layers=layers, hidden=16)
    return ZImageVelocity(bb, ad, caption_tokens=8, backbone_mode=mode)


def inputs(b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(b, (H // 2) * (W // 2) * 2, 2, generator=g)
    return torch.randn(b, C, H, W, generator=g), torch.rand(b, generator=g), Received(y, torch.tensor([0.0, 5.0])[:b])


def test_untrained_adapter_leaves_backbone_bit_identical():
    v = tiny_velocity()
    x, t, r = inputs()
    with torch.no_grad():
        assert torch.equal(v(x, t, r), v.backbone_velocity(x, t, None))


def test_injected_layer_change_equals_added_tensor():
    v = tiny_velocity(layers=(0,))
    torch.nn.init.normal_(v.adapter.outs[0].weight)           # a hand-set, non-zero adapter
    x, t, r = inputs()
    seen = {}
    v.backbone.layers[0].register_forward_hook(lambda m, a, out: seen.__setitem__("after0", out))
    v.backbone.layers[1].register_forward_pre_hook(lambda m, a: seen.__setitem__("into1", a[0]))
    with torch.no_grad():
        inj = v.injections(x, t, r)
        v(x, t, r)
    assert torch.allclose(seen["into1"] - seen["after0"], inj[0], atol=1e-6)
    n_img = (H // 2) * (W // 2)
    assert inj[0][:, :n_img].abs().sum() > 0 and inj[0][:, n_img:].abs().sum() == 0


class _PointMassBackbone(torch.nn.Module):
    """Speaks diffusers' convention for data concentrated at ``a``: it gets τ = 1 − t and returns
    −v = (a − x)/(1 − τ), the negated velocity of x_t = (1 − t) a + t x1."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.layers = torch.nn.ModuleList([torch.nn.Identity()])
        self.config = type("cfg", (), {"all_patch_size": (2,), "cap_feat_dim": 16})()

    def forward(self, xs, tau, caps, controlnet_block_samples=None, return_dict=False, patch_size=2):
        return ([(self.a - x) / (1 - tau[i]) for i, x in enumerate(xs)],)


def test_time_and_velocity_conversion_recovers_a_known_field():
    a = torch.randn(C, 1, H, W)
    ad = CAAdapter(C, 32, symbols_per_token=2, symbol_stride=2, layers=(0,), hidden=16)
    v = ZImageVelocity(_PointMassBackbone(a), ad, caption_tokens=8)
    x, t, r = inputs()
    x_t = (1 - t.view(-1, 1, 1, 1)) * a.squeeze(1) + t.view(-1, 1, 1, 1) * x
    with torch.no_grad():
        assert torch.allclose(v(x_t, t, r), x - a.squeeze(1), atol=1e-5)      # v = x1 − x0
        out = euler_sample(v, r, (2, C, H, W), steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, a.squeeze(1).expand(2, -1, -1, -1), atol=1e-4)


def test_bf16_backbone_gets_float32_time():
    """With bf16 weights the time embedding still sees 1000·(1 − t) computed in float32: t = 0.001 is not
    t = 0 (bf16 rounds 1 − t to 1 for every t < 0.002), and the bf16 velocity there is the float32 one up
    to the bf16 error of the rest of the network."""
    v = tiny_velocity()
    ref = copy.deepcopy(v.backbone)                      # float32 weights
    v.backbone.to(torch.bfloat16)
    x, _, _ = inputs()
    t = torch.tensor([0.001, 0.3007])                    # 1 − t in bf16: 1.0 and 0.69921875
    seen = []
    v.backbone.t_embedder.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        v_t, v_0 = v.backbone_velocity(x, t), v.backbone_velocity(x, torch.zeros(2))
        v.backbone = ref
        f32_t, f32_0 = v.backbone_velocity(x, t), v.backbone_velocity(x, torch.zeros(2))
    assert seen[0].dtype == torch.float32 and torch.equal(seen[0], 1000 * (1 - t))
    assert not torch.equal(v_t[0], v_0[0])
    err = (v_t - f32_t).abs().amax((1, 2, 3))
    assert err[0] < 0.25 * (f32_t[0] - f32_0[0]).abs().max() and err.max() < 0.05 * f32_t.abs().max()


def _system(mode="frozen"):
    torch.manual_seed(0)
    enc = MambaJSCCEncoder(C, 2, patch_size=1, dims=(8, 8), depths=(1, 1), d_state=4, mlp_ratio=1.0)
    return JSCGC(enc, AWGN(), tiny_velocity(mode=mode), (C, H, W), "logit_normal")


def _encoder_grad(system, x0):
    system.zero_grad()
    system.flow_loss(x0, 5.0, torch.Generator().manual_seed(0)).backward()
    return float(system.encoder.head[1].weight.grad.abs().sum())


def test_gradients_reach_encoder_and_adapter_not_frozen_backbone():
    sys_ = _system("frozen")
    x0 = torch.randn(2, C, H, W)
    # zero-init outputs pass no gradient back to ŷ; after the first update they are non-zero:
    assert _encoder_grad(sys_, x0) == 0
    for out in sys_.velocity.adapter.outs:
        torch.nn.init.normal_(out.weight, std=1e-2)
    sys_.zero_grad()
    sys_.flow_loss(x0, 5.0, torch.Generator().manual_seed(0)).backward()
    assert sys_.encoder.head[1].weight.grad.abs().sum() > 0           # through the channel
    assert sys_.velocity.adapter.outs[0].weight.grad.abs().sum() > 0
    assert sys_.velocity.null_caption.grad is not None
    assert all(p.grad is None for p in sys_.velocity.backbone.parameters())
    full = _system("full")
    full.flow_loss(x0, 5.0, torch.Generator().manual_seed(0)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in full.velocity.backbone.parameters())


def test_training_lowers_the_loss_and_checkpoints_round_trip(tmp_path):
    sys_ = _system("full")
    g = torch.Generator().manual_seed(3)
    pool = torch.randn(16, C, H, W, generator=g).tanh()
    data = lambda n, gen: pool[torch.randint(16, (n,), generator=gen)]  # noqa: E731
    cfg = TrainConfig(steps=40, batch_size=8, lr=2e-3, snr_db=5.0, progress=False, cpu=True)
    res = train(sys_, data, cfg, out_dir=tmp_path)
    assert sum(res.losses[-8:]) / 8 < sum(res.losses[:8]) / 8
    again = _system("full")
    load_weights(again, latest_checkpoint(tmp_path))
    for (k, a), (_, b) in zip(sys_.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_adapter_saves_and_loads_with_its_config(tmp_path):
    v = tiny_velocity()
    torch.nn.init.normal_(v.adapter.outs[1].weight)
    v.adapter.save_pretrained(tmp_path / "adapter")
    back = CAAdapter.from_pretrained(tmp_path / "adapter")
    assert list(back.config.layers) == list(v.adapter.config.layers)
    assert all(torch.equal(a, b) for a, b in zip(v.adapter.state_dict().values(), back.state_dict().values()))


def test_bad_adapter_layers_and_mode_are_clear_errors():
    with pytest.raises(ValueError, match="outside the backbone"):
        tiny_velocity(layers=(0, 5))
    with pytest.raises(ValueError, match="backbone_mode"):
        tiny_velocity(mode="half")


def test_full_preset_builds_on_meta_at_published_size():
    counts = meta_parameter_counts(get_preset("full"))
    assert 6.10e9 < counts["backbone"] < 6.20e9                  # the published 6.15B transformer
    assert 0 < counts["adapter"] < 0.02 * counts["backbone"] and counts["encoder"] > 0


def test_methods_use_identical_channel_uses():
    """All image methods at one setting send the same number of complex symbols (CBR 1/384)."""
    preset = get_preset("tiny", latents="identity", encoder=dict(dims=(8, 8), depths=(1, 1), d_state=4))
    x = torch.rand(2, 3, 64, 48)
    for name in METHODS:
        system = build_method(name, preset, IdentityLatent())
        with torch.no_grad():
            r = system.transmit(x, 3.0, torch.Generator().manual_seed(0))
        assert r.symbols.shape == (2, 64 * 48 * 3 // 384, 2), name
        assert torch.equal(r.snr_db, torch.full((2,), 3.0)), name


def test_kodak_tiny_writes_csv_and_figures(tmp_path):
    from jscgc.imagedata import data_root

    try:
        root = data_root(need="kodak")
        _ = data_root(need="bsds500")
    except FileNotFoundError:
        pytest.skip("../shared/data (kodak, bsds500) is absent; set JSCGC_DATA")
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for f in sorted((root / "bsds500" / "train").glob("*.jpg"))[:6]:
        shutil.copy(f, train_dir / f.name)
    from experiments.kodak import main

    out = tmp_path / "out"
    argv = ["--preset", "tiny", "--images", "kodim01,kodim23", "--snr", "0", "10", "--crop", "256",
            "--methods", ",".join(METHODS), "--train-steps", "6", "--train-data", str(train_dir),
            "--figure-images", "kodim01,kodim23", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    import pandas as pd

    df = pd.read_csv(out / "metrics.csv")
    receivers = set(METHODS) | {"jscgc (sample)"}                  # the anchored jscgc is scored twice
    assert len(df) == len(receivers) * 2 * 2 and set(df["method"]) == receivers
    assert set(pd.read_csv(out / "summary.csv")["method"]) == receivers          # what Fig. 4 draws
    assert df["psnr"].notna().all() and df["lpips"].isna().all()
    for name in ("fig3_methods.png", "fig3_snr.png", "fig4_metrics.png", "fig4_metrics.pdf", "summary.csv"):
        assert (out / name).exists(), name
    assert main(argv) == 2                                           # no silent overwrite


def test_bench_receiver_runs_at_tiny_size(tmp_path):
    import json

    from bench.receiver import main

    res = main(["--sizes", "64x64:1,2", "--steps", "2", "--repeats", "1", "--out", str(tmp_path / "b.json")])
    saved = json.loads((tmp_path / "b.json").read_text())
    assert len(saved["rows"]) == 2 and saved["gemm_ceiling_tflops"] > 0
    row = res["rows"][1]
    assert row["flops_per_decode"] > 0 and row["ms_per_image"] > 0 and row["adapter_overhead"] > -1
