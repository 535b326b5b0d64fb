"""Evaluation as a library: the seed of each (image, SNR), the points a system is scored at, scoring one
reception, a whole system over a set of images and SNRs, and the set measures' paired intervals.

experiments/kodak.py, recipe_search.py and resolution_probe.py score through these functions, so a row of
metrics means the same thing in every table: the metric table of :mod:`jscgc.metrics` applied to one
receiver's output for one image, clamped to [0, 1].

A system is scored at its own operating point (``Dial(steps=...)``) under the names of its views
(:attr:`jscgc.types.System.views`: ``<name>`` for the output, ``<name> (sample)`` for the generator's own
draw, ``<name> μ(ŷ)`` for the MSE estimate an anchored output copies its coarse band from), and at every extra
``--dial`` point as ``<name> [<settings>]``, each point with its own random stream.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import torch

from jscgc.dial import diversity
from jscgc.metrics import METRICS, evaluate_images
from jscgc.types import Dial, Reception

__all__ = ["image_seed", "Point", "points", "view", "score", "Evaluation", "evaluate", "set_measures",
           "set_intervals", "VIEW_LABELS"]

#: the row label's suffix for each view of a reception
VIEW_LABELS = {"output": "", "sample": " (sample)", "estimate": " μ(ŷ)"}


def image_seed(seed: int, name: str, snr: float) -> int:
    """The seed of one (image, SNR) evaluation: a hash of the run seed, the image name and the SNR's exact
    value, so every finite SNR works and different SNRs (or images) never share noise."""
    key = f"{seed}|{name}|{float(snr).hex()}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % (2 ** 63)


@dataclass(frozen=True)
class Point:
    """One operating point to score: the dial, the (row label, view) of each receiver it gives, and the
    offset of its random stream from the image's seed (0: the stream the channel noise was drawn from)."""
    dial: Dial
    receivers: tuple[tuple[str, str], ...]
    offset: int = 0


def points(name: str, system, steps: int, dials: tuple[Dial, ...] = (), dial: Dial | None = None) -> list[Point]:
    """The system at its own point (``dial``, by default as built at ``steps`` Euler steps; one receiver per
    view), then each extra dial point as one more receiver ``<name> [<settings>]`` with its own random stream."""
    built = Point(dial or Dial(steps=steps), tuple((name + VIEW_LABELS[v], v) for v in system.views), 0)
    return [built] + [Point(d, ((f"{name} [{d.label()}]", "output"),), k) for k, d in enumerate(dials, start=1)]


def view(reception: Reception, which: str) -> torch.Tensor | None:
    """One view of a reception: "output", "sample" (the first draw) or "estimate" (μ(ŷ), maybe None)."""
    return {"output": reception.output, "sample": reception.sample, "estimate": reception.estimate}[which]


def score(x: torch.Tensor, x_hat: torch.Tensor, ready: dict) -> dict[str, float]:
    """The per-image metrics of one image x (1, 3, H, W) received as x_hat (clamped to [0, 1] here)."""
    values = evaluate_images(x.float(), x_hat.float().clamp(0, 1), ready)
    return {m: v[0] for m, v in values.items()}


def set_measures(ready: dict) -> dict:
    """The ready set measures (:class:`jscgc.metrics.SetMeasure`), by name."""
    return {n: fn for n, fn in ready.items() if METRICS[n].kind == "set"}


@dataclass
class Evaluation:
    """rows: one dict per (receiver, SNR, image, sample) with a column per image metric and ``diversity``.
    stats: {snr: {receiver: {set measure: [per-image statistics of the first sample, in image order]}}}."""
    rows: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def evaluate(system, name: str, images: list[tuple[str, torch.Tensor]], snrs, ready: dict, *, seed: int,
             steps: int, samples: int = 1, dials: tuple[Dial, ...] = (), dial: Dial | None = None,
             device=torch.device("cpu"),
             keep: Callable[[str, float, str, torch.Tensor], None] | None = None,
             progress: bool = True) -> Evaluation:
    """Score ``system`` (a :class:`~jscgc.types.System`) on ``images`` [(name, (3, H, W))] at each SNR.

    Each (image, SNR) draws its channel noise and its first point's samples from one generator seeded by
    :func:`image_seed`; ``samples`` successive receptions per point are scored as samples 0, 1, ...
    ``keep(label, snr, image name, x_hat (1, 3, H, W))`` sees every first-sample output (e.g. to save PNGs).
    ``dial`` replaces the system's own point (``Dial(steps=steps)``) under its plain view labels.
    """
    from tqdm.auto import tqdm

    result, measures = Evaluation(), set_measures(ready)
    scored = points(name, system, steps, dials, dial)
    system.eval()
    bar = tqdm(total=len(snrs) * len(images), desc=f"eval {name}", disable=not progress, leave=False)
    for snr in snrs:
        kept = result.stats[snr] = {label: {m: [] for m in measures} for p in scored for label, _ in p.receivers}
        for img_name, image in images:
            x = image[None].to(device)
            base = image_seed(seed, img_name, snr)
            g = torch.Generator(device=device).manual_seed(base)
            with torch.no_grad():
                received = system.transmit(x, snr, g)
                for point in scored:
                    stream = g if point.offset == 0 else torch.Generator(device=device).manual_seed(base + point.offset)
                    for s in range(samples):
                        reception = system.receive(received, point.dial, stream, tuple(x.shape))
                        spread = diversity(reception)
                        for label, which in point.receivers:
                            x_hat = view(reception, which).float().clamp(0, 1)
                            result.rows.append({"method": label, "snr_db": snr, "image": img_name, "sample": s,
                                                **score(x, x_hat, ready),
                                                "diversity": float("nan") if spread is None else float(spread[0])})
                            if s == 0:
                                for m, measure in measures.items():
                                    kept[label][m].append(measure.stats(x_hat.cpu()))
                                if keep is not None:
                                    keep(label, snr, img_name, x_hat)
            bar.update(1)
    bar.close()
    return result


def set_intervals(images: list[tuple[str, torch.Tensor]], stats: dict, ready: dict, n_boot: int, seed: int,
                  references: tuple[str, ...] = ("mambajscc", "diffjscc")):
    """Per set measure, SNR and receiver the value on the images and its paired basic bootstrap interval
    (:func:`jscgc.bootstrap.paired_bootstrap`, ``n_boot`` resamples of the images, the same for every
    receiver of an SNR), and the paired differences against ``references`` where they ran. A pandas
    DataFrame with columns metric, snr_db, method, value, ... (no intervals for n_boot = 0 or one image)."""
    import pandas as pd

    from jscgc.bootstrap import frechet_from_stats, paired_bootstrap

    frames, resample = [], n_boot and len(images) >= 2      # a bootstrap needs two images
    for m, measure in set_measures(ready).items():
        refs = [measure.stats(image[None].float()) for _, image in images]
        for snr, by_label in stats.items():
            outs = {label: per[m] for label, per in by_label.items()}
            against = [r for r in references if r in outs]
            if resample:
                table = paired_bootstrap(refs, outs, against or None, n_boot=n_boot, seed=seed)
            else:
                table = pd.DataFrame({"receiver": list(outs), "n_images": len(refs),
                                      "value": [frechet_from_stats(refs, xs) for xs in outs.values()]})
            frames.append(table.rename(columns={"receiver": "method"}).assign(snr_db=snr, metric=m))
    if not frames:
        return pd.DataFrame(columns=["metric", "snr_db", "method", "value"])
    table = pd.concat(frames, ignore_index=True)
    first = ["metric", "snr_db", "method"]
    return table[first + [c for c in table.columns if c not in first]]
