"""How close each CPU cost of the ``small`` benchmark runs to this machine's float32 ceiling (issue 27).

Issue 27 asks for a ``small`` Kodak seed in half the time without changing what is computed beyond float32
rounding. A workload can only get that much faster if it runs well below the machine's float32 rate. This
script measures that rate and where each workload sits against it:

* the ceiling: the faster of two float32 rates, a 2048x2048 matrix product and a 3x3 convolution of 128
  to 128 channels on four channels-last 128x128 maps (median of calls), at two threads and at one; the same
  in bfloat16 beside it for reference (what reduced precision would offer, not used);
* kernels: the frozen TAEF2 decoder's pixel pass (forward and the gradient to its 16 latents of 8x8, the
  MambaJSCC and JSCGC-MSE loss), the TAEF2 encoder on 16 crops of 64x64 (DiffJSCC's refinement condition)
  and on one 256x384 image (the latent distance of evaluation), and the two VGG-16 feature passes of
  evaluation (LPIPS-vgg's and DISTS', as jscgc.metrics runs them) on that image; and the pixel pass under
  ``torch.autocast(bfloat16)`` with its largest distance from float32 (output, latent gradient); one 3x3
  convolution of that decoder through oneDNN and through NNPACK, with their errors against float64;
* training: one optimiser step of each method at each stage of its plan, built and trained as
  bench/train_profile.py does (kodak.py's build, loop and BSDS500 ``train`` source).

For each: the floating-point operations of one call or step (``torch.utils.flop_counter.FlopCounterMode``:
matrix products and convolutions, forward and backward; element-wise work is not counted), its median wall
time at two threads and at one, the rate (GFLOP/s), that rate as a share of the ceiling at the same thread
count, and the speed-up from one thread to two. A share near 100 % leaves nothing to gain in float32; a low
share with little speed-up from a second thread is work bound by per-operation overhead, which
``kodak.py --workers`` already overlaps.

The seed projection multiplies each method's counted work per step by its plan's steps at the ``small``
budget, and evaluation's per-view work (the two VGG passes and the TAEF2 encode of the latent distance on
a 256x384 image) by the 9 scored views of 96 receptions, then divides by the two-thread rate: the least
time that counted work can take here at float32. It is given at the ceiling and, so that it is a lower
bound even where the ceiling is measured low, at the fastest rate any workload of the run reached. The
receivers' sampling in evaluation, the set intervals and every element-wise operation are left out, so the
true floor is higher. Writes JSON.

    python bench/cpu_headroom.py                  # all six methods, 5 timed calls or steps each
    python bench/cpu_headroom.py --methods cjscc --calls 3
"""
from __future__ import annotations

import contextlib
import dataclasses
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import jscgc.train as loop
from bench.environment import checked, json_out, write_cpu_result
from bench.taef2_compile import pixel_pass, relative_gap
from bench.train_profile import ALL_METHODS, _build, profile_budget, run_training, setup, taef2_preset
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.latents import load_extractor
from jscgc.methods import METHODS
from jscgc.plan import stage_steps
from jscgc.presets import get_preset

THREADS = (2, 1)
EVAL_VIEWS = 96 * 9          # 24 images x 4 SNRs, 9 scored views over the six methods (docs/performance.md)
EVAL_KERNELS = ("lpips_vgg_features_256x384", "dists_features_256x384", "taef2_encode_256x384")   # per view


def check(argv):
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=ALL_METHODS, help=f"comma list of {sorted(METHODS)}")
    p.add_argument("--calls", type=int, default=5, help="timed calls (kernels) or steps (training) per setting")
    p.add_argument("--data", default=None, help="data root holding bsds500/train (else JSCGC_DATA, ../shared/data)")
    p.add_argument("--out", default="bench/results/cpu_headroom_cpu.json")
    a = p.parse_args(argv)
    taef2_preset("small")
    methods = checks.names("--methods", a.methods, sorted(METHODS))
    checks.positive_int("--calls", a.calls)
    folder = checks.image_folder("--data", a.data, "bsds500/train")
    out = json_out("--out", a.out)
    if torch.get_num_threads() < 2:
        raise UsageError(f"torch has {torch.get_num_threads()} thread; expected 2 or more (unset OMP_NUM_THREADS)")
    try:
        extractor = load_extractor("taef2")
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return a, methods, folder, out, extractor


def flops(fn) -> float:
    """The floating-point operations ``fn()`` runs (matrix products and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


@contextlib.contextmanager
def _threads(threads: int):
    """Run the block on ``threads`` torch threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_ms(fn, calls: int, threads: int) -> float:
    """Median wall milliseconds of ``calls`` calls of ``fn`` on ``threads`` torch threads, after two warm-up
    calls (with one, the first kernel after a change of thread count read up to 1.7x slow in some runs)."""
    with _threads(threads):
        fn()
        fn()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def rates(gflop: float, ms: dict[int, float], ceiling: dict[int, float]) -> dict:
    """The row of one workload: its work, times, rates, shares of the ceiling and thread speed-up."""
    row = {"gflop": gflop, "ms": ms, "speedup_1_to_2": ms[1] / ms[2]}
    row["gflops"] = {k: gflop / (v / 1e3) for k, v in ms.items()}
    row["percent_of_ceiling"] = {k: 100 * row["gflops"][k] / ceiling[k] for k in ms}
    return row


def ceilings(calls: int) -> dict:
    """The float32 (and, for reference, bfloat16) ceiling at each thread count, GFLOP/s: the faster of a
    2048x2048 matrix product and a 3x3 convolution of 128 to 128 channels on 4 channels-last 128x128 maps."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2048, 2048, generator=gen), torch.randn(2048, 2048, generator=gen)
    x, w = torch.randn(4, 128, 128, 128, generator=gen), torch.randn(128, 128, 3, 3, generator=gen) / 30
    x = x.contiguous(memory_format=torch.channels_last)
    work = {"mm": (2 * 2048 ** 3 / 1e9, lambda dt: (lambda p=a.to(dt), q=b.to(dt): p @ q)),
            "conv": (2 * 9 * 128 * 128 * 128 * 128 * 4 / 1e9,
                     lambda dt: (lambda p=x.to(dt), q=w.to(dt): torch.nn.functional.conv2d(p, q, padding=1)))}
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        each = {kind: {k: gflop / (median_ms(make(dtype), calls, k) / 1e3) for k in THREADS}
                for kind, (gflop, make) in work.items()}
        out[name] = {k: max(r[k] for r in each.values()) for k in THREADS}
        out[f"{name}_by_kind"] = each
    return out


def kernels(extractor, calls: int, ceiling: dict) -> dict:
    """The big frozen passes of training and evaluation, timed and counted; the bfloat16 pixel pass."""
    from jscgc.metrics.learned import _perceptual

    gen = torch.Generator().manual_seed(0)
    z, target = torch.randn(16, 32, 8, 8, generator=gen), torch.rand(16, 3, 64, 64, generator=gen)
    crops, image = torch.rand(16, 3, 64, 64, generator=gen), torch.rand(1, 3, 256, 384, generator=gen)
    decode, encode = extractor.decode_unclamped, torch.no_grad()(extractor.encode)    # encoding as evaluation does

    def decode_bf16(latents):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return decode(latents).float()

    vgg, dists = _perceptual("lpips_vgg", None)["features"], _perceptual("dists", None)["features"]
    work = {"taef2_pixel_pass": lambda: pixel_pass(decode, z, target),
            "taef2_encode_16x64": lambda: encode(crops),
            "taef2_encode_256x384": lambda: encode(image),
            "lpips_vgg_features_256x384": lambda: vgg(image),
            "dists_features_256x384": lambda: dists(image)}
    rows = {}
    for name, fn in work.items():
        rows[name] = rates(flops(fn) / 1e9, {k: median_ms(fn, calls, k) for k in THREADS}, ceiling["float32"])
        print(f"cpu_headroom: {name}: {rows[name]['percent_of_ceiling'][2]:.0f} % of the ceiling", flush=True)
    ref, low = pixel_pass(decode, z, target), pixel_pass(decode_bf16, z, target)
    bf16 = rates(rows["taef2_pixel_pass"]["gflop"], {k: median_ms(lambda: pixel_pass(decode_bf16, z, target),
                                                                  calls, k) for k in THREADS}, ceiling["float32"])
    bf16.update(output_gap=relative_gap(low[0], ref[0]), gradient_gap=relative_gap(low[1], ref[1]))
    rows["taef2_pixel_pass_bf16_autocast"] = bf16
    return rows | conv_backends(calls, ceiling)


def conv_backends(calls: int, ceiling: dict) -> dict:
    """One 3x3 convolution of TAEF2's decoder (64 to 64 channels, 16 maps of 32x32) through oneDNN (what
    torch runs, channels-last) and through NNPACK (torch's other CPU backend, fast 3x3 algorithms), each
    with its largest error against float64 over the largest magnitude."""
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(16, 64, 32, 32, generator=gen), torch.randn(64, 64, 3, 3, generator=gen) / 24
    bias, exact = torch.zeros(64), torch.nn.functional.conv2d(x.double(), w.double(), padding=1)
    last = x.contiguous(memory_format=torch.channels_last)
    paths = {"taef2_conv3x3_onednn": lambda: torch.nn.functional.conv2d(last, w, bias, padding=1)}
    if torch._nnpack_available():
        paths["taef2_conv3x3_nnpack"] = lambda: torch._nnpack_spatial_convolution(x, w, bias, [1, 1])
    gflop, rows = flops(lambda: torch.nn.functional.conv2d(x, w, bias, padding=1)) / 1e9, {}
    for name, fn in paths.items():
        rows[name] = rates(gflop, {k: median_ms(fn, calls, k) for k in THREADS}, ceiling["float32"])
        rows[name]["error_vs_float64"] = relative_gap(fn().double(), exact)
    return rows


def _counted_steps(system, source, config) -> list[float]:
    """Train ``system`` for ``config.steps`` steps: each step's GFLOP (counting slows a step, so not timed)."""
    step, work = loop._step, []

    def counted(*args, **kwargs):
        with FlopCounterMode(display=False) as counter:
            out = step(*args, **kwargs)
        work.append(counter.get_total_flops() / 1e9)
        return out

    loop._step = counted
    try:
        loop.train(system, source, config)
    finally:
        loop._step = step
    return work


def _timed_steps(system, source, config, threads: int) -> list[float]:
    """Train ``system`` for ``config.steps`` steps on ``threads`` torch threads: each step's wall seconds
    (bench/train_profile.py's timed loop)."""
    times = []
    with _threads(threads):
        run_training(system, source, config, times)
    return times


def training(method: str, preset, extractor, sources: dict, calls: int, ceiling: dict) -> list[dict]:
    """One row per stage of ``method``'s plan: the work and times of its steps after 2 warm-up steps."""
    system, _ = _build(method, preset, extractor, sources)
    plan, need = system.plan(), 2 + calls
    total = profile_budget(plan, need)
    config = dataclasses.replace(preset.train, steps=total, cpu=True, mixed_precision="no", progress=False,
                                 checkpoint_every=0)
    runs = {None: _counted_steps(*_build(method, preset, extractor, sources), config)}
    for threads in THREADS:
        runs[threads] = _timed_steps(*_build(method, preset, extractor, sources), config, threads)
    rows, begin = [], 0
    for stage, n, full in zip(plan, stage_steps(plan, total), stage_steps(plan, preset.train.steps)):
        window = range(begin + 2, begin + need)
        begin += n
        gflop = statistics.median(runs[None][k] for k in window)
        ms = {k: 1e3 * statistics.median(runs[k][i] for i in window) for k in THREADS}
        rows.append({"method": method, "stage": stage.name, "budget_steps": full,
                     **rates(gflop, ms, ceiling["float32"])})
    return rows


def projection(kernel_rows: dict, train_rows: list[dict], ceiling: dict) -> dict:
    """The least seconds the counted work of one seed takes on two threads: the preset's budget of every
    training stage, and per scored view evaluation's two VGG passes and the latent distance's TAEF2 encode;
    at the ceiling, and at the fastest rate any measured workload reached (which may exceed it)."""
    train_tflop = sum(r["gflop"] * r["budget_steps"] for r in train_rows) / 1e3
    eval_tflop = EVAL_VIEWS * sum(kernel_rows[k]["gflop"] for k in EVAL_KERNELS) / 1e3
    fastest = max([ceiling["float32"][2]] + [r["gflops"][2] for k, r in kernel_rows.items() if "bf16" not in k]
                  + [r["gflops"][2] for r in train_rows]) / 1e3
    rate = ceiling["float32"][2] / 1e3
    methods = dict.fromkeys(r["method"] for r in train_rows)
    return {"train_tflop": train_tflop, "eval_tflop": eval_tflop, "ceiling_tflops": rate, "fastest_tflops": fastest,
            "floor_seconds": (train_tflop + eval_tflop) / rate,
            "floor_seconds_at_fastest": (train_tflop + eval_tflop) / fastest,
            "by_method_seconds": {m: sum(r["gflop"] * r["budget_steps"] for r in train_rows if r["method"] == m)
                                  / 1e3 / rate for m in methods}}


def table(kernel_rows: dict, train_rows: list[dict]) -> str:
    head = "| workload | GFLOP | ms, 2 threads | GFLOP/s | % of ceiling | ms, 1 thread | % of ceiling | 1→2 speed-up |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    named = [(k, r) for k, r in kernel_rows.items()] + [(f"{r['method']} {r['stage']} step", r) for r in train_rows]
    for name, r in named:
        lines.append(f"| {name} | {r['gflop']:.1f} | {r['ms'][2]:.0f} | {r['gflops'][2]:.0f} | "
                     f"{r['percent_of_ceiling'][2]:.0f} | {r['ms'][1]:.0f} | {r['percent_of_ceiling'][1]:.0f} | "
                     f"{r['speedup_1_to_2']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    a, methods, folder, out, extractor = checked("cpu_headroom", lambda: check(argv))
    wall, preset = time.perf_counter(), get_preset("small")
    ceiling = ceilings(a.calls)
    print(f"cpu_headroom: float32 ceiling {ceiling['float32'][2]:.0f} GFLOP/s on 2 threads, "
          f"{ceiling['float32'][1]:.0f} on 1", flush=True)
    kernel_rows = kernels(extractor, a.calls, ceiling)
    sources, prep = setup(preset, extractor, folder)
    train_rows = []
    for method in methods:
        train_rows += training(method, preset, extractor, sources, a.calls, ceiling)
        print(f"cpu_headroom: {method} done ({time.perf_counter() - wall:.0f} s)", flush=True)
    text = table(kernel_rows, train_rows)
    floor = projection(kernel_rows, train_rows, ceiling)
    print(text)
    print(f"cpu_headroom: the counted work of one seed ({floor['train_tflop']:.0f} TFLOP training {len(methods)} of "
          f"{len(ALL_METHODS.split(','))} methods, "
          f"{floor['eval_tflop']:.0f} TFLOP evaluation) takes at least {floor['floor_seconds'] / 60:.1f} min at the "
          f"two-thread float32 ceiling, {floor['floor_seconds_at_fastest'] / 60:.1f} min at the fastest rate measured "
          f"({floor['fastest_tflops'] * 1e3:.0f} GFLOP/s)")
    return write_cpu_result(out, {"bench": "cpu_headroom", "preset": preset.name, "calls": a.calls,
                                  "ceiling_gflops": ceiling, "kernels": kernel_rows, "training": train_rows,
                                  "projection": floor, "setup": prep, "table": text,
                                  "wall_seconds": time.perf_counter() - wall}, "cpu_headroom.py", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
