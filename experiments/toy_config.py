"""The configuration of ``experiments/toy_manifold.py``: its flags, the checks every input passes before
anything is trained or written (one line ``toy_manifold: …``, exit 2), and the :class:`Config` built once from
argv (:func:`configure`) that the runner and its jobs get."""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
from pathlib import Path

from jscgc.channel_registry import CHANNELS, check_channel, check_pairing
from jscgc.checks import UsageError
from jscgc.io import is_complete, unwritable_reason
from jscgc.methods import METHODS

__all__ = ["Config", "DEFAULT_METHODS", "configure"]

DEFAULT_METHODS = "jscgc,cjscc"


@dataclasses.dataclass(frozen=True)
class Config:
    """One toy run, as the command line asked for it (``--quick`` applied); plain fields, so that the worker
    processes receive it pickled."""
    snrs: list[float]
    methods: list[str]
    train_steps: int
    batch_size: int
    lr: float
    hidden: int
    euler_steps: int
    eval_n: int
    mi_batch: int
    mi_batches: int
    per_snr: bool
    seed: int
    workers: int
    ref_n: int = 256        # ŷ per (sphere, SNR) for the SNIS references (the codebook uses all)
    sw_n: int = 8           # ŷ per (source, SNR) for the sliced-W₂ distance
    sw_samples: int = 64    # receiver and exact posterior samples per such ŷ
    channel: str = "awgn"   # a name of jscgc.channel_registry (NAME or NAME:VALUE)
    out: Path | None = None  # where the results go (not a setting: config.json leaves it out)
    figures: bool = True    # draw the figures after the run (not recorded either)

    def recorded(self) -> dict:
        """The settings as config.json records them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("out", "figures")}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are UsageErrors (one line, exit 2, no usage block)."""

    def error(self, message):
        raise UsageError(message)


def _parser(description: str) -> argparse.ArgumentParser:
    p = _Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/toy_manifold", help="output folder (default %(default)s)")
    p.add_argument("--snr", type=float, nargs="*", default=[-5, 0, 5, 10, 15, 20], help="SNRs in dB")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma list from {','.join(METHODS)} (default %(default)s)")
    p.add_argument("--channel", default="awgn",
                   help=f"the channel, one of {', '.join(CHANNELS)} (NAME or NAME:VALUE, see "
                  "jscgc.channel_registry; default %(default)s)")
    p.add_argument("--train-steps", type=int, default=700, help="optimiser steps per model")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128, help="width of the generator/decoder MLP")
    p.add_argument("--euler-steps", type=int, default=16, help="Euler steps of the sampler")
    p.add_argument("--eval-n", type=int, default=4000, help="test samples per (source, SNR)")
    p.add_argument("--mi-batch", type=int, default=4096, help="reference batch of the MI sandwich")
    p.add_argument("--mi-batches", type=int, default=2, help="batches of the MI sandwich")
    p.add_argument("--ref-n", type=int, default=256, help="ŷ per (sphere, SNR) for the SNIS references")
    p.add_argument("--sw-n", type=int, default=8, help="ŷ per (source, SNR) for the sliced-W₂ distance")
    p.add_argument("--sw-samples", type=int, default=64, help="samples per ŷ for the sliced-W₂ distance")
    p.add_argument("--per-snr", action="store_true", help="train one model per SNR (slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="parallel training processes")
    p.add_argument("--quick", action="store_true", help="reduced run for tests (3 SNRs, short training)")
    p.add_argument("--overwrite", action="store_true", help="replace existing results in --out")
    p.add_argument("--no-figures", action="store_true", help="skip drawing the figures")
    return p


def _check_numbers(args) -> list[str]:
    """The methods, SNRs and counts are usable; returns the methods."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = sorted({m for m in methods if m not in METHODS})
    if bad or not methods or len(set(methods)) != len(methods):
        raise UsageError(f"--methods {args.methods!r}: expected distinct names from {','.join(METHODS)}"
                   + (f" (unknown: {','.join(bad)})" if bad else ""))
    if not args.snr or not all(math.isfinite(s) for s in args.snr) or len(set(args.snr)) != len(args.snr):
        raise UsageError(f"--snr {' '.join(map(str, args.snr)) or '(none)'}: expected distinct finite SNRs in dB")
    least = {"--train-steps": (args.train_steps, 1), "--batch-size": (args.batch_size, 1),
             "--hidden": (args.hidden, 1), "--euler-steps": (args.euler_steps, 1), "--eval-n": (args.eval_n, 1),
             "--mi-batch": (args.mi_batch, 2), "--mi-batches": (args.mi_batches, 1), "--ref-n": (args.ref_n, 1),
             "--sw-n": (args.sw_n, 1), "--sw-samples": (args.sw_samples, 2), "--workers": (args.workers, 1)}
    for name, (value, low) in least.items():
        if value < low:
            raise UsageError(f"{name} {value}: expected an integer >= {low}")
    if not (math.isfinite(args.lr) and args.lr > 0) or args.seed < 0:
        raise UsageError(f"--lr {args.lr} / --seed {args.seed}: expected a positive finite rate and a seed >= 0")
    return methods


def _check_channel(channel: str, methods: list[str]) -> None:
    """``channel`` is registered and every method can be sent over it (a symbol method refuses a bits channel)."""
    try:
        check_channel(channel)
        for m in methods:
            check_pairing(m, METHODS[m].binary, channel)
    except ValueError as err:
        raise UsageError(f"--channel {channel}: {err}") from None


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` is (or can be made) a folder we can write in, holding no results unless ``overwrite``.
    Writability is tried (a temporary folder in the nearest existing ancestor, then removed), since
    permission bits say nothing when running as root."""
    if is_complete(out) and not overwrite:
        raise UsageError(f"{out} holds a finished run ({out / 'complete.json'} exists); pass --overwrite or another --out")
    why = unwritable_reason(out)
    if why:
        raise UsageError(f"--out {out}: {why}")


def configure(argv, description: str = "") -> Config:
    """argv -> the checked :class:`Config`: every input (raises UsageError); nothing is written here.
    ``description``: the ``--help`` text."""
    args = _parser(description).parse_args(argv)
    if args.quick:
        args.snr, args.train_steps, args.eval_n, args.mi_batch = [-5.0, 5.0, 20.0], 400, 1500, 1024
    methods = _check_numbers(args)
    _check_channel(args.channel, methods)
    _check_out(Path(args.out), args.overwrite)
    return Config(snrs=[float(s) for s in args.snr], methods=methods, train_steps=args.train_steps,
                  batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                  euler_steps=args.euler_steps, eval_n=args.eval_n, mi_batch=args.mi_batch,
                  mi_batches=args.mi_batches, ref_n=args.ref_n, sw_n=args.sw_n, sw_samples=args.sw_samples,
                  per_snr=args.per_snr, seed=args.seed, workers=args.workers, channel=args.channel,
                  out=Path(args.out), figures=not args.no_figures)
