"""Speed of the selective scan: the parallel PyTorch scan against the sequential reference loop,
and against mamba-ssm's CUDA kernel where a GPU with it is present.

Shapes are those of one SS2D layer of the `default` MambaJSCC encoder on a 256x256 crop: the
latent (32x32) patchified by 2 gives L = 256 tokens, 4 routes x d_inner 256 channels, N = 16.

    python bench/scan.py [--batch 8] [--length 256] [--channels 1024] [--state 16] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from bench.environment import checked
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.scan import mamba_ssm_available, selective_scan, selective_scan_reference, selective_scan_torch

SIZES = ("batch", "length", "channels", "state", "groups", "repeats")


def _time(fn, repeats: int, device: str) -> float:
    fn()                                                    # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--channels", type=int, default=1024, help="D = routes x d_inner")
    p.add_argument("--state", type=int, default=16)
    p.add_argument("--groups", type=int, default=4, help="routes sharing B and C")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def device(text: str) -> torch.device:
    """``cpu``, or ``cuda[:N]`` naming a GPU of this machine."""
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {text!r}: expected cpu or cuda[:N]")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {text}: no such GPU here ({torch.cuda.device_count()} CUDA devices)")
    return dev


def check(argv) -> argparse.Namespace:
    """Every input checked before any tensor is made: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    for name in SIZES:
        checks.positive_int(f"--{name}", getattr(a, name))
    if a.channels % a.groups:
        raise UsageError(f"--groups {a.groups}: expected a divisor of --channels {a.channels}")
    device(a.device)
    return a


def main(argv: list[str] | None = None) -> dict:
    a = checked("scan", lambda: check(argv))
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(a.device)  # noqa: E731
    b, d, n, L, G = a.batch, a.channels, a.state, a.length, a.groups
    args = (r(b, d, L), r(b, d, L), -torch.rand(d, n, generator=g).to(a.device), r(b, G, n, L),
            r(b, G, n, L), r(d), r(d))
    with torch.no_grad():
        err = float((selective_scan_torch(*args, True) - selective_scan_reference(*args, True)).abs().max())
        res = {"device": a.device, "shape": {"batch": b, "D": d, "N": n, "L": L, "G": G},
               "max_abs_diff_vs_reference": err,
               "torch_parallel_ms": _time(lambda: selective_scan_torch(*args, True), a.repeats, a.device),
               "reference_loop_ms": _time(lambda: selective_scan_reference(*args, True),
                                          max(1, a.repeats // 2), a.device)}
        if a.device.startswith("cuda") and mamba_ssm_available():
            res["mamba_ssm_ms"] = _time(lambda: selective_scan(*args, True, backend="mamba_ssm"),
                                        a.repeats, a.device)
    res["speedup_vs_reference"] = res["reference_loop_ms"] / res["torch_parallel_ms"]
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
