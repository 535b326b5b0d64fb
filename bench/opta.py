"""The physical limit: the MSE reference against OPTA on an i.i.d. Gaussian source over AWGN.

With one real channel use per source sample (rho = 1), OPTA is D = sigma^2 / (1 + SNR), and
uncoded (linear) transmission attains it (Goblick 1965; Gastpar, Rimoldi & Vetterli 2003). So a
correct channel, power constraint and training loop must bring the learned MSE reference within
a fraction of a dB of it. The encoder and decoder are the toy MLPs with depth 0 (linear maps)
and the information-theoretic average-power constraint (``power="batch"``).

    python bench/opta.py [--snr 0 5 10 20] [--dim 32] [--steps 1500]
"""
from __future__ import annotations

import argparse
import math
import sys

import torch

from bench.environment import checked
from jscgc import AWGN, MSEReconstruction, checks
from jscgc.checks import UsageError
from jscgc.data import gaussian
from jscgc.decoders import MLPDecoder
from jscgc.encoders import MLPEncoder
from jscgc.train import TrainConfig, train


def distortion(snr_db: float, dim: int, steps: int, seed: int = 0, eval_n: int = 200_000) -> float:
    """Train the linear MSE reference at one SNR and return its per-sample MSE on fresh data."""
    torch.manual_seed(seed)
    n = dim // 2  # dim real channel uses = dim/2 complex symbols
    system = MSEReconstruction(MLPEncoder(dim, n, depth=0, power="batch"), AWGN(),
                               MLPDecoder(dim, n, depth=0))
    cfg = TrainConfig(steps=steps, batch_size=1024, lr=1e-2, lr_schedule="cosine", snr_db=snr_db,
                      seed=seed, progress=False)
    train(system, gaussian(dim), cfg)
    g = torch.Generator().manual_seed(seed + 1)
    x = gaussian(dim)(eval_n, g)
    with torch.no_grad():
        return (system(x, snr_db, g) - x).pow(2).mean().item()


def check(argv) -> argparse.Namespace:
    """Every input checked before any training: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0, 20.0], help="SNRs in dB")
    p.add_argument("--dim", type=int, default=32, help="source dimension (even)")
    p.add_argument("--steps", type=int, default=1500, help="training steps per SNR")
    args = p.parse_args(argv)
    checks.finite_all("--snr", args.snr, what="SNRs in dB")
    if args.dim < 2 or args.dim % 2:
        raise UsageError(f"--dim {args.dim}: expected an even integer >= 2")
    checks.positive_int("--steps", args.steps)
    return args


def main(argv: list[str] | None = None) -> int:
    args = checked("opta", lambda: check(argv))
    print(f"{'SNR dB':>7} {'D learned':>10} {'D OPTA':>10} {'gap dB':>7}")
    worst = 0.0
    for snr in args.snr:
        d = distortion(snr, args.dim, args.steps)
        opta = 1.0 / (1.0 + 10 ** (snr / 10))
        gap = 10 * math.log10(d / opta)
        worst = max(worst, gap)
        print(f"{snr:7.1f} {d:10.5f} {opta:10.5f} {gap:7.3f}")
    print(f"worst gap {worst:.3f} dB (sigma^2 = 1, rho = 1 real use per sample, dim {args.dim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
