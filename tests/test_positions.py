"""Offset RoPE positions in training (jscgc/generators/positions.py, ZImageVelocity.rope_offset): the ids the
backbone embeds are the unshifted ids plus (0, dy, dx) on image rows only; offset 0 changes nothing; eval
mode ignores the option; a model without offsets is built exactly as before."""
import copy

import pytest
import torch

from jscgc.generators.positions import draw_offsets, shifted_positions
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone
from jscgc.presets import get_preset
from tests.test_zimage import C, inputs, tiny_velocity


def _spy_ids(velocity, x, t, r, offsets=None):
    """The position ids the backbone's RoPE embedder receives for the image tokens (one call, no grad)."""
    seen = []
    embedder = velocity.backbone.rope_embedder
    original = type(embedder).__call__
    embedder.__class__ = type("Spy", (type(embedder),), {"__call__": lambda self, ids: seen.append(ids.clone())
                                                         or original(self, ids)})
    try:
        with torch.no_grad():
            if offsets is None:
                out = velocity.backbone_velocity(x, t, None)
            else:
                with shifted_positions(velocity.backbone, offsets, (x.shape[-2] // 2, x.shape[-1] // 2)):
                    out = velocity.backbone_velocity(x, t, None)
    finally:
        embedder.__class__ = type(embedder).__mro__[1]
    return seen, out


def test_offset_ids_are_the_plain_ids_plus_the_offset_on_image_rows_only():
    v = tiny_velocity()
    x, t, r = inputs()
    plain, _ = _spy_ids(v, x, t, r)
    offsets = torch.tensor([[3, 5], [0, 7]])
    shifted, _ = _spy_ids(v, x, t, r, offsets)
    image_rows = (x.shape[-2] // 2) * (x.shape[-1] // 2)                 # 4 x 6 patches, no padding (24 = 8 x 3)
    first_plain, first_shifted = plain[0], shifted[0]                  # the image sequence's ids, (B * L, 3)
    assert first_plain.shape == first_shifted.shape
    per_item = first_plain.shape[0] // 2
    for i, (dy, dx) in enumerate(offsets.tolist()):
        a, b = first_plain[i * per_item:(i + 1) * per_item], first_shifted[i * per_item:(i + 1) * per_item]
        assert torch.equal(b[:image_rows] - a[:image_rows], torch.tensor([0, dy, dx], dtype=a.dtype).expand(image_rows, 3))
        assert torch.equal(b[image_rows:], a[image_rows:])             # padding rows untouched
    assert torch.equal(plain[1], shifted[1])                            # the caption's ids untouched
    assert "patchify_and_embed" not in vars(v.backbone)                # the class's method again afterwards


def test_zero_offset_is_bit_identical_and_an_offset_changes_the_output():
    v = tiny_velocity()
    x, t, r = inputs()
    _, plain = _spy_ids(v, x, t, r)
    _, zero = _spy_ids(v, x, t, r, torch.zeros(2, 2, dtype=torch.long))
    _, moved = _spy_ids(v, x, t, r, torch.tensor([[2, 3], [2, 3]]))
    assert torch.equal(plain, zero) and not torch.allclose(plain, moved, atol=1e-6)


def test_positions_outside_the_rope_tables_are_one_error():
    v = tiny_velocity()                                                   # axes_lens (64, 32, 32)
    x, t, r = inputs()
    with pytest.raises(ValueError, match="rope_offset: positions up to"):
        with shifted_positions(v.backbone, torch.tensor([[29, 0], [0, 0]]), (4, 6)):
            pass
    assert "patchify_and_embed" not in vars(v.backbone)


def _velocity(offset: int) -> ZImageVelocity:
    torch.manual_seed(0)
    bb = build_backbone(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=C, dim=32, n_layers=2,
                        n_refiner_layers=1, n_heads=2, n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6],
                        axes_lens=[64, 32, 32])
    ad = CAAdapter(C, 32, symbols_per_token=2, symbol_stride=2, layers=(0, 1), hidden=16)
    return ZImageVelocity(bb, ad, caption_tokens=8, backbone_mode="full", rope_offset=offset)


def test_training_mode_offsets_eval_mode_does_not_and_parameters_are_built_as_before():
    plain, offset = _velocity(0), _velocity(8)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), offset.state_dict().values()))
    assert plain.offset_generator is None
    x, t, r = inputs()
    with torch.no_grad():
        assert torch.equal(plain.eval()(x, t, r), offset.eval()(x, t, r))
        gen = copy.deepcopy(offset.offset_generator)
        trained = offset.train()(x, t, r)
        expected_offsets = draw_offsets(2, 8, gen)
        with shifted_positions(plain.backbone, expected_offsets, (4, 6)):
            assert torch.equal(trained, plain.train()(x, t, r))


def test_rope_offset_reaches_the_jscgc_velocity_and_is_recorded_only_when_set():
    from jscgc.latents import load_extractor
    from jscgc.methods import build_method

    preset = get_preset("tiny")
    assert "rope_offset" not in preset.to_dict()["recipe"]
    moved = preset.updated(recipe={"rope_offset": 4})
    assert moved.to_dict()["recipe"]["rope_offset"] == 4
    system = build_method("jscgc", moved, load_extractor("taef2"))
    assert system.inner.velocity.rope_offset == 4
    with pytest.raises(ValueError, match="rope_offset"):
        _velocity(-1)
