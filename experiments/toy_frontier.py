"""The distortion–perception trade on the toy sources, against the exact frontier
(docs/theory.md, 'The distortion–perception frontier').

For each source (S¹ ⊂ R², S² ⊂ R³, S⁴ ⊂ R⁶, 16 Fibonacci points on S²) this trains the toy JSCGC
(encoder → AWGN → flow generator, Eq. 10) and, as single points, the MSE decoder ``cjscc`` and the
two-stage ``diffjscc`` (each with its own encoder), once over the SNR range of the sweep. Then at each
SNR, on ``--n`` test draws:
  * for the JSCGC encoder, the exact frontier D(P) = D* + max(0, W2(p_X, p_X*) − P)² (docs/theory.md,
    'The distortion–perception frontier'): X* = E[X | ŷ] and D* = E tr Cov(X | ŷ) from the exact codebook
    posterior, or SNIS on the spheres (theory.tasks.posterior); the optimum at P = 0, T(X*), where the
    assignment gives T; the exact posterior sampler averaged over N draws for each N of ``--samples``;
  * JSCGC's receiver across the dial (jscgc.types.Dial): every Euler ``--steps`` × every N of ``--samples``,
    with its per-ŷ diversity;
  * every point's D = E‖X − X̂‖² and P = W2(p_X, p_X̂), exact for the empirical laws (assignment; the
    codebook's law exactly), and the sampling floor: P of a fresh draw of the source itself.

    python experiments/toy_frontier.py [--out results/toy_frontier] [--snr -5 5 15] [--n 512]

Writes ``frontier.csv`` (one row per point or frontier node, with its configuration), ``config.json``,
``timings.json`` and the figure ``toy_frontier.png``/``.pdf``; two runs with the same arguments write
identical CSV and config. Every input is checked first (``toy_frontier: …``, exit 2, nothing written).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jscgc.data import manifold_source
from jscgc.dial import diversity
from jscgc.types import Dial
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.io import atomic_save, atomic_write_json, is_complete, run_in
from jscgc.methods import METHODS, ToySpec, build_toy
from jscgc.train import TrainConfig, train
from theory.frontier import frontier, w2_assignment, w2_to_atoms
from theory.tasks import ToySource, awgn_sigma, default_sources, posterior

POINT_METHODS = ("cjscc", "diffjscc")
COLUMNS = ["manifold", "snr_db", "receiver", "kind", "steps", "samples", "D", "P", "diversity", "P_floor",
           "mmse", "w2_star", "method_encoder"]


@dataclasses.dataclass(frozen=True)
class Config:
    """One frontier run, as the command line asked for it (see ``python experiments/toy_frontier.py --help``);
    plain fields, so that the worker processes receive it pickled."""
    snrs: tuple                      # distinct finite SNRs (dB), sorted
    n: int                           # test draws per (source, SNR), a multiple of 16
    steps: tuple                     # Euler steps of the dial, distinct, >= 1
    samples: tuple                   # N of the dial, distinct, >= 1
    train_steps: int
    batch_size: int
    lr: float
    hidden: int
    seed: int
    workers: int
    out: Path                        # where the results go (not a setting: config.json leaves it out)
    figures: bool                    # draw toy_frontier.png/.pdf (not recorded either)

    def recorded(self) -> dict:
        """The settings as config.json records them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("out", "figures")}


def _law_distance(src: ToySource, reference: np.ndarray, out: np.ndarray) -> float:
    """P = W2(p_X, law of ``out``): exact to the codebook's uniform law, else to the empirical law of
    ``reference`` (a draw of the source of the same size)."""
    if src.points is not None:
        return w2_to_atoms(src.points, np.full(len(src.points), 1 / len(src.points)), out)[0]
    return w2_assignment(reference, out)[0]


def _exact_rows(src, system, x, received, snr, reference, seed, cfg) -> tuple[list[dict], dict]:
    """The frontier nodes and the exact receivers of the JSCGC encoder at one SNR."""
    from experiments.toy_manifold import code_map

    rng = np.random.default_rng(seed)
    y = received.symbols.flatten(1).double().numpy()
    post = posterior(src, y, awgn_sigma(snr), code_map(system, x), max(cfg.samples), rng)
    xn = x.double().numpy()
    mmse = float(post.var.mean())
    if src.points is not None:
        w2_star, transported = w2_to_atoms(src.points, np.full(len(src.points), 1 / len(src.points)), post.mean)
    else:
        w2_star = w2_assignment(reference, post.mean)[0]
        target = src.sample(len(xn), seed + 4).astype(float)    # T maps onto another draw, so P is not 0 by design
        perm = w2_assignment(target, post.mean)[1]
        transported = np.empty_like(target)
        transported[perm] = target                          # T(X*_j) = the source point matched to it
    common = {"mmse": mmse, "w2_star": w2_star}
    rows = [{"receiver": "frontier D(P)", "kind": "frontier", "P": p, "D": frontier(mmse, w2_star, p)}
            for p in np.linspace(0, 1.25 * w2_star, 26)]
    rows.append({"receiver": "MMSE estimate X*", "kind": "exact", "samples": math.inf,
                 "D": float(np.mean(np.sum((xn - post.mean) ** 2, 1))), "P": w2_star})
    rows.append({"receiver": "transport T(X*)", "kind": "exact", "D": float(np.mean(np.sum((xn - transported) ** 2, 1))),
                 "P": _law_distance(src, reference, transported)})
    for n in cfg.samples:
        avg = post.samples[:, :n].mean(1)
        rows.append({"receiver": "exact posterior sampler", "kind": "exact", "samples": n,
                     "D": float(np.mean(np.sum((xn - avg) ** 2, 1))), "P": _law_distance(src, reference, avg)})
    return [{**common, **r} for r in rows], common


def _dial_rows(src, system, x, received, reference, seed, cfg) -> list[dict]:
    """JSCGC's receiver at every (Euler steps, N) of the dial."""
    rows, xn = [], x.double().numpy()
    for steps in cfg.steps:
        for n in cfg.samples:
            g = torch.Generator().manual_seed(seed + 100 * steps + n)
            with torch.no_grad():
                r = system.receive(received, Dial(steps=steps, samples=n), g, tuple(x.shape))
                spread = diversity(r)
            out = r.output.double().numpy()
            rows.append({"receiver": "JSCGC", "kind": "dial", "steps": steps, "samples": n,
                         "D": float(np.mean(np.sum((xn - out) ** 2, 1))), "P": _law_distance(src, reference, out),
                         "diversity": None if spread is None else float(spread.mean())})
    return rows


def _train(src_index: int, method: str, cfg: Config):
    src = default_sources()[src_index]
    seed = cfg.seed * 1000 + src_index * 10 + list(METHODS).index(method)
    torch.manual_seed(seed)
    system = build_toy(method, ToySpec(src.m, src.n_symbols, hidden=cfg.hidden))
    tc = TrainConfig(steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr, lr_schedule="cosine",
                     warmup=min(50, cfg.train_steps // 10), snr_db=[min(cfg.snrs), max(cfg.snrs)], seed=seed,
                     progress=False)
    train(system, manifold_source(src), tc)
    return src, system.eval(), seed


def run_job(job) -> tuple[list[dict], dict]:
    """Train one (source, method) and measure its points at every SNR (in a worker)."""
    from threadpoolctl import threadpool_limits

    src_index, method, cfg = job
    torch.set_num_threads(1)
    threadpool_limits(1)
    start = time.perf_counter()
    src, system, seed = _train(src_index, method, cfg)
    rows = []
    for snr in cfg.snrs:
        g = torch.Generator().manual_seed(seed + 7)
        x = torch.as_tensor(src.sample(cfg.n, seed + 1), dtype=torch.float32)
        reference = src.sample(cfg.n, seed + 2).astype(float)          # an independent draw of the source
        with torch.no_grad():
            received = system.transmit(x, snr, g)
        floor = _law_distance(src, src.sample(cfg.n, seed + 3).astype(float), reference)
        if method == "jscgc":
            part, common = _exact_rows(src, system, x, received, snr, reference, seed + 11, cfg)
            part += [{**common, **r} for r in _dial_rows(src, system, x, received, reference, seed, cfg)]
        else:
            with torch.no_grad():
                out = system.receive(received, Dial(steps=max(cfg.steps)), g, tuple(x.shape)).output.double().numpy()
            part = [{"receiver": METHODS[method].label, "kind": "point", "steps": max(cfg.steps), "samples": 1,
                     "D": float(np.mean(np.sum((x.double().numpy() - out) ** 2, 1))),
                     "P": _law_distance(src, reference, out)}]
        rows += [{"manifold": src.name, "snr_db": snr, "P_floor": floor, "method_encoder": method, **r} for r in part]
    return rows, {"source": src.name, "method": method, "seconds": time.perf_counter() - start}


def _parser() -> argparse.ArgumentParser:
    p = checks.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/toy_frontier")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 5.0, 15.0], help="SNRs (dB)")
    p.add_argument("--n", type=int, default=512, help="test draws per (source, SNR); a multiple of 16")
    p.add_argument("--steps", default="1,2,4,16", help="Euler steps of the dial (comma list)")
    p.add_argument("--samples", default="1,2,4,16", help="N samples averaged (comma list)")
    p.add_argument("--train-steps", type=int, default=700)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-figures", action="store_true")
    return p


def _int_list(text: str, name: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise UsageError(f"--{name} {text!r}: expected distinct integers >= 1, comma-separated")
    return values


def configure(argv) -> Config:
    """argv -> the checked :class:`Config`: every input, in the main process before any worker starts (raises
    UsageError); nothing is written."""
    args = _parser().parse_args(argv)
    snrs = checks.finite_all("--snr", args.snr, distinct=True, what="SNRs in dB")
    if args.n < 16 or args.n % 16:
        raise UsageError(f"--n {args.n}: expected a multiple of 16 (the codebook's law is matched exactly)")
    for name in ("train_steps", "batch_size", "hidden", "workers"):
        checks.positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
    checks.positive_finite("--lr", args.lr)
    checks.nonnegative_int("--seed", args.seed)
    out = Path(args.out)
    if is_complete(out) and not args.overwrite:
        raise UsageError(f"{out} holds a finished run ({out / 'complete.json'} exists); pass --overwrite or another --out")
    checks.writable_folder("--out", out)
    return Config(snrs=tuple(sorted(snrs)), n=args.n, steps=_int_list(args.steps, "steps"),
                  samples=_int_list(args.samples, "samples"), train_steps=args.train_steps,
                  batch_size=args.batch_size, lr=args.lr, hidden=args.hidden, seed=args.seed, workers=args.workers,
                  out=out, figures=not args.no_figures)


def run(cfg: Config) -> tuple[list[dict], list[dict]]:
    jobs = [(i, m, cfg) for m in ("jscgc",) + POINT_METHODS for i in range(len(default_sources()))]
    parts = []
    with cf.ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=mp.get_context("fork")) as pool:
        for k, fut in enumerate(cf.as_completed([pool.submit(run_job, j) for j in jobs])):
            parts.append(fut.result())
            print(f"  {k + 1}/{len(jobs)}: {parts[-1][1]['method']} on {parts[-1][1]['source']} "
                  f"({parts[-1][1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return [r for rows, _ in parts for r in rows], [t for _, t in parts]


def main(argv: list[str] | None = None) -> int:
    """Check every input (``toy_frontier: …``, exit 2, nothing written), then train, measure and write."""
    return checks.run_main("toy_frontier", lambda: configure(argv),
                           lambda cfg: run_in("toy_frontier", cfg.out, lambda: _work(cfg, argv)))


def _work(cfg: Config, argv) -> int:
    """Train and measure every (source, method), then write frontier.csv, config.json, timings.json and the
    figure into ``cfg.out`` (``argv``: the command line config.json records)."""
    import pandas as pd

    start = time.perf_counter()
    rows, timings = run(cfg)
    order = {s.name: i for i, s in enumerate(default_sources())}
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df = df.sort_values(["manifold", "snr_db", "kind", "receiver", "steps", "samples", "P"], kind="stable",
                        key=lambda c: c.map(order) if c.name == "manifold" else c).reset_index(drop=True)
    out = cfg.out
    atomic_save(out / "frontier.csv", lambda f: df.to_csv(f, index=False))
    atomic_write_json(out / "config.json", {**cfg.recorded(), "torch": torch.__version__,
                                            "command": "python experiments/toy_frontier.py " + " ".join(argv or sys.argv[1:])})
    atomic_write_json(out / "timings.json", {"wall_seconds": time.perf_counter() - start, "jobs": timings})
    if cfg.figures:
        from paper_figures.toy_frontier import draw

        draw(out)
    print(f"toy_frontier: wrote {out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
