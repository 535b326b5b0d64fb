"""Helper of test_distributed.py (not a test): train the tiny preset for a few steps and save.

    accelerate launch --cpu --num_processes 2 tests/_dist_train.py --out DIR --accumulation 1
    python tests/_dist_train.py --out DIR --accumulation 2           # the single-process reference

Both cut the same global batch into two micro-batches; see jscgc/train.py on why they must agree.
"""
import argparse
from pathlib import Path

import torch
from accelerate import Accelerator

ROOT = Path(__file__).resolve().parents[1]

from jscgc.latents import TAEF2
from jscgc.methods import build_method
from jscgc.presets import get_preset
from jscgc.train import TrainConfig, train


def fields(n, g):
    """Smooth random colour fields (B, 3, 64, 64): no shared data needed."""
    c = torch.rand(n, 3, 1, 1, generator=g)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64)
    return (0.7 * c + 0.3 * ramp * torch.rand(n, 3, 1, 1, generator=g)).expand(n, 3, 64, 64).contiguous()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--accumulation", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--method", default="jscgc")
    args = p.parse_args()
    torch.manual_seed(0)
    system = build_method(args.method, get_preset("tiny"), TAEF2())
    cfg = TrainConfig(steps=args.steps, batch_size=4, accumulation=args.accumulation, lr=1e-3,
                      snr_db=[0.0, 10.0], cpu=True, progress=False, seed=3)
    acc = Accelerator(cpu=True)
    train(system, fields, cfg, out_dir=args.out, accelerator=acc)
    acc.wait_for_everyone()
    if acc.is_main_process:
        print(f"trained on {acc.num_processes} process(es), backend {acc.state.backend}")


if __name__ == "__main__":
    main()
