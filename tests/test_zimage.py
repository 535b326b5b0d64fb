"""The Z-Image receiver at tiny size: adapter injection, convention conversion, gradients, presets."""
import copy
import shutil

import pytest
import torch

from jscgc import AWGN, JSCGC
from jscgc.checkpoints import latest_checkpoint, load_weights
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.flow import euler_sample
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone
from jscgc.latents import IdentityLatent
from jscgc.methods import METHODS, build_method, meta_parameter_counts
from jscgc.presets import get_preset
from jscgc.system import Received
from jscgc.train import TrainConfig, train

C, H, W = 4, 8, 12


def tiny_velocity(seed=0, layers=(0, 1), mode="frozen", n_layers=2):
    torch.manual_seed(seed)
    bb = build_backbone(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=C, dim=32, n_layers=n_layers,
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


# --- against diffusers' own sampler -------------------------------------------------------------

SIGMAS = [1.0, 0.8, 0.55, 0.3, 0.1]          # diffusers' σ = our t; the scheduler appends σ = 0


def _zimage_pipeline_loop(backbone, caption, latents, sigmas):
    """The denoising loop of diffusers' ``ZImagePipeline.__call__`` (guidance_scale 0, latents given,
    output_type "latent"), transcribed: FlowMatchEulerDiscreteScheduler with shift 1 on ``sigmas``, the
    transformer fed (1000 − timestep)/1000, a list of (C, 1, H, W) frames, its output negated and
    handed to ``scheduler.step``. Returns the latents before the first and after every step."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    sched.set_timesteps(sigmas=sigmas)
    sched.set_begin_index(0)
    states = [latents]
    for t in sched.timesteps:
        timestep = (1000 - t.expand(latents.shape[0])) / 1000
        frames = list(latents.to(backbone.dtype).unsqueeze(2).unbind(dim=0))
        out = backbone(frames, timestep, [caption] * latents.shape[0], return_dict=False)[0]
        noise_pred = -torch.stack([o.float() for o in out], dim=0).squeeze(2)
        latents = sched.step(noise_pred.to(torch.float32), t, latents, return_dict=False)[0]
        states.append(latents)
    return states


def test_euler_steps_match_diffusers_zimage_scheduler_steps():
    """Our wrapper + euler_sample on the grid t = σ is diffusers' Z-Image sampler, step by step."""
    v = tiny_velocity()                               # untrained adapter: zero features
    x, _, r = inputs()
    grid = torch.tensor(SIGMAS + [0.0])
    with torch.no_grad():
        states = _zimage_pipeline_loop(v.backbone, v.null_caption, x, SIGMAS)
        for k in range(len(SIGMAS)):                  # one step each, from diffusers' own state
            ours = euler_sample(v, r, x.shape, x1=states[k], grid=grid[k:k + 2])
            moved = (states[k + 1] - states[k]).abs().max()
            assert moved > 0.05, k                    # a real step, not a no-op
            assert torch.allclose(ours, states[k + 1], atol=1e-5, rtol=0), (k, (ours - states[k + 1]).abs().max())
        whole = euler_sample(v, r, x.shape, x1=x, grid=grid)
    assert torch.allclose(whole, states[-1], atol=1e-5, rtol=0)


def test_euler_sample_matches_the_real_zimage_pipeline():
    """The same through ``ZImagePipeline.__call__`` itself (needs transformers, imported by the pipeline)."""
    pytest.importorskip("transformers")
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    v = tiny_velocity()
    x, _, r = inputs()
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), vae=None, text_encoder=None,
                          tokenizer=None, transformer=v.backbone)
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():                             # vae None: 8x latent downsampling, 16x per token
        ref = pipe(prompt_embeds=[v.null_caption.detach()] * 2, height=8 * H, width=8 * W, sigmas=SIGMAS,
                   guidance_scale=0.0, latents=x.clone(), output_type="latent", return_dict=False)[0]
        ours = euler_sample(v, r, x.shape, x1=x, grid=torch.tensor(SIGMAS + [0.0]))
    assert (ref - x).abs().max() > 0.1
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)


# --- several adapter layers: where the features land -------------------------------------------

LAYERS, N_LAYERS = (0, 1, 3), 4                       # adjacent layers, a gap and the last layer
PATCH = (1, 4)                                        # a latent 2x2 patch on the 4x6 token grid, asymmetric


def _record_stream(v):
    """Hooks that keep the backbone's unified token stream (B, L, dim): ("out", k) leaving layer k, ("in", k)
    entering layer k (("in", n_layers) enters the final layer); and the padded image tokens ("img",)."""
    seen = {}
    bb = v.backbone
    for k, layer in enumerate(bb.layers):
        layer.register_forward_hook(lambda m, a, o, k=k: seen.__setitem__(("out", k), o))
        layer.register_forward_pre_hook(lambda m, a, k=k: seen.__setitem__(("in", k), a[0]))
    bb.all_final_layer["2-1"].register_forward_pre_hook(
        lambda m, a: seen.__setitem__(("in", len(bb.layers)), a[0]))
    bb.noise_refiner[0].register_forward_pre_hook(lambda m, a: seen.__setitem__(("img",), a[0]))
    return seen


def _local_adapter(v):
    """No 3x3 conv: each adapter token then depends on its own ŷ token alone."""
    for stage in v.adapter.stages:
        torch.nn.init.zeros_(stage.conv.weight)
        torch.nn.init.zeros_(stage.conv.bias)


def _backbone_token_of_patch(v, x, t, r):
    """The backbone's own index of PATCH's image token, found by perturbing that latent patch."""
    seen = _record_stream(v)
    x2 = x.clone()
    i, j = PATCH
    x2[0, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2] += 1.0
    with torch.no_grad():
        v.backbone_velocity(x, t)
        a = seen[("img",)]
        v.backbone_velocity(x2, t)
        b = seen[("img",)]
    changed = (a != b).any(-1).nonzero().tolist()
    assert len(changed) == 1 and changed[0][0] == 0, changed
    return changed[0][1]


def test_each_adapter_layer_injects_on_its_own_patch_token_after_its_layer():
    """ŷ changed at one encoder token (= one latent 2x2 patch) changes, for each injected layer k alone, nothing
    in the backbone's stream up to layer k's output, then exactly that patch's image token (in diffusers'
    patchify order and padding) of that batch item: no other image token, padding or caption token."""
    v = tiny_velocity(layers=LAYERS, n_layers=N_LAYERS)
    _local_adapter(v)
    x, t, r = inputs()
    tok = _backbone_token_of_patch(v, x, t, r)
    gw = W // 2
    y2 = r.symbols.clone()
    idx = PATCH[0] * gw + PATCH[1]                    # encoder tokens are row-major, 2 symbols each
    y2[0, 2 * idx:2 * idx + 2] += torch.tensor([[1.0, -2.0], [0.5, 1.5]])
    r2 = Received(y2, r.snr_db)
    seen = _record_stream(v)
    for s, layer in enumerate(LAYERS):
        for o, out in enumerate(v.adapter.outs):      # only stage s's features reach the backbone
            torch.nn.init.normal_(out.weight) if o == s else torch.nn.init.zeros_(out.weight)
        runs = []
        with torch.no_grad():
            for rr in (r, r2):
                v(x, t, rr)
                runs.append(dict(seen))
        a, b = runs
        for k in range(layer + 1):
            assert torch.equal(a[("in", k)], b[("in", k)]) and torch.equal(a[("out", k)], b[("out", k)]), (layer, k)
        changed = ((a[("in", layer + 1)] - b[("in", layer + 1)]).abs() > 0).any(-1).nonzero().tolist()
        assert changed == [[0, tok]], (layer, changed, tok)


def test_dropping_an_adapter_layer_drops_exactly_that_injection():
    """Adapter (0, 1, 3) with an identity stage 1 versus adapter (0, 3) with the same stages 0 and 3: the stream
    gains adapter features right after layers 0, 1 and 3 (exactly the injected tensors, nothing at layer 2),
    and without layer 1 the output is that of (0, 1, 3) with layer 1's features zeroed."""
    full = tiny_velocity(layers=LAYERS, n_layers=N_LAYERS)
    short = tiny_velocity(layers=(0, 3), n_layers=N_LAYERS)
    short.backbone.load_state_dict(full.backbone.state_dict())
    short.null_caption.data.copy_(full.null_caption.data)
    mid = full.adapter.stages[1]                      # stage 1 passes h through unchanged
    for p in (mid.mlp[2].weight, mid.mlp[2].bias, mid.conv.weight, mid.conv.bias):
        torch.nn.init.zeros_(p)
    for out in full.adapter.outs:
        torch.nn.init.normal_(out.weight, std=0.5)
        torch.nn.init.normal_(out.bias, std=0.5)
    sd = full.adapter.state_dict()
    short.adapter.load_state_dict({k.replace("stages.2", "stages.1").replace("outs.2", "outs.1"): p
                                   for k, p in sd.items() if not k.startswith(("stages.1.", "outs.1."))})
    x, t, r = inputs()
    for v, layers in ((full, LAYERS), (short, (0, 3))):
        seen = _record_stream(v)
        with torch.no_grad():
            inj = v.injections(x, t, r)
            v(x, t, r)
        assert sorted(inj) == list(layers)
        for k in range(N_LAYERS):
            added = seen[("in", k + 1)] - seen[("out", k)]
            if k in layers:
                assert added.abs().max() > 0.1 and torch.allclose(added, inj[k], atol=1e-6), k
            else:
                assert torch.equal(added, torch.zeros_like(added)), k
    with torch.no_grad():
        v_short, v_full = short(x, t, r), full(x, t, r)
        torch.nn.init.zeros_(full.adapter.outs[1].weight)
        torch.nn.init.zeros_(full.adapter.outs[1].bias)
        v_no1 = full(x, t, r)
    assert not torch.allclose(v_short, v_full, atol=1e-3)
    assert torch.allclose(v_short, v_no1, atol=1e-6)


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
    argv = ["--preset", "tiny", "--images", "kodim01,kodim23", "--snr", "0", "10", "--crop", "64",
            "--methods", ",".join(METHODS), "--train-steps", "6", "--train-data", str(train_dir),
            "--figure-images", "kodim01,kodim23", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    import pandas as pd

    df = pd.read_csv(out / "metrics.csv")
    receivers = set(METHODS) | {"jscgc (sample)", "jscgc μ(ŷ)"}    # the anchored jscgc: output, sample, μ(ŷ)
    assert len(df) == len(receivers) * 2 * 2 and set(df["method"]) == receivers
    assert set(pd.read_csv(out / "summary.csv")["method"]) == receivers          # what Fig. 4 draws
    assert df["psnr"].notna().all() and df["dino"].isna().all()
    from jscgc.latents import weights_root

    if (weights_root() / "dists").is_dir():
        assert df[["lpips_alex", "lpips_vgg", "dists", "detail_match"]].notna().all().all()
    sets = pd.read_csv(out / "sets.csv")
    assert set(sets["method"]) == receivers and set(sets["metric"]) >= {"patch_fd", "latent_fd"}
    assert (sets["lo"] <= sets["hi"]).all() and (sets.loc[sets.method == "mambajscc", "diff_mambajscc"] == 0).all()
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


def test_the_full_preset_backbone_is_the_published_configuration():
    """Tongyi-MAI/Z-Image transformer/config.json, written out here as the independent reference."""
    from jscgc.presets import ZIMAGE_6B

    published = dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30,
                     n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True, cap_feat_dim=2560,
                     rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512])
    assert ZIMAGE_6B.diffusers_config(16) == published
    assert get_preset("full").backbone == ZIMAGE_6B
