"""Cost of MS-SSIM (jscgc.metrics.ms_ssim) on one 768x512 image pair (a whole Kodak image), against
torchmetrics' own MS-SSIM on the same pair for scale.

    python bench/ms_ssim.py [--repeats 5] [--no-reference]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.environment import checked
from jscgc import checks
from jscgc.metrics import ms_ssim


def _median_seconds(fn, repeats: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def check(argv) -> argparse.Namespace:
    """Every input checked before any image is made: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-reference", action="store_true", help="skip torchmetrics' MS-SSIM (4 s a call here)")
    a = p.parse_args(argv)
    checks.positive_int("--repeats", a.repeats)
    return a


def main(argv: list[str] | None = None) -> float:
    a = checked("ms_ssim", lambda: check(argv))
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 512, 768, generator=g)
    out = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    med, lo, hi = _median_seconds(lambda: ms_ssim(ref, out), a.repeats)
    print(f"jscgc ms_ssim, 768x512: median {med * 1e3:.0f} ms over {a.repeats} runs "
          f"(min {lo * 1e3:.0f}, max {hi * 1e3:.0f}), {torch.get_num_threads()} torch threads")
    if not a.no_reference:
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

        rmed, rlo, rhi = _median_seconds(lambda: tm(out.double(), ref.double(), data_range=1.0), a.repeats)
        print(f"torchmetrics multiscale_structural_similarity_index_measure (float64), same pair: median "
              f"{rmed * 1e3:.0f} ms (min {rlo * 1e3:.0f}, max {rhi * 1e3:.0f}); ratio {rmed / med:.1f}x")
    return med


if __name__ == "__main__":
    main(sys.argv[1:])
