"""Decoding cost of the JSCGC receiver: a 9-step Euler decode with the backbone + CA-Adapter.

Builds the preset's receiver with random weights (cost does not depend on weights), runs the shared
sampler (:func:`jscgc.flow.euler_sample`) and prints per setting: ms per image, achieved TFLOP/s
(FLOPs counted by torch's FlopCounterMode on one velocity evaluation), the fraction of a GEMM
ceiling measured in the same run (a square matmul in the same dtype), the adapter's overhead
against the backbone alone, and peak memory. Writes the same as JSON.

    python bench/receiver.py                                   # tiny preset on the CPU (cannot rot)
    python bench/receiver.py --preset full --dtype bf16 --compile   # the 6B receiver on one GPU
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jscgc.cbr import symbols_per_token  # noqa: E402
from jscgc.flow import euler_sample  # noqa: E402
from jscgc.io import atomic_write_json  # noqa: E402
from jscgc.methods import LatentSpec, zimage_receiver  # noqa: E402
from jscgc.presets import PRESETS, get_preset  # noqa: E402
from jscgc.types import Received  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_ceiling(device, dtype, n: int, repeats: int = 10) -> float:
    """TFLOP/s of an n x n x n matmul in ``dtype`` (the ceiling the receiver is compared with)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e12


def flops_per_eval(velocity, x, t, r) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        velocity(x, t, r)
    return counter.get_total_flops()


def bench_one(velocity, preset, h, w, batch, steps, device, dtype, repeats):
    channels = velocity.backbone.config.in_channels
    lat = (batch, channels, h // 8, w // 8)
    spt = symbols_per_token(preset.token_px, preset.cbr)
    n = (h // preset.token_px) * (w // preset.token_px) * spt
    g = torch.Generator(device=device).manual_seed(0)
    r = Received(torch.randn(batch, n, 2, device=device, generator=g), torch.full((batch,), 5.0, device=device))
    x = torch.randn(lat, device=device, dtype=dtype)
    t = torch.full((batch,), 0.5, device=device)
    flops = flops_per_eval(velocity, x, t, r) * steps
    backbone_only = lambda x_t, tt, cond: velocity.backbone_velocity(x_t, tt, None)  # noqa: E731
    out = {}
    for name, model in (("receiver", velocity), ("backbone", backbone_only)):
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            euler_sample(model, r, lat, steps, g, device=device, dtype=dtype)   # warm-up / compile
            _sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(repeats):
                euler_sample(model, r, lat, steps, g, device=device, dtype=dtype)
            _sync(device)
        out[name] = (time.perf_counter() - start) / repeats
    seconds = out["receiver"]
    return {"height": h, "width": w, "batch": batch, "steps": steps,
            "ms_per_image": seconds / batch * 1e3, "ms_per_batch": seconds * 1e3,
            "tflops": flops / seconds / 1e12, "flops_per_decode": flops,
            "adapter_overhead": out["receiver"] / out["backbone"] - 1,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default bf16 on GPU, fp32 on CPU")
    p.add_argument("--sizes", default=None, help="e.g. 256x256:1,4 768x512:1 (HxW:batches)")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="regional torch.compile of the repeated blocks")
    p.add_argument("--out", default=None, help="JSON file (default results/bench_receiver_<preset>.json)")
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[a.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    preset = get_preset(a.preset, zimage=None)
    default_sizes = ("256x256:1,4,8,32 768x512:1,4,8" if device.type == "cuda" else "64x64:1,4 256x256:1")
    torch.manual_seed(0)
    velocity = zimage_receiver(preset, LatentSpec(preset.latent_channels),
                               symbols_per_token(preset.token_px, preset.cbr))
    velocity.to(device=device, dtype=dtype).eval()
    if a.compile:
        velocity.backbone.compile_repeated_blocks(fullgraph=True)
    n = 8192 if device.type == "cuda" else 1024
    ceiling = gemm_ceiling(device, dtype, n)
    rows = []
    for spec in (a.sizes or default_sizes).split():
        hw, batches = spec.split(":")
        h, w = (int(v) for v in hw.split("x"))
        for b in (int(v) for v in batches.split(",")):
            row = bench_one(velocity, preset, h, w, b, a.steps, device, dtype, a.repeats)
            row["fraction_of_gemm_ceiling"] = row["tflops"] / ceiling
            rows.append(row)
            print(f"{h}x{w} batch {b}: {row['ms_per_image']:.1f} ms/image, {row['tflops']:.3g} TFLOP/s "
                  f"({row['fraction_of_gemm_ceiling']:.0%} of GEMM), adapter +{row['adapter_overhead']:.1%}"
                  + (f", peak {row['peak_memory_gb']:.1f} GiB" if row["peak_memory_gb"] else ""))
    result = {"preset": preset.name, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "dtype": str(dtype), "compile": a.compile, "gemm_ceiling_tflops": ceiling, "gemm_n": n,
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    out = Path(a.out or f"results/bench_receiver_{preset.name}.json")
    atomic_write_json(out, result)
    print(f"GEMM ceiling ({dtype}, n={n}): {ceiling:.3g} TFLOP/s; wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
