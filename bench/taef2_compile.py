"""torch.compile of the frozen TAEF2 decoder on the CPU: does it pay after its compile time? (issue 27)

The pixel losses of the ``small`` trainings (MambaJSCC throughout, JSCGC's MSE stage) decode the latents
with the frozen TAEF2 decoder and back-propagate through it to the latents; that pass is the largest cost
of a MambaJSCC step (docs/performance.md). This script times that pass, forward and backward of a pixel
MSE, eager against ``torch.compile`` (inductor, one graph per shape), at the three shapes of the ``small``
crop schedule: 16 latents of 8x8 (64x64 crops), 4 of 16x16 (128x128) and 1 of 32x48 (256x384). Each round
times both paths at every shape in alternating order; the ratio is the median over rounds of compiled /
eager in the same round. It also records each shape's compile time (the first compiled call less an eager
one), the calls needed to earn it back, and how far the compiled outputs and latent gradients are from the
eager ones (largest difference over the largest magnitude). Random latents (cost does not depend on them);
the shipped weights when present, else random ones. Writes JSON.

    python bench/taef2_compile.py --rounds 5 --calls 5
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Callable

import torch

from bench.environment import checked, environment, json_out
from jscgc import checks
from jscgc.io import atomic_write_json
from jscgc.latents import TAEF2, weights_root

SHAPES = {"64x64": (16, 8, 8), "128x128": (4, 16, 16), "256x384": (1, 32, 48)}   # crop: (batch, h, w) of latents


def check(argv):
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=5, help="timed calls per path, shape and round")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default="bench/results/taef2_compile_cpu.json")
    a = p.parse_args(argv)
    for flag, value in (("--rounds", a.rounds), ("--calls", a.calls), ("--threads", a.threads)):
        if value is not None and value < 1:
            raise checks.UsageError(f"{flag} {value}: expected an integer >= 1")
    return a, json_out("--out", a.out)


def pixel_pass(decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
               target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode z (B, 32, h, w) to (B, 3, 8h, 8w), the MSE to ``target``, its gradient to z: (output, grad)."""
    z = z.detach().clone().requires_grad_(True)
    out = decode(z)
    (grad,) = torch.autograd.grad((out - target).square().mean(), z)    # the decoder's weights are frozen
    return out.detach(), grad


def timed_ms(decode, z, target, calls: int) -> float:
    """Median wall milliseconds of ``calls`` pixel passes."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        pixel_pass(decode, z, target)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def main(argv: list[str] | None = None) -> dict:
    a, out = checked("taef2_compile", lambda: check(argv))
    if a.threads:
        torch.set_num_threads(a.threads)
    root = weights_root()
    shipped = root is not None and (root / "taef2").is_dir()
    taef2 = TAEF2.from_pretrained() if shipped else TAEF2()
    taef2.requires_grad_(False).eval()
    eager, compiled = taef2.decode_unclamped, torch.compile(taef2.decode_unclamped, dynamic=False)
    gen = torch.Generator().manual_seed(0)
    inputs = {k: (torch.randn(b, 32, h, w, generator=gen), torch.rand(b, 3, 8 * h, 8 * w, generator=gen))
              for k, (b, h, w) in SHAPES.items()}
    shapes = {}
    for name, (z, target) in inputs.items():
        start = time.perf_counter()
        got = pixel_pass(compiled, z, target)
        first_ms = (time.perf_counter() - start) * 1e3
        ref = pixel_pass(eager, z, target)
        shapes[name] = {"first_compiled_ms": first_ms, "out_gap": relative_gap(got[0], ref[0]),
                        "grad_gap": relative_gap(got[1], ref[1]), "eager_ms": [], "compiled_ms": []}
        print(f"{name}: compiled in {first_ms / 1e3:.1f} s; output gap {shapes[name]['out_gap']:.1e}, "
              f"gradient gap {shapes[name]['grad_gap']:.1e}", flush=True)
    for r in range(a.rounds):
        for name, (z, target) in inputs.items():
            order = (("eager", eager), ("compiled", compiled))
            for path, fn in (order if r % 2 == 0 else order[::-1]):
                shapes[name][f"{path}_ms"].append(timed_ms(fn, z, target, a.calls))
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    for name, s in shapes.items():
        s["ratio_median"] = statistics.median(c / e for c, e in zip(s["compiled_ms"], s["eager_ms"]))
        s["eager_median_ms"] = statistics.median(s["eager_ms"])
        s["compiled_median_ms"] = statistics.median(s["compiled_ms"])
        saved = s["eager_median_ms"] - s["compiled_median_ms"]
        s["compile_s"] = max(0.0, s["first_compiled_ms"] - s["eager_median_ms"]) / 1e3
        s["break_even_calls"] = s["compile_s"] * 1e3 / saved if saved > 0 else None
        even = "never" if s["break_even_calls"] is None else f"{s['break_even_calls']:.0f} calls"
        print(f"{name}: eager {s['eager_median_ms']:.1f} ms, compiled {s['compiled_median_ms']:.1f} ms, "
              f"ratio {s['ratio_median']:.2f}; compile {s['compile_s']:.1f} s, break-even {even}")
    result = {"bench": "taef2_compile", "weights": "shipped" if shipped else "random",
              "threads": torch.get_num_threads(), "rounds": a.rounds, "calls": a.calls,
              **environment(torch.device("cpu"), "taef2_compile.py", argv), "shapes": shapes}
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
