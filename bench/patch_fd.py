"""Cost of the 8×8 DCT-patch Fréchet distance (jscgc.metrics.patch_fd) on a Kodak-small-sized set:
24 images of 384×256 against 24 noisy copies (the set kodak.py's `small` preset scores per SNR).

    python bench/patch_fd.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.environment import checked
from jscgc import checks
from jscgc.metrics import patch_fd


def check(argv) -> argparse.Namespace:
    """Every input checked before any image is made: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    checks.positive_int("--repeats", a.repeats)
    return a


def main(argv: list[str] | None = None) -> float:
    a = checked("patch_fd", lambda: check(argv))
    g = torch.Generator().manual_seed(0)
    refs = [torch.rand(1, 3, 256, 384, generator=g) for _ in range(24)]
    outs = [(r + 0.05 * torch.randn(r.shape, generator=g)).clamp(0, 1) for r in refs]
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        patch_fd(refs, outs)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"patch_fd, 24 images of 384x256: median {median * 1e3:.0f} ms over {a.repeats} runs "
          f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f})")
    return median


if __name__ == "__main__":
    main(sys.argv[1:])
