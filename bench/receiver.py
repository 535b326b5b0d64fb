"""Decoding cost of the JSCGC receiver: a 9-step Euler decode with the backbone + CA-Adapter.

Builds the preset's receiver with random weights directly on the device (cost does not depend on
weights), runs the shared sampler (:func:`jscgc.flow.euler_sample`) and records per setting: ms per image
(median of the repeats), achieved TFLOP/s (FLOPs counted by torch's FlopCounterMode on one eager velocity
evaluation), the fraction of a GEMM ceiling measured in the same run (a square matmul in the same dtype),
the adapter's overhead against the backbone alone, and peak memory. ``--profile HxW:B`` adds where the time
of one decode goes (bench/kernel_profile.py). Writes JSON (bench/performance.py turns it
into rows of docs/performance.md).

    python bench/receiver.py                                          # tiny preset on the CPU (cannot rot)
    python bench/receiver.py --preset full --profile 768x512:4        # the 6B receiver on one GPU, eager
    python bench/receiver.py --preset full --compile --profile 768x512:4   # the same, blocks compiled
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.environment import checked, environment, json_out, peak_memory_gib, reset_peak_memory, sync
from bench.kernel_profile import profile_call
from jscgc import checks
from jscgc.cbr import symbols_per_token
from jscgc.checks import UsageError
from jscgc.flow import euler_sample
from jscgc.io import atomic_write_json
from jscgc.methods import LatentSpec, zimage_receiver
from jscgc.presets import PRESETS, get_preset
from jscgc.types import Received

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
GPU_SIZES = "256x256:1,4,8 768x512:1,4"       # the GPU plan's settings (docs/gpu_plan.md)
CPU_SIZES = "64x64:1,4 256x256:1"


def parse_sizes(text: str, multiple: int, flag: str = "--sizes") -> list[tuple[int, int, int]]:
    """'256x256:1,4 768x512:1' -> [(256, 256, 1), (256, 256, 4), (768, 512, 1)]; sides must be multiples
    of ``multiple`` (the token size), batches positive, at least one setting. One ValueError line naming
    ``flag`` and the bad entry."""
    out = []
    for spec in text.split():
        try:
            hw, batches = spec.split(":")
            h, w = (int(v) for v in hw.lower().split("x"))
            sizes = [(h, w, int(b)) for b in batches.split(",")]
        except ValueError:
            raise ValueError(f"{flag}: expected HxW:B[,B...] like 256x256:1,4, got {spec!r}") from None
        if h <= 0 or w <= 0 or h % multiple or w % multiple or min(b for *_, b in sizes) < 1:
            raise ValueError(f"{flag}: {spec!r} needs sides that are positive multiples of {multiple} "
                             f"and batches >= 1")
        out += sizes
    if not out:
        raise ValueError(f"{flag}: expected HxW:B[,B...] like 256x256:1,4, got {text!r}")
    return out


def gemm_ceiling(device, dtype, n: int, repeats: int = 10) -> float:
    """TFLOP/s of an n x n x n matmul in ``dtype`` (the ceiling the receiver is compared with)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e12


def build(preset, device: torch.device, dtype: torch.dtype):
    """The preset's receiver (ZImageVelocity), random weights made on ``device``, cast to ``dtype``."""
    torch.manual_seed(0)
    with torch.device(device):
        velocity = zimage_receiver(preset, LatentSpec(preset.latent_channels),
                                   symbols_per_token(preset.token_px, preset.cbr))
    return velocity.to(dtype).eval()


def inputs(preset, channels: int, h: int, w: int, batch: int, device) -> tuple[Received, tuple[int, ...]]:
    """ŷ for an h x w image at the preset's CBR, and the latent shape (B, C, h/8, w/8)."""
    n = (h // preset.token_px) * (w // preset.token_px) * symbols_per_token(preset.token_px, preset.cbr)
    g = torch.Generator(device=device).manual_seed(0)
    received = Received(torch.randn(batch, n, 2, device=device, generator=g), torch.full((batch,), 5.0, device=device))
    return received, (batch, channels, h // 8, w // 8)


def decode_times(model, received, lat, steps, repeats, device, dtype) -> list[float]:
    """Seconds of each of ``repeats`` whole decodes, after one untimed decode (warm-up, compilation)."""
    g = torch.Generator(device=device).manual_seed(0)
    run = lambda: euler_sample(model, received, lat, steps, g, device=device, dtype=dtype)  # noqa: E731
    times = []
    with torch.no_grad():
        run()
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            times.append(time.perf_counter() - start)
    return times


def flops_per_eval(velocity, x, t, received) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        velocity(x, t, received)
    return counter.get_total_flops()


def _backbone_only(velocity):
    return lambda x_t, t, received: velocity.backbone_velocity(x_t, t, None)


def bench_one(velocity, preset, size, steps, device, dtype, repeats, flops) -> dict:
    """One setting: the receiver's and the backbone's decode times, the memory and the FLOP rate.
    ``flops`` are the receiver's FLOPs per decode, counted eagerly (compilation does not change them)."""
    h, w, batch = size
    received, lat = inputs(preset, velocity.backbone.config.in_channels, h, w, batch, device)
    reset_peak_memory(device)
    receiver = decode_times(velocity, received, lat, steps, repeats, device, dtype)
    peak = peak_memory_gib(device)
    backbone = decode_times(_backbone_only(velocity), received, lat, steps, repeats, device, dtype)
    seconds, seconds_backbone = statistics.median(receiver), statistics.median(backbone)
    return {"height": h, "width": w, "batch": batch, "steps": steps,
            "ms_per_image": seconds / batch * 1e3, "ms_per_image_backbone": seconds_backbone / batch * 1e3,
            "ms_per_batch_runs": [s * 1e3 for s in receiver], "tflops": flops / seconds / 1e12,
            "flops_per_decode": flops, "adapter_overhead": seconds / seconds_backbone - 1,
            "peak_memory_gib": peak}


def count_flops(velocity, preset, sizes, steps, device, dtype) -> dict[tuple[int, int, int], int]:
    """Receiver FLOPs of one decode per setting (eager, before any compilation)."""
    out = {}
    for h, w, b in sizes:
        received, lat = inputs(preset, velocity.backbone.config.in_channels, h, w, b, device)
        x = torch.randn(lat, device=device, dtype=dtype)
        out[(h, w, b)] = steps * flops_per_eval(velocity, x, torch.full((b,), 0.5, device=device), received)
    return out


def profile_decode(velocity, preset, size, steps, device, dtype) -> dict:
    h, w, b = size
    received, lat = inputs(preset, velocity.backbone.config.in_channels, h, w, b, device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        euler_sample(velocity, received, lat, steps, g, device=device, dtype=dtype)       # warm-up
        prof = profile_call(lambda: euler_sample(velocity, received, lat, steps, g, device=device, dtype=dtype),
                            device)
    return {"height": h, "width": w, "batch": b, **prof}


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default bf16 on GPU, fp32 on CPU")
    p.add_argument("--sizes", nargs="+", default=None,
                   help=f"HxW:batches ..., default {GPU_SIZES!r} on GPU, {CPU_SIZES!r} on CPU")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="regional torch.compile (ZImageVelocity.compile_blocks)")
    p.add_argument("--profile", default=None, metavar="HxW:B", help="also profile one decode at this setting")
    p.add_argument("--out", default=None, help="JSON file (default results/bench_receiver_<preset>.json)")
    return p.parse_args(argv)


def check(argv, device) -> tuple[argparse.Namespace, object, list, tuple | None, Path]:
    """Every input checked before the model is built: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    preset = get_preset(a.preset, zimage=None)
    try:
        default = GPU_SIZES if device.type == "cuda" else CPU_SIZES
        sizes = parse_sizes(" ".join(a.sizes) if a.sizes else default, preset.token_px)
        prof = parse_sizes(a.profile, preset.token_px, "--profile") if a.profile is not None else None
    except ValueError as err:
        raise UsageError(str(err)) from None
    if prof is not None and len(prof) != 1:
        raise UsageError(f"--profile {a.profile!r}: expected one setting HxW:B")
    checks.positive_int("--steps", a.steps)
    checks.positive_int("--repeats", a.repeats)
    out = json_out("--out", a.out or f"results/bench_receiver_{preset.name}.json")
    return a, preset, sizes, prof[0] if prof else None, out


def main(argv: list[str] | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    a, preset, sizes, prof_size, out = checked("receiver", lambda: check(argv, device))
    dtype = DTYPES[a.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    velocity = build(preset, device, dtype)
    flops = count_flops(velocity, preset, sorted(set(sizes + ([prof_size] if prof_size else []))), a.steps,
                        device, dtype)
    if a.compile:
        velocity.compile_blocks()
    n = 8192 if device.type == "cuda" else 1024
    ceiling = gemm_ceiling(device, dtype, n)
    rows = []
    for size in sizes:
        row = bench_one(velocity, preset, size, a.steps, device, dtype, a.repeats, flops[size])
        row["fraction_of_gemm_ceiling"] = row["tflops"] / ceiling
        rows.append(row)
        print(f"{size[0]}x{size[1]} batch {size[2]}: {row['ms_per_image']:.1f} ms/image, {row['tflops']:.3g} TFLOP/s "
              f"({row['fraction_of_gemm_ceiling']:.0%} of GEMM), adapter {row['adapter_overhead']:+.1%}"
              + (f", peak {row['peak_memory_gib']:.1f} GiB" if row["peak_memory_gib"] else ""), flush=True)
    result = {"bench": "receiver", "preset": preset.name, "dtype": str(dtype).removeprefix("torch."),
              "compile": a.compile, "gemm_ceiling_tflops": ceiling, "gemm_n": n,
              "parameters": sum(p.numel() for p in velocity.parameters()),
              **environment(device, "receiver.py", argv), "rows": rows}
    if prof_size:
        result["profile"] = profile_decode(velocity, preset, prof_size, a.steps, device, dtype)
        print("profile:", ", ".join(f"{k} {v:.0%}" for k, v in result["profile"]["by_category"].items()),
              f"(busy {result['profile']['busy_fraction']:.0%})")
    atomic_write_json(out, result)
    print(f"GEMM ceiling ({dtype}, n={n}): {ceiling:.3g} TFLOP/s; wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
