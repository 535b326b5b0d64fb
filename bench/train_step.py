"""Cost of one training step of a preset's JSCGC system (encoder + channel + receiver, Eq. 10).

Random weights made on the device and random latents (cost does not depend on them): frozen backbone by
default, trainable adapter, null caption and encoder, gradient checkpointing as the preset says, bf16
autocast on a GPU. ``--frozen-dtype bf16`` also stores the frozen backbone in bf16 (it has no optimiser
state, so no fp32 master copy is needed); the default keeps what ``kodak.py`` builds (fp32 weights under
autocast). Times the package's own loop (:func:`jscgc.train.train`); prints images/s and peak memory;
writes JSON (bench/performance.py turns it into rows of docs/performance.md).

    python bench/train_step.py                               # tiny preset on the CPU
    python bench/train_step.py --preset full --batch 8       # the 6B receiver on one GPU
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from bench.environment import checked, environment, json_out, peak_memory_gib, reset_peak_memory, sync
from jscgc import checks
from jscgc.channels import AWGN
from jscgc.checks import UsageError
from jscgc.io import atomic_write_json
from jscgc.methods import LatentSpec, count_parameters, mamba_encoder, zimage_receiver
from jscgc.presets import PRESETS, get_preset
from jscgc.system import JSCGC
from jscgc.train import TrainConfig, train

FROZEN_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args(argv) -> argparse.Namespace:
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=None, help="default: the preset's crop")
    p.add_argument("--backbone-mode", default="frozen", choices=["frozen", "full", "lora"])
    p.add_argument("--frozen-dtype", default="fp32", choices=sorted(FROZEN_DTYPES),
                   help="storage of a frozen backbone (bf16 only with --backbone-mode frozen)")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--out", default=None, help="JSON file (default results/bench_train_step_<preset>.json)")
    return p.parse_args(argv)


def check(argv) -> tuple[argparse.Namespace, object, int, Path]:
    """Every input checked before anything is built: one line naming the bad one (exit 2)."""
    a = parse_args(argv)
    preset = get_preset(a.preset, zimage=None, backbone_mode=a.backbone_mode)
    crop = preset.crop if a.crop is None else a.crop
    if crop % preset.token_px or crop <= 0:
        raise UsageError(f"--crop must be a positive multiple of {preset.token_px}, got {crop}")
    if a.batch < 1 or a.steps < 1:
        raise UsageError(f"--batch and --steps must be >= 1, got {a.batch} and {a.steps}")
    if a.frozen_dtype != "fp32" and a.backbone_mode != "frozen":
        raise UsageError(f"--frozen-dtype {a.frozen_dtype} needs --backbone-mode frozen "
                         f"(a trained backbone keeps fp32 weights)")
    return a, preset, crop, json_out("--out", a.out or f"results/bench_train_step_{preset.name}.json")


def build(preset, crop: int, frozen_dtype: torch.dtype, device: torch.device) -> JSCGC:
    """The preset's JSCGC system on latents of ``crop``² images, random weights made on ``device``."""
    lat = LatentSpec(preset.latent_channels)
    torch.manual_seed(0)
    with torch.device(device):
        enc = mamba_encoder(preset, lat)
        velocity = zimage_receiver(preset, lat, enc.config.symbols_per_token)
        system = JSCGC(enc, AWGN(), velocity, (lat.channels, crop // 8, crop // 8), preset.time_schedule)
    velocity.backbone.to(frozen_dtype)
    return system


def main(argv: list[str] | None = None) -> dict:
    a, preset, crop, out = checked("train_step", lambda: check(argv))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    system = build(preset, crop, FROZEN_DTYPES[a.frozen_dtype], device)
    x0 = torch.randn(a.batch, preset.latent_channels, crop // 8, crop // 8)

    def data(n, generator):             # fixed random latents: the cost does not depend on them
        return x0[:n]

    def run(steps: int) -> float:       # the package's own loop (one stage of Eq. 10), timed whole
        cfg = TrainConfig(steps=steps, batch_size=a.batch, lr=1e-4, snr_db=5.0, progress=False,
                          cpu=device.type != "cuda", mixed_precision="bf16" if device.type == "cuda" else "no")
        sync(device)
        start = time.perf_counter()
        train(system, data, cfg)
        sync(device)
        return time.perf_counter() - start

    run(1)                              # warm-up (allocations, kernels)
    reset_peak_memory(device)
    # the difference of two runs removes the loop's fixed set-up cost (accelerator, optimiser)
    seconds = (run(a.steps + 1) - run(1)) / a.steps
    res = {"bench": "train_step", "preset": preset.name, "batch": a.batch, "crop": crop,
           "backbone_mode": a.backbone_mode, "frozen_dtype": a.frozen_dtype,
           "gradient_checkpointing": preset.gradient_checkpointing,
           "mixed_precision": "bf16" if device.type == "cuda" else "no", "seconds_per_step": seconds,
           "images_per_second": a.batch / seconds, "trainable_parameters": count_parameters(system, True),
           "parameters": count_parameters(system), "peak_memory_gib": peak_memory_gib(device),
           **environment(device, "train_step.py", argv)}
    print(f"{preset.name}: batch {a.batch} of {crop}² crops, {seconds * 1e3:.0f} ms/step, "
          f"{res['images_per_second']:.1f} images/s"
          + (f", peak {res['peak_memory_gib']:.1f} GiB" if res["peak_memory_gib"] else ""))
    atomic_write_json(out, res)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
