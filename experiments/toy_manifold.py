"""Theorem 1 and the "semantic inconsistency, not distortion" claim on manifolds of known d.

For each source (S¹ ⊂ R², S² ⊂ R³, S⁴ ⊂ R⁶ and 16 Fibonacci points on S²) this trains, with the
package's one training loop, each method of the shared registry (:mod:`jscgc.methods`, ``--methods``;
by default the toy JSCGC — encoder → channel → flow generator, Eq. 10 — and the CJSCC MSE reference
with the same encoder; also ``mambajscc``, ``diffjscc`` and ``necst``) over the channel ``--channel``
(:mod:`jscgc.channel_registry`, AWGN by default; results.csv and config.json record it), then at every SNR:
  * estimates I(X; Ŷ) — exact Monte Carlo for the codebook, the InfoNCE/leave-one-out sandwich
    for continuous sources (the channel law is known), the exact BSC/BEC formula for NECST's bits —
    and the channel's capacity bound (:mod:`experiments.toy_channel`, which says what each channel gets);
  * samples x̂ with the Euler sampler (Eq. 14) and measures P_e(δ), the empirical δ at
    P_e = p with a distribution-free 95% CI, the distance of x̂ to the data support and the MSE;
  * computes the paper's δ* (C = Vol/ω_d), the rigorous finite-p δ*_p (C the valid lower envelope
    of 1/P_max with ball centres anywhere, written as ``C_rigorous``) and the continuum-Fano δ*;
    ``bound_holds`` says the rigorous bounds are not violated at the CI ends most favourable to the data;
  * measures the receiver against the Bayes-optimal receivers of the trained encoder (exact over the
    codebook, SNIS on the spheres; docs/theory.md, 'The Bayes-optimal references'; AWGN only): MMSE, the
    exact posterior sampler's MSE (2 · MMSE) and δ_emp, MAP's δ_emp, and the sliced-W₂ distance between
    the receiver's samples and exact posterior samples for the same ŷ.
It adds docs/theory.md, 'The negative control' (16 points, biorthogonal code, 8 real uses,
15 dB AWGN, exact MAP decoder): the paper's δ* is violated, the rigorous bound is not. The bookkeeping
lives in :mod:`theory.check`, the sources and posteriors in :mod:`theory.tasks` and
:mod:`theory.bayes`; this runner trains, samples and pulls arrays out of the systems.

Every input is checked before anything is trained or written (one line ``toy_manifold: …``, exit 2;
:mod:`experiments.toy_config`). Two runs with the same arguments write byte-identical ``results.csv``,
``pe_curves.csv``, ``samples.csv`` and ``config.json``; times go to ``timings.json``.

By default each model is trained once over SNR ∈ [min, max] of the sweep (the receiver is told
the SNR), which fits the 2-core time budget; ``--per-snr`` trains one model per SNR instead.

    python experiments/toy_manifold.py [--quick] [--methods jscgc,cjscc,mambajscc,diffjscc,necst]
                                       [--channel awgn] [--out results/toy_manifold] [--help]
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()  # the printed wall time includes the imports below

import concurrent.futures as cf  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from experiments.toy_channel import awgn_law, capacity, estimate_mi  # noqa: E402
from experiments.toy_config import DEFAULT_METHODS, Config, configure  # noqa: E402, F401
from jscgc.channel_registry import channel_capacity  # noqa: E402
from jscgc.data import manifold_source  # noqa: E402
from jscgc.checks import UsageError  # noqa: E402  (one line ``toy_manifold: …``, exit 2)
from jscgc.io import atomic_save, atomic_write_json, run_in  # noqa: E402
from jscgc.methods import METHODS, ToySpec, build_toy  # noqa: E402
from jscgc.train import TrainConfig, train  # noqa: E402
from jscgc.types import Dial, Received  # noqa: E402
from theory.check import bound_rows, mi_of_codebook, reference_values  # noqa: E402
from theory.tasks import ToySource, awgn_sigma, default_sources, map_control, posterior  # noqa: E402

PS = (0.05, 0.1, 0.2)
ORDER = {"results": ["manifold", "decoder", "snr_db", "p"], "pe_curves": ["manifold", "decoder", "snr_db", "delta"],
         "samples": ["manifold", "decoder", "snr_db", "i"]}
"""The row order of each CSV (a fixed order, whatever order the workers finish in)."""


def build_system(method: str, src: ToySource, cfg: Config):
    """The toy system of a registered method (MLP parts; batch-average power, see
    docs/design.md, 'Symbols and power')."""
    return build_toy(method, ToySpec(src.m, src.n_symbols, hidden=cfg.hidden, channel=cfg.channel))


def code_map(system, x: torch.Tensor):
    """encode(points (K, m) array) -> codes (K, 2n) exactly as the batch ``x`` (B, m) was encoded.
    The toy encoders' power normalisation (per sample or over the batch) is a per-sample map times one
    scale per batch, so a new batch is encoded behind x[0] and rescaled to x[0]'s code norm."""
    with torch.no_grad():
        ref = system.encoder(x).flatten(1)[0].double().norm()

    def encode(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = system.encoder(torch.cat([x[:1], torch.as_tensor(points, dtype=torch.float32)]))
        z = z.flatten(1).double()
        return (z[1:] * (ref / z[0].norm())).numpy()
    return encode


def receiver_samples(system, received: Received, n: int, k: int, steps: int, m: int, seed: int) -> np.ndarray:
    """k receiver outputs for each of the first n ŷ of ``received``: (n, k, m)."""
    sub = Received(received.symbols[:n].repeat_interleave(k, 0), received.snr_db[:n].repeat_interleave(k, 0))
    with torch.no_grad():
        out = system.receive(sub, Dial(steps=steps), torch.Generator().manual_seed(seed), (n * k, m)).output
    return out.double().numpy().reshape(n, k, m)


def references(system, method: str, src: ToySource, snr: float, cfg: Config, x: torch.Tensor,
               received: Received, xh: np.ndarray, mse: float, seed: int) -> tuple[dict, list[dict]]:
    """The receiver against the Bayes-optimal receivers of its encoder (theory.check.reference_values)
    on the first ``ref_n`` ŷ of the evaluation batch (all of them for the codebook, whose posterior is
    exact and cheap). ``mse_gap`` is the receiver's MSE (``mse``, whole batch) over that of the optimum
    of its kind: the exact posterior sampler (2 · MMSE) for a sampling receiver, the MMSE for a
    deterministic one. Binary methods and channels other than AWGN in law get no references."""
    if METHODS[method].binary or not awgn_law(cfg.channel):
        return {}, [{} for _ in PS]
    n = len(x) if src.points is not None else min(cfg.ref_n, len(x))
    rng = np.random.default_rng(seed + 11)
    y = received.symbols[:n].flatten(1).double().numpy()
    post = posterior(src, y, awgn_sigma(snr), code_map(system, x), 1 + 2 * cfg.sw_samples, rng)
    gen = receiver_samples(system, received, min(cfg.sw_n, n), cfg.sw_samples, cfg.euler_steps, src.m, seed + 13)
    common, per_p = reference_values(x[:n].double().numpy(), xh[:n].astype(float), mse, post, gen,
                                     src.distance, PS, src.points is not None, rng)
    kind = "posterior_sampler" if METHODS[method].stochastic else "mmse"
    common.update(mse_gap_reference=kind,
                  mse_gap=common["mse_over_sampler_mse" if kind == "posterior_sampler" else "mse_over_mmse"])
    return common, per_p


def evaluate(system, method: str, src: ToySource, snr: float, cfg: Config, seed: int):
    """All rows of one (source, method, SNR), the P_e(δ) curve and a few samples."""
    g = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(src.sample(cfg.eval_n, seed), dtype=torch.float32)
    with torch.no_grad():
        received = system.transmit(xt, snr, g)
        xh = system.receive(received, Dial(steps=cfg.euler_steps), g, xt.shape).output.numpy()
    x = xt.numpy()
    err = np.linalg.norm(xh - x, axis=1)
    mi, mi_lo, mi_hi = estimate_mi(system, method, src, snr, cfg, seed)
    common = {"manifold": src.name, "d": src.d, "m": src.m, "n_symbols": src.n_symbols,
              "snr_db": snr, "decoder": method, "channel": cfg.channel, "mi_bits": mi, "mi_bits_low": mi_lo,
              "mi_bits_high": mi_hi, "capacity_bits": capacity(method, src, snr, cfg.channel),
              "C_paper": src.C, "diameter": src.diameter,
              "dist_to_manifold_median": float(np.median(src.distance(xh))),
              "mse": float(np.mean(np.sum((xh - x) ** 2, axis=1)))}
    ref, ref_p = references(system, method, src, snr, cfg, xt, received, xh, common["mse"], seed)
    rows = [{**common, **r, **ref, **rp} for r, rp in zip(bound_rows(err, mi, mi_hi, src, PS), ref_p)]
    grid = np.linspace(0, src.diameter, 41)
    curve = [{"manifold": src.name, "decoder": method, "snr_db": snr, "delta": float(dl),
              "pe": float((err > dl).mean())} for dl in grid]
    samples = [{"manifold": src.name, "decoder": method, "snr_db": snr, "i": i,
                **{f"x{j}": float(x[i, j]) for j in range(src.m)},
                **{f"xhat{j}": float(xh[i, j]) for j in range(src.m)}}
               for i in range(min(300, len(x)))] if src.m == 2 else []
    return rows, curve, samples


def run_job(job):
    """Train one (source, method[, SNR]) model and evaluate it at its SNRs (in a worker).
    Returns (rows, curves, samples, timing)."""
    src_index, method, train_snr, eval_snrs, cfg = job
    torch.set_num_threads(1)
    threadpool_limits(1)  # one BLAS thread per worker too (numpy's OpenBLAS would start one per core)
    src = default_sources()[src_index]
    seed = cfg.seed * 1000 + src_index * 10 + list(METHODS).index(method)
    torch.manual_seed(seed)
    system = build_system(method, src, cfg)
    tc = TrainConfig(steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr,
                     lr_schedule="cosine", warmup=min(50, cfg.train_steps // 10),
                     snr_db=train_snr, seed=seed, progress=False)
    t0 = time.perf_counter()
    losses = train(system, manifold_source(src), tc).losses
    t1 = time.perf_counter()
    system.eval()
    out = ([], [], [])
    for snr in eval_snrs:
        for acc, part in zip(out, evaluate(system, method, src, snr, cfg, seed + 7)):
            acc.extend(part)
    for r in out[0]:
        r["final_loss"] = float(np.mean(losses[-50:]))
    timing = {"source": src.name, "method": method, "train_snr_db": train_snr, "train_seconds": t1 - t0,
              "evaluate_seconds": time.perf_counter() - t1}
    return (*out, timing)


def negative_control(seed: int = 0, n: int = 200_000) -> list[dict]:
    """Rows of the negative control (:func:`theory.tasks.map_control`): 16 Fibonacci points on S²,
    biorthogonal code on 8 real uses, 15 dB, exact MAP decoder; over AWGN whatever ``--channel`` says."""
    ctrl = map_control(seed, n)
    src = ctrl.source
    mi = mi_of_codebook(ctrl.code, ctrl.sigma, seed, n=50000)
    common = {"manifold": "codebook16_S2_map_control", "d": src.d, "m": src.m,
              "n_symbols": src.n_symbols, "snr_db": ctrl.snr_db, "decoder": "map", "channel": "awgn",
              "mi_bits": mi.bits, "mi_bits_low": mi.low, "mi_bits_high": mi.high,
              "capacity_bits": src.n_symbols * channel_capacity("awgn", ctrl.snr_db), "C_paper": src.C,
              "diameter": src.diameter, "dist_to_manifold_median": float(np.median(src.distance(ctrl.x_hat))),
              "mse": float(np.mean(ctrl.err ** 2))}
    return [{**common, **r, "final_loss": float("nan")}
            for r in bound_rows(ctrl.err, mi.bits, mi.high, src, PS)]


def make_jobs(cfg: Config) -> list[tuple]:
    """One job per (source, method[, SNR]), longest first (flows, then by source dimension), so that
    the workers finish together (the longest-processing-time rule)."""
    snr_range = [min(cfg.snrs), max(cfg.snrs)] if len(cfg.snrs) > 1 else cfg.snrs[0]
    jobs = []
    for i, src in enumerate(default_sources()):
        for method in cfg.methods:
            cost = (2 if METHODS[method].stochastic else 1, src.m)
            if cfg.per_snr:
                jobs += [(cost, (i, method, s, [s], cfg)) for s in cfg.snrs]
            else:
                jobs.append((cost, (i, method, snr_range, cfg.snrs, cfg)))
    return [job for _, job in sorted(jobs, key=lambda j: j[0], reverse=True)]


def run_jobs(cfg: Config) -> tuple[list, list, list, list]:
    """Every job, on ``cfg.workers`` forked processes (or here); rows, curves, samples, timings."""
    jobs = make_jobs(cfg)
    parts = []
    if cfg.workers > 1:
        with cf.ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(run_job, j) for j in jobs]
            for f in cf.as_completed(futures):
                parts.append(f.result())
                print(f"  trained + evaluated {len(parts)}/{len(jobs)}", file=sys.stderr, flush=True)
    else:
        parts = [run_job(j) for j in jobs]
    return tuple([x for part in parts for x in part[k]] for k in range(3)) + ([p[3] for p in parts],)


def _frame(rows: list[dict], key: str):
    import pandas as pd

    df = pd.DataFrame(rows)
    return df.sort_values(ORDER[key], kind="stable").reset_index(drop=True) if len(df) else df


def write_results(out: Path, cfg: Config, rows, curves, samples):
    """results.csv, pe_curves.csv, samples.csv (fixed row orders) and config.json; returns the results."""
    df = _frame(rows, "results")
    for name, frame in (("results", df), ("pe_curves", _frame(curves, "pe_curves")),
                        ("samples", _frame(samples, "samples"))):
        atomic_save(out / f"{name}.csv", lambda f, fr=frame: fr.to_csv(f, index=False))
    atomic_write_json(out / "config.json", {**cfg.recorded(), "torch": torch.__version__,
                                            "ps": list(PS)})
    return df


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """Check every input, train and evaluate, write the results and figures; 2 on a bad input."""
    started = time.perf_counter() if started is None else started
    try:
        cfg = configure(argv, __doc__)
    except UsageError as err:
        print(f"toy_manifold: {err}", file=sys.stderr)
        return 2
    return run_in("toy_manifold", cfg.out, lambda: _run(cfg, started))


def _run(cfg: Config, started: float) -> int:
    """Train and evaluate, write the results and figures into ``cfg.out`` (:func:`jscgc.io.run_in` holds the
    folder); ``started``: when the command started (for the wall time)."""
    out, t0 = cfg.out, time.perf_counter()
    rows, curves, samples, jobs = run_jobs(cfg)
    t1 = time.perf_counter()
    rows += negative_control(cfg.seed)
    df = write_results(out, cfg, rows, curves, samples)
    t2 = time.perf_counter()
    if cfg.figures:
        from paper_figures.toy_manifold import draw
        draw(out, workers=cfg.workers)
    wall = time.perf_counter() - started
    atomic_write_json(out / "timings.json", {
        "wall_seconds": wall, "startup_seconds": t0 - started, "jobs_seconds": t1 - t0,
        "control_and_write_seconds": t2 - t1, "figures_seconds": time.perf_counter() - t2,
        "jobs": sorted(jobs, key=lambda j: (j["source"], j["method"], str(j["train_snr_db"])))})
    _summary(df, wall, out)
    return 0


def _summary(df, wall: float, out: Path) -> None:
    learned = df[df.decoder != "map"]
    flow = learned[learned.decoder == "jscgc"]
    print(f"toy_manifold: {len(df)} rows in {out}/results.csv, wall {wall:.1f} s")
    print(f"  rigorous bound holds on {int(learned.bound_holds.sum())}/{len(learned)} learned rows "
          f"({int(flow.bound_holds.sum())}/{len(flow)} trained-flow rows); "
          f"paper's δ* holds on {int(learned.paper_bound_holds.sum())}/{len(learned)}")
    ctrl = df[df.decoder == "map"]
    if len(ctrl):
        print(f"  negative control: δ_emp = {ctrl.delta_emp.max():.3f}, paper δ* = "
              f"{ctrl.delta_star_paper.iloc[0]:.3f} (violated: {not ctrl.paper_bound_holds.all()}), "
              f"rigorous holds: {ctrl.bound_holds.all()}")
    values = [v for v in ("dist_to_manifold_median", "mse", "mse_gap") if v in learned]
    view = learned[np.isclose(learned.p, PS[1])].pivot_table(index=["manifold", "snr_db"], columns="decoder",
                                                              values=values)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.precision", 3):
        print(view.to_string())


if __name__ == "__main__":
    sys.exit(main(started=STARTED))
