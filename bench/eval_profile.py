"""Where the Kodak `small` evaluation spends its time on the CPU (issue 27): the cost of each metric and set
statistic per scored view, and of each method's reception, timed on one BSDS500 `val` image of the test grid
(256×384, never Kodak); then the evaluation these costs predict for each method of the benchmark, beside a
run's measured ``eval_<method>`` seconds when ``--timings`` names its timings.json.

    python bench/eval_profile.py [--repeats 3] [--timings docs/kodak_small/timings.json] [--out FILE.json]

Receptions are timed with untrained systems built as kodak.py builds them (the cost of a forward pass does not
depend on the weights). A method is scored at the points :func:`jscgc.evaluation.points` gives it: its own
(one view per :attr:`System.views`) and, for ``jscgc``, the benchmark's ``--dial window=4`` point (one view).
Predicted seconds per method = images × SNRs × (Σ receptions + views × (Σ image metrics + Σ set statistics)).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.environment import checked, environment, json_out
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.evaluation import points, set_measures
from jscgc.imagedata import val_grid
from jscgc.io import atomic_write_json
from jscgc.latents import load_extractor
from jscgc.methods import build_method
from jscgc.metrics import available_metrics
from jscgc.presets import get_preset
from jscgc.types import Dial

METHODS = ("cjscc", "necst", "mambajscc", "diffjscc", "jscgc-paper", "jscgc")
DIALS = {"jscgc": (Dial(window=4),)}            # the benchmark's extra point (docs/kodak_small.md)
RECEPTIONS = 24 * 4                               # Kodak's 24 images at four SNRs


def _median_s(fn, repeats: int) -> float:
    fn()                                          # warm-up (and any memoised reference features)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check(argv):
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timings", default=None, help="a kodak.py timings.json to set the prediction beside")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    a = p.parse_args(argv)
    checks.positive_int("--repeats", a.repeats)
    out = json_out("--out", a.out) if a.out else None
    if a.timings is None:
        return a, out, {}
    try:
        return a, out, json.loads(Path(a.timings).read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--timings {a.timings}: expected a kodak.py timings.json ({err})") from None


def metric_costs(x: torch.Tensor, x_hat: torch.Tensor, ready: dict, repeats: int) -> dict[str, float]:
    """Seconds per call of each image metric, and of each set measure's per-view statistics (its ``stats``).
    Every call gets a new output, as in evaluation: set measures memoise their features by content, so a
    repeated output would be a cache hit (the reference is the same for every view, as in evaluation)."""
    sets, g = set_measures(ready), torch.Generator().manual_seed(2)
    fresh = lambda: (x_hat + 1e-3 * torch.randn(x_hat.shape, generator=g)).clamp(0, 1)  # noqa: E731
    costs = {n: _median_s(lambda fn=fn: fn(x, fresh()), repeats) for n, fn in ready.items() if n not in sets}
    costs.update({f"{n} (stats)": _median_s(lambda m=m: m.stats(fresh()), repeats) for n, m in sets.items()})
    return costs


def reception_costs(name: str, x: torch.Tensor, extractor, repeats: int) -> tuple[list[float], int]:
    """Seconds of transmit + receive at each scoring point of ``name`` (9 Euler steps), and its views."""
    system = build_method(name, get_preset("small"), extractor).eval()
    scored = points(name, system, 9, DIALS.get(name, ()))
    g = torch.Generator().manual_seed(0)

    def once(dial):
        with torch.no_grad():
            system.receive(system.transmit(x, 5.0, g), dial, g, tuple(x.shape))
    return [_median_s(lambda d=p.dial: once(d), repeats) for p in scored], sum(len(p.receivers) for p in scored)


def main(argv: list[str] | None = None) -> dict:
    a, out, measured = checked("eval_profile", lambda: check(argv))
    torch.manual_seed(0)
    extractor = load_extractor("taef2")
    ready, missing = available_metrics(None, extractor=extractor)
    x = val_grid(count=1)[0][1][None]
    x_hat = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; unavailable: {sorted(missing)}")
    costs = metric_costs(x, x_hat, ready, a.repeats)
    per_view = sum(costs.values())
    for n, s in sorted(costs.items(), key=lambda kv: -kv[1]):
        print(f"  {n:22s} {s * 1e3:8.1f} ms per view ({100 * s / per_view:4.1f} %)")
    print(f"  {'all metrics':22s} {per_view * 1e3:8.1f} ms per view")
    rows = []
    for name in METHODS:
        receive, views = reception_costs(name, x, extractor, a.repeats)
        predicted = RECEPTIONS * (sum(receive) + views * per_view)
        rows.append({"method": name, "receive_s": receive, "views": views, "scoring_s": RECEPTIONS * views * per_view,
                     "predicted_s": predicted, "measured_s": measured.get(f"eval_{name}")})
        print(f"{name:12s} receive {' + '.join(f'{r:.2f}' for r in receive)} s, {views} views: predicted "
              f"{predicted:6.0f} s (scoring {RECEPTIONS * views * per_view:5.0f} s), measured "
              f"{rows[-1]['measured_s'] or float('nan'):6.0f} s")
    result = {"environment": environment(torch.device("cpu"), "eval_profile.py", argv),
              "metric_s_per_view": costs, "methods": rows}
    if out is not None:
        atomic_write_json(out, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
