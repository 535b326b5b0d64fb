"""bench/cpu_headroom.py's arithmetic against closed forms: the work it counts for a matrix product and a
convolution, the rates and shares it derives from a time, and the seed floor it projects."""
import pytest
import torch

from bench.cpu_headroom import EVAL_KERNELS, EVAL_VIEWS, flops, projection, rates


def test_counted_work_of_a_product_and_a_convolution_is_the_textbook_count():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert flops(lambda: a @ b) == 2 * 3 * 5 * 7
    x, w = torch.randn(2, 4, 6, 6), torch.randn(8, 4, 3, 3)
    assert flops(lambda: torch.nn.functional.conv2d(x, w, padding=1)) == 2 * 2 * 8 * 4 * 9 * 6 * 6


def test_counted_work_includes_the_backward_pass():
    x, w = torch.randn(3, 5), torch.randn(5, 7, requires_grad=True)

    def step():
        (x @ w).sum().backward()

    assert flops(step) == 2 * (2 * 3 * 5 * 7)        # the forward product and the weight gradient's


def test_rates_and_shares_follow_from_the_work_and_the_times():
    row = rates(10.0, {2: 100.0, 1: 160.0}, {2: 200.0, 1: 100.0})
    assert row["gflops"] == {2: pytest.approx(100.0), 1: pytest.approx(62.5)}
    assert row["percent_of_ceiling"] == {2: pytest.approx(50.0), 1: pytest.approx(62.5)}
    assert row["speedup_1_to_2"] == pytest.approx(1.6)


def test_the_seed_floor_is_the_budgeted_work_over_the_two_thread_rate():
    kernels = {"lpips_vgg_features_256x384": {"gflop": 60.0, "gflops": {2: 150.0}},
               "dists_features_256x384": {"gflop": 30.0, "gflops": {2: 250.0}},
               "taef2_encode_256x384": {"gflop": 10.0, "gflops": {2: 100.0}},
               "taef2_pixel_pass_bf16_autocast": {"gflop": 70.0, "gflops": {2: 900.0}}}    # not float32: ignored
    train = [{"method": "m", "gflop": 2.0, "budget_steps": 400, "gflops": {2: 50.0}},
             {"method": "m", "gflop": 1.0, "budget_steps": 1200, "gflops": {2: 20.0}},
             {"method": "n", "gflop": 5.0, "budget_steps": 1600, "gflops": {2: 120.0}}]
    got = projection(kernels, train, {"float32": {2: 200.0, 1: 100.0}})
    assert set(EVAL_KERNELS) == {k for k in kernels if "bf16" not in k}
    assert got["train_tflop"] == pytest.approx((800 + 1200 + 8000) / 1e3)
    assert got["eval_tflop"] == pytest.approx(EVAL_VIEWS * 100.0 / 1e3)
    assert got["floor_seconds"] == pytest.approx((10.0 + EVAL_VIEWS * 0.1) / 0.2)
    assert got["fastest_tflops"] == pytest.approx(0.25)                     # DISTS ran above the ceiling
    assert got["floor_seconds_at_fastest"] == pytest.approx((10.0 + EVAL_VIEWS * 0.1) / 0.25)
    assert got["by_method_seconds"] == {"m": pytest.approx(2.0 / 0.2), "n": pytest.approx(8.0 / 0.2)}
