"""Where a benchmark's time goes: one call under torch.profiler, its time split by kind of work.

On a GPU the split is over CUDA kernels (their device time); on the CPU over aten operators (their self
time). ``busy_fraction`` is the summed kernel time over the call's wall time: well below 1 means the GPU
waits for the host (launch-bound), which a faster kernel cannot fix.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

import torch

from bench.environment import sync

#: (category, pattern on the kernel or operator name), the first match wins; the order matters: a cuBLAS
#: kernel fused with its epilogue is still matrix work, and flash-attention kernels hold "gemm" in their names
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("attention", r"flash|fmha|attention|sdpa|scaled_dot_product"),
    ("matmul", r"gemm|matmul|cutlass|xmma|nvjet|cublas|aten::(mm|addmm|bmm|baddbmm)$|sm90_|wgmma|^triton_tem"),
    ("copy", r"memcpy|memset|copy_|aten::(copy_|cat|to|_to_copy|contiguous|clone)$|CatArrayBatched"),
    ("fused (compiled)", r"^triton_"),
    ("convolution", r"conv|cudnn|aten::(convolution|_convolution|mkldnn_convolution)$"),
    ("elementwise and reductions", r"elementwise|vectorized|reduce|norm|softmax|gelu|silu|aten::"),
)


def category(name: str) -> str:
    """The first category of :data:`CATEGORIES` whose pattern matches ``name``, else "other"."""
    for label, pattern in CATEGORIES:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return label
    return "other"


def split(times: dict[str, float]) -> dict[str, float]:
    """{name: µs} -> {category: fraction of the total}, largest first (fractions sum to 1)."""
    total = sum(times.values()) or 1.0
    out: dict[str, float] = {}
    for name, us in times.items():
        out[category(name)] = out.get(category(name), 0.0) + us / total
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _event_times(prof, device: torch.device) -> dict[str, float]:
    """{kernel name: device µs} on a GPU, {aten op: self CPU µs} on the CPU."""
    times: dict[str, float] = {}
    for evt in prof.key_averages():
        if device.type == "cuda":
            us = evt.self_device_time_total if evt.device_type == torch.autograd.DeviceType.CUDA else 0.0
        else:
            us = evt.self_cpu_time_total if evt.key.startswith("aten::") else 0.0
        if us > 0:
            times[evt.key] = times.get(evt.key, 0.0) + us
    return times


def profile_call(fn: Callable[[], Any], device: torch.device, top: int = 12) -> dict[str, Any]:
    """Run ``fn`` once (after the caller's warm-up) under the profiler.

    Returns {wall_ms, kernel_ms, busy_fraction, by_category: {category: fraction}, top: [{name, ms,
    fraction, category}]} with ``top`` of the longest kernels (or operators)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        wall_us = (time.perf_counter() - start) * 1e6
    times = _event_times(prof, device)
    total = sum(times.values())
    longest = sorted(times.items(), key=lambda kv: -kv[1])[:top]
    return {"wall_ms": wall_us / 1e3, "kernel_ms": total / 1e3, "busy_fraction": total / wall_us,
            "by_category": split(times),
            "top": [{"name": n[:160], "ms": us / 1e3, "fraction": us / total, "category": category(n)}
                    for n, us in longest]}
