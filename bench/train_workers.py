"""Training kodak.py's methods one after another on all threads against ``--workers`` forked processes.

Times :func:`experiments.kodak._train_all`, the code ``python experiments/kodak.py --workers N`` runs, on the
same latent pool (encoded once) with a short budget that keeps each method's stage shares. Each round
trains every method twice from scratch, serially and with N workers, in alternating order; the ratio is
the median over rounds of parallel/serial wall time in the same round. Kodak is not read. Writes JSON.

    python bench/train_workers.py --train-steps 40 --rounds 2      # the six methods at --preset small
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.environment import checked, environment, json_out
from experiments.kodak import Setup, _train_all
from experiments.kodak_config import configure, source_seed, train_config
from jscgc import checks
from jscgc.crop_schedule import preset_sources
from jscgc.imagedata import FolderCrops, data_root
from jscgc.io import atomic_write_json
from jscgc.latents import load_extractor
from jscgc.presets import PRESETS, get_preset
from jscgc.runs import data_fingerprint, run_record

ORDER = "mambajscc,necst,diffjscc,jscgc,jscgc-paper,cjscc"      # longest first (docs/performance.md's profile)


def check(argv):
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--methods", default=ORDER, help="comma list, the order the workers start them in")
    p.add_argument("--train-steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="bench/results/train_workers_cpu.json")
    a = p.parse_args(argv)
    for flag, value, least in (("--train-steps", a.train_steps, 1), ("--rounds", a.rounds, 1),
                               ("--workers", a.workers, 2)):
        if value < least:
            raise checks.UsageError(f"{flag} {value}: expected an integer >= {least}")
    kodak_argv = ["--preset", a.preset, "--methods", a.methods, "--train-steps", str(a.train_steps), "--no-progress"]
    return a, configure(kodak_argv), json_out("--out", a.out)


def timed(config, workers: int, folder: Path, sources: dict, extractor, fingerprint: str) -> dict:
    """One :func:`_train_all` from scratch into ``folder``: wall seconds in all and per method."""
    config = dataclasses.replace(config, workers=workers, out=folder)
    preset = get_preset(config.preset)
    train_cfg = train_config(config, preset, cuda=False)
    records = {m: run_record(m, preset, train_cfg, config.train_data, fingerprint, config.seed) for m in config.methods}
    setup = Setup(config, preset, [], train_cfg, folder, extractor, {}, {}, torch.device("cpu"), records)
    start = time.perf_counter()
    trained = _train_all(setup, sources)
    return {"workers": workers, "wall_s": time.perf_counter() - start,
            "methods_s": {m: seconds for m, (_, seconds) in trained.items()}}


def main(argv: list[str] | None = None) -> dict:
    a, config, out = checked("train_workers", lambda: check(argv))
    root = data_root(need="bsds500")
    preset = get_preset(config.preset)
    extractor = load_extractor(preset.latents, None)
    crops = FolderCrops(root / config.train_data, preset.crop)
    sources = preset_sources(crops, preset, extractor, source_seed(config.seed))
    fingerprint = data_fingerprint(root / config.train_data)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for w in ((1, a.workers) if r % 2 == 0 else (a.workers, 1)):
                runs.append({"round": r, **timed(config, w, Path(tmp) / f"r{r}w{w}", sources, extractor, fingerprint)})
                print(f"round {r + 1}/{a.rounds}, workers {w}: {runs[-1]['wall_s']:.1f} s", flush=True)
    wall = {w: [x["wall_s"] for x in runs if x["workers"] == w] for w in (1, a.workers)}
    ratios = [p / s for p, s in zip(wall[a.workers], wall[1])]
    result = {"bench": "train_workers", "preset": config.preset, "methods": list(config.methods),
              "train_steps": a.train_steps, "threads": torch.get_num_threads(), **environment(torch.device("cpu"),
              "train_workers.py", argv), "runs": runs, "median_serial_s": statistics.median(wall[1]),
              "median_parallel_s": statistics.median(wall[a.workers]), "ratio_median": statistics.median(ratios)}
    atomic_write_json(out, result)
    print(f"serial {result['median_serial_s']:.1f} s, {a.workers} workers {result['median_parallel_s']:.1f} s: "
          f"ratio {result['ratio_median']:.2f} (median of {a.rounds} rounds); wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
