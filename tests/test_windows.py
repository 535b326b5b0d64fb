"""Windowed reception (jscgc.windows, Dial.window): overlapping windows of encoder tokens fused at every
velocity call, each conditioned on its own slice of ŷ."""
import pytest
import torch
from torch import nn

from jscgc import AWGN, JSCGC
from jscgc.encoders import MLPEncoder
from jscgc.generators import MLPVelocity
from jscgc.generators.zimage import symbols_to_grid
from jscgc.latents import TAEF2
from jscgc.methods import build_method
from jscgc.presets import get_preset
from jscgc.types import Dial, Received
from jscgc.windows import Windowed, coverage, crop_received, window_starts

C, S, K = 3, 2, 2          # latent channels, latent positions per token side, complex symbols per token


class PatchEncoder(nn.Module):
    """Every token read from its own S×S latent patch only (no power normalisation): tokens are independent."""
    stride = S

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(C, 2 * K, S, stride=S)

    def forward(self, x):
        return self.proj(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2)


class PointwiseVelocity(nn.Module):
    """v at a latent position depends only on x_t there, t, the SNR and the symbols of the token above it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.mix = nn.Conv2d(C + 2 * K + 2, 16, 1)
        self.out = nn.Conv2d(16, C, 1)

    def forward(self, x_t, t, received: Received):
        b, _, h, w = x_t.shape
        y = symbols_to_grid(received.symbols, h, w, S).repeat_interleave(S, 2).repeat_interleave(S, 3)
        extra = torch.stack([t, received.snr_db / 10], 1).view(b, 2, 1, 1).expand(b, 2, h, w)
        return self.out(torch.tanh(self.mix(torch.cat([x_t, y, extra], 1))))


def _pointwise_system(h, w):
    system = JSCGC(PatchEncoder(), AWGN(), PointwiseVelocity(), (C, h * S, w * S), prior="posterior_mean",
                   mse_share=0.5, cond_dropout=0.1, guidance=2.0)
    system.freeze_prior()
    return system.eval()


def test_starts_and_coverage_count_the_windows_on_an_odd_grid():
    assert window_starts(7, 4, 2) == [0, 2, 3] and window_starts(5, 2, 1) == [0, 1, 2, 3]
    assert window_starts(5, 5, 2) == [0] and window_starts(3, 8, 4) == [0]
    assert coverage(1, 7, 4, 2)[0].tolist() == [1, 1, 2, 3, 2, 2, 1]        # windows [0,4), [2,6), [3,7)
    for h, w, window in [(5, 7, 2), (5, 7, 3), (5, 7, 4), (4, 9, 5), (2, 7, 4)]:
        hop = max(window // 2, 1)
        brute = torch.zeros(h, w)
        for i in range(h):
            for j in range(w):          # windows whose row span and column span both hold (i, j)
                brute[i, j] = sum(r <= i < r + window for r in _starts(h, window, hop)) * \
                    sum(q <= j < q + window for q in _starts(w, window, hop))
        assert torch.equal(coverage(h, w, window, hop), brute), (h, w, window)
        assert brute.min() >= 1


def _starts(n, window, hop):
    """The start rule re-stated: step by hop from 0; the last window flush with the far edge."""
    if window >= n:
        return [0]
    out, start = [], 0
    while start + window < n:
        out.append(start)
        start += hop
    return out + [n - window]


def test_a_window_s_symbols_are_its_tokens_and_equal_the_crop_encoded_alone():
    h, w = 5, 7
    x = torch.randn(2, C, h * S, w * S, generator=torch.Generator().manual_seed(1))
    enc = PatchEncoder()
    symbols = enc(x)
    received = Received(symbols, torch.tensor([1.0, 2.0]), 3 * symbols)
    whole = symbols_to_grid(symbols, h * S, w * S, S)
    for top, left, size in [(0, 0, (2, 2)), (3, 5, (2, 2)), (1, 2, (3, 4)), (0, 0, (5, 7))]:
        part = crop_received(received, (h, w), top, left, size)
        grid = symbols_to_grid(part.symbols, size[0] * S, size[1] * S, S)
        assert torch.equal(grid, whole[:, :, top:top + size[0], left:left + size[1]])
        crop = x[..., top * S:(top + size[0]) * S, left * S:(left + size[1]) * S]
        torch.testing.assert_close(part.symbols, enc(crop))
        assert torch.equal(part.gain, 3 * part.symbols) and torch.equal(part.snr_db, received.snr_db)


@pytest.mark.parametrize("window", [1, 2, 3, 4])
def test_a_pointwise_velocity_is_unchanged_by_windows(window):
    """Each position's velocity is the same in every window that holds it, so their mean is that value."""
    h, w = 5, 7
    system = _pointwise_system(h, w)
    x = torch.randn(3, C, h * S, w * S, generator=torch.Generator().manual_seed(2))
    received = system.transmit(x, torch.tensor([0.0, 5.0, 10.0]), torch.Generator().manual_seed(3))
    t = torch.tensor([0.2, 0.5, 0.9])
    fused = Windowed(system.velocity, window, S)(x, t, received)
    torch.testing.assert_close(fused, system.velocity(x, t, received), rtol=0, atol=2e-6)
    with torch.no_grad():        # the whole receiver: μ(ŷ), guidance, the Euler steps
        plain = system.receive(received, Dial(steps=3, samples=2), torch.Generator().manual_seed(4))
        windowed = system.receive(received, Dial(steps=3, samples=2, window=window), torch.Generator().manual_seed(4))
    torch.testing.assert_close(windowed.estimate, plain.estimate, rtol=0, atol=2e-6)
    torch.testing.assert_close(windowed.samples, plain.samples, rtol=0, atol=1e-5)


class _Recording(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, x_t, t, received):
        self.batches.append(x_t.shape[0])
        return self.inner(x_t, t, received)


def test_windows_go_in_one_call_and_max_batch_splits_them():
    h, w, window = 5, 7, 2                          # 4 x 6 windows
    velocity = _Recording(PointwiseVelocity())
    x = torch.randn(2, C, h * S, w * S)
    received = Received(torch.randn(2, h * w * K, 2), torch.zeros(2))
    full = Windowed(velocity, window, S)(x, torch.ones(2), received)
    assert velocity.batches == [2 * 24]
    velocity.batches.clear()
    split = Windowed(velocity, window, S, max_batch=20)(x, torch.ones(2), received)
    assert velocity.batches == [20, 20, 8]
    torch.testing.assert_close(split, full, rtol=1e-6, atol=1e-6)   # other batch sizes: other float32 kernels


def _tiny():
    return build_method("jscgc", get_preset("tiny"), TAEF2()).eval()


def test_a_window_as_large_as_the_grid_is_the_plain_receiver_bit_for_bit():
    system = _tiny()                                 # 64x96 px: 4x6 tokens of 16 px
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(6))
    received = system.transmit(x, 5.0, torch.Generator().manual_seed(7))
    velocity = system.inner.velocity = _Recording(system.inner.velocity)
    prior = system.inner.prior_net = _Recording(system.inner.prior_net)
    with torch.no_grad():
        plain = system.receive(received, Dial(steps=2), torch.Generator().manual_seed(8), x.shape)
        for window in (6, 9):
            big = system.receive(received, Dial(steps=2, window=window), torch.Generator().manual_seed(8), x.shape)
            assert torch.equal(big.output, plain.output) and torch.equal(big.estimate, plain.estimate)
        assert velocity.batches == [1, 1] * 3 and prior.batches == [1] * 3    # μ(ŷ) and two Euler steps a receive
        velocity.batches.clear(), prior.batches.clear()
        small = system.receive(received, Dial(steps=2, window=2), torch.Generator().manual_seed(8), x.shape)
    assert velocity.batches == [3 * 5] * 2 and prior.batches == [3 * 5]   # rows 0..2 x columns 0..4, one call
    assert small.output.shape == x.shape and not torch.equal(small.output, plain.output)
    assert not torch.equal(small.estimate, plain.estimate)


def test_dial_window_parses_labels_validates_and_vector_systems_refuse_it():
    assert Dial.parse("window=4,samples=2") == Dial(samples=2, window=4)
    assert Dial(window=4).label() == "win=4" and "window" in Dial.OPTIONAL
    for text in ("window=-1", "window=two", "window=1.5"):
        with pytest.raises(ValueError, match="window"):
            Dial.parse(text)
    toy = JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16), (2,))
    received = toy.transmit(torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError, match="window needs") as err:
        toy.receive(received, Dial(window=4), shape=(2, 2))
    assert "\n" not in str(err.value)
    toy.receive(received, Dial(window=0), shape=(2, 2))          # 0: the whole grid, accepted by every system
    assert "window" in _tiny().dial_options and "window" not in toy.dial_options


def test_a_window_off_the_patch_grid_is_one_clear_error():
    with pytest.raises(ValueError, match="window: 3 tokens"):
        Windowed(PointwiseVelocity(), 3, token_stride=1, patch=2)
    assert Windowed(PointwiseVelocity(), 4, token_stride=1, patch=2).hop == 2


def test_a_window_built_in_is_the_dial_s_window_and_a_dial_of_0_turns_it_off():
    """JSCGC(window=w) receives as the window-less system does with Dial(window=w), bit for bit; Dial(window=0)
    on it is the whole grid again; the recipe's window reaches the built system."""
    h, w = 5, 7
    plain = _pointwise_system(h, w)
    built = JSCGC(PatchEncoder(), AWGN(), plain.velocity, (C, h * S, w * S), prior="posterior_mean",
                  mse_share=0.5, cond_dropout=0.1, guidance=2.0, window=2)
    built.encoder, built.prior_net = plain.encoder, plain.prior_net
    x = torch.randn(2, C, h * S, w * S, generator=torch.Generator().manual_seed(9))
    velocity = plain.velocity = built.velocity = _Recording(plain.velocity)
    received = plain.transmit(x, torch.tensor([0.0, 10.0]), torch.Generator().manual_seed(10))
    with torch.no_grad():
        def draw(system, dial):
            return system.receive(received, dial, torch.Generator().manual_seed(11)).output
        windowed = draw(plain, Dial(steps=2, window=2))
        assert torch.equal(draw(built, Dial(steps=2)), windowed)
        velocity.batches.clear()
        assert torch.equal(draw(built, Dial(steps=2, window=0)), draw(plain, Dial(steps=2)))
    assert velocity.batches == [2 * 2, 2 * 2] * 2          # two Euler steps, guided, whole grid: no windows
    with pytest.raises(ValueError, match="window"):
        JSCGC(PatchEncoder(), AWGN(), plain.velocity, (C, h * S, w * S), window=-1)
    with pytest.raises(ValueError, match="window=4 needs an encoder with a token stride"):
        JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16), (2,), window=4)
    tiny = get_preset("tiny")
    assert build_method("jscgc", tiny.updated(recipe={"window": 2}), TAEF2()).inner.window == 2
    assert build_method("jscgc", tiny, TAEF2()).inner.window == 0


def test_the_window_is_receive_only_so_the_training_record_ignores_it():
    """A checkpoint trained once is received at any window: run records compare Preset.training_dict, which
    leaves the window out, while config.json (Preset.to_dict) keeps it when set."""
    from jscgc.runs import run_record
    from jscgc.train import TrainConfig

    whole = get_preset("small").updated(recipe={"window": 0})
    windowed = whole.updated(recipe={"window": 4})
    assert "window" not in whole.to_dict()["recipe"] and windowed.to_dict()["recipe"]["window"] == 4
    assert whole.training_dict() == windowed.training_dict() == whole.to_dict()
    assert run_record("jscgc", whole, TrainConfig(), "t", "f", 0) == run_record("jscgc", windowed, TrainConfig(), "t", "f", 0)
    assert whole.updated(recipe={"anchor_lowpass": 16}).training_dict() != whole.training_dict()   # not receive-only


def test_only_a_method_that_reads_the_recipe_compares_it():
    """A new jscgc recipe leaves the other methods' checkpoints usable (same_training ignores the recipe for a
    method whose Method.reads_recipe is False), and makes jscgc's own records differ."""
    from jscgc.runs import run_record, same_training
    from jscgc.train import TrainConfig

    small, other = get_preset("small"), get_preset("small").updated(recipe={"prior_noise": 0.7})
    record = lambda name, preset: run_record(name, preset, TrainConfig(), "t", "f", 0)  # noqa: E731
    for name in ("mambajscc", "jscgc-paper", "cjscc", "diffjscc", "necst", "mambajscc-latent"):
        assert same_training(record(name, small), record(name, other)), name
        assert not same_training(record(name, small), record(name, small.updated(crop=32))), name
    assert not same_training(record("jscgc", small), record("jscgc", other))
    assert same_training(record("jscgc", small), record("jscgc", small))
