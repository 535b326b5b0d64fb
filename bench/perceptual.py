"""Cost of each learned metric (LPIPS alex/vgg/squeeze, DISTS) on one image pair, as the Kodak evaluation
calls it: the reference's features memoised (computed once per image), so a call runs the network on the
output only. Also the first, uncached call (both images). Sizes: 384x256 (Kodak ÷2, the `small`
benchmark) and 768x512 (whole Kodak). Goals (docs/metrics.md): at 384x256, LPIPS-vgg and DISTS ≤ 1 s,
LPIPS-alex ≤ 0.2 s on the 2-core CPU.

    python bench/perceptual.py [--repeats 5] [--sizes 384x256 768x512]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.environment import checked
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.metrics import available_metrics

NAMES = ("lpips_alex", "lpips_vgg", "lpips_squeeze", "dists")
GOALS = {("lpips_alex", "384x256"): 0.2, ("lpips_vgg", "384x256"): 1.0, ("dists", "384x256"): 1.0}


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"{text!r}: both sides must be at least 32 px")
    return w, h


def check(argv) -> tuple[argparse.Namespace, dict]:
    """Every input checked before any timing, the flags first, then the metrics (their weights are loaded
    here): one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", type=_size, nargs="+", default=[(384, 256), (768, 512)])
    a = p.parse_args(argv)
    checks.positive_int("--repeats", a.repeats)
    ready, missing = available_metrics(list(NAMES))
    if missing:
        raise UsageError("; ".join(f"{k}: {v}" for k, v in missing.items()))
    return a, ready


def main(argv: list[str] | None = None) -> dict:
    a, ready = checked("perceptual", lambda: check(argv))
    g, results = torch.Generator().manual_seed(0), {}
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    for w, h in a.sizes:
        ref = torch.rand(1, 3, h, w, generator=g)
        for name in NAMES:
            fn = ready[name]
            start = time.perf_counter()
            fn(ref, ref.flip(-1))                      # first call: the reference's features too
            first = time.perf_counter() - start
            times = []
            for k in range(a.repeats):
                out = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
                start = time.perf_counter()
                fn(ref, out)
                times.append(time.perf_counter() - start)
            med, key = statistics.median(times), (name, f"{w}x{h}")
            goal = f"; goal ≤ {GOALS[key]:g} s: {'met' if med <= GOALS[key] else 'missed'}" if key in GOALS else ""
            print(f"{name:14s} {w}x{h}: median {med * 1e3:.0f} ms over {a.repeats} calls (min {min(times) * 1e3:.0f}, "
                  f"max {max(times) * 1e3:.0f}); first call, reference included, {first * 1e3:.0f} ms{goal}")
            results[key] = med
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
