"""Cost of one training step of a preset's JSCGC system (encoder + channel + receiver, Eq. 10).

Random weights and random latents (cost does not depend on them): frozen backbone by default,
trainable adapter, null caption and encoder, gradient checkpointing as the preset says, bf16 on a
GPU. Prints images/s and peak memory; writes JSON.

    python bench/train_step.py                               # tiny preset on the CPU
    python bench/train_step.py --preset full --batch 8       # the 6B receiver on one GPU
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jscgc.channels import AWGN  # noqa: E402
from jscgc.io import atomic_write_json  # noqa: E402
from jscgc.methods import LatentSpec, count_parameters, mamba_encoder, zimage_receiver  # noqa: E402
from jscgc.presets import PRESETS, get_preset  # noqa: E402
from jscgc.system import JSCGC  # noqa: E402
from jscgc.train import TrainConfig, train  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=None, help="default: the preset's crop")
    p.add_argument("--backbone-mode", default="frozen", choices=["frozen", "full", "lora"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    preset = get_preset(a.preset, zimage=None, backbone_mode=a.backbone_mode)
    crop = a.crop or preset.crop
    lat = LatentSpec(preset.latent_channels)
    torch.manual_seed(0)
    enc = mamba_encoder(preset, lat)
    system = JSCGC(enc, AWGN(), zimage_receiver(preset, lat, enc.config.symbols_per_token),
                   (lat.channels, crop // 8, crop // 8), preset.time_schedule)
    x0 = torch.randn(a.batch, lat.channels, crop // 8, crop // 8)

    def data(n, generator):             # fixed random latents: the cost does not depend on them
        return x0[:n]

    def run(steps: int) -> float:       # the package's own loop (one stage of Eq. 10), timed whole
        cfg = TrainConfig(steps=steps, batch_size=a.batch, lr=1e-4, snr_db=5.0, progress=False,
                          cpu=device.type != "cuda", mixed_precision="bf16" if device.type == "cuda" else "no")
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train(system, data, cfg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(1)                              # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # the difference of two runs removes the loop's fixed set-up cost (accelerator, optimiser)
    seconds = (run(a.steps + 1) - run(1)) / a.steps
    res = {"preset": preset.name, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "batch": a.batch, "crop": crop, "backbone_mode": a.backbone_mode, "seconds_per_step": seconds,
           "images_per_second": a.batch / seconds, "trainable_parameters": count_parameters(system, True),
           "command": "python bench/train_step.py " + " ".join(argv or []),
           "peak_memory_gb": torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None,
           "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__}
    print(f"{preset.name}: batch {a.batch} of {crop}² crops, {seconds * 1e3:.0f} ms/step, "
          f"{res['images_per_second']:.1f} images/s"
          + (f", peak {res['peak_memory_gb']:.1f} GiB" if res["peak_memory_gb"] else ""))
    atomic_write_json(Path(a.out or f"results/bench_train_step_{preset.name}.json"), res)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
