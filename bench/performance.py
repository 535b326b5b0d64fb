"""The GPU performance rows of docs/performance.md, written from the benchmark JSON files in bench/results/.

Each JSON is what one of bench/receiver.py, bench/train_step.py or bench/train_rate.py wrote, named for
its step of bench/gpu_suite.py (the one list of the figures; its run's files are copied here). A figure
that no file holds is written "unmeasured", and the GPU goals (docs/gpu_plan.md) are judged from the numbers, never
typed in.

    python bench/performance.py            # print the block
    python bench/performance.py --write    # replace the block between the markers of docs/performance.md
    python bench/performance.py --check    # exit 1 when that block is not what the files give
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bench.environment import checked
from bench.gpu_suite import STEPS
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.io import atomic_write_text, unwritable_reason

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results"
TARGET = ROOT / "docs" / "performance.md"
"""The page whose block between BEGIN and END this script writes (section 'On a GPU')."""
BEGIN = "<!-- perf:gpu begin (written by `python bench/performance.py --write`; edit the JSON, not this) -->"
END = "<!-- perf:gpu end -->"

GOALS = {"fraction": 0.80, "adapter": 0.10, "ms_768x512_b1": 300.0}


def _page() -> str:
    """TARGET as the messages name it: relative to the repository when it lies inside it."""
    return str(TARGET.relative_to(ROOT)) if TARGET.is_relative_to(ROOT) else str(TARGET)


def load(folder: Path = RESULTS) -> dict[str, dict]:
    """{file stem: JSON} of every bench/results/*.json."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _where(res: dict) -> str:
    return f"{res['device']}, torch {res['torch']}, diffusers {res['diffusers']}, {res['date']}"


def _receiver_result(res: dict) -> str:
    sizes = "; ".join(f"{r['height']}×{r['width']} b{r['batch']}: {r['ms_per_image']:.0f} ms/image, "
                      f"{r['fraction_of_gemm_ceiling']:.0%} of GEMM, adapter {r['adapter_overhead']:+.1%}"
                      for r in res["rows"])
    peaks = [r["peak_memory_gib"] for r in res["rows"] if r["peak_memory_gib"] is not None]
    text = f"{sizes}; GEMM ceiling {res['gemm_ceiling_tflops']:.0f} TFLOP/s" + (f"; peak {max(peaks):.1f} GiB" if peaks else "")
    if "profile" in res:
        p = res["profile"]
        split = ", ".join(f"{k} {v:.0%}" for k, v in p["by_category"].items() if v >= 0.01)
        text += (f"; where the time goes at {p['height']}×{p['width']} b{p['batch']}: {split}; "
                 f"GPU busy {p['busy_fraction']:.0%}")
    return f"{text} ({_where(res)})"


def _train_step_result(res: dict) -> str:
    peak = f", peak {res['peak_memory_gib']:.1f} GiB" if res["peak_memory_gib"] else ""
    return (f"{res['images_per_second']:.1f} images/s ({res['seconds_per_step'] * 1e3:.0f} ms/step){peak}, "
            f"{res['trainable_parameters'] / 1e6:.1f} M trainable ({_where(res)})")


def _train_rate_result(res: dict) -> str:
    goal = res["goal_seconds"]
    rows = "; ".join(f"{r['method']}: {r['seconds_per_step'] * 1e3:.0f} ms/step, {r['projected_seconds'] / 60:.1f} min "
                     f"({'within' if r['projected_seconds'] <= goal else 'over'} the {goal / 60:.0f}-min goal)"
                     for r in res["rows"])
    return f"{rows} ({_where(res)})"


RENDER = {"receiver": _receiver_result, "train_step": _train_step_result, "train_rate": _train_rate_result}


def goals(results: dict[str, dict]) -> list[str]:
    """The three receiver goals of docs/gpu_plan.md, each judged from the receiver files present."""
    rows = {mode: results[f"receiver_full_{mode}"]["rows"] for mode in ("eager", "compiled")
            if f"receiver_full_{mode}" in results}
    out = []
    big = [r["fraction_of_gemm_ceiling"] for r in rows.get("compiled", []) if r["batch"] >= 4]
    out.append(f"≥ {GOALS['fraction']:.0%} of the GEMM ceiling at batch ≥ 4, compiled: " +
               (f"{'met' if min(big) >= GOALS['fraction'] else 'not met'} ({min(big):.0%}–{max(big):.0%})"
                if big else "unmeasured"))
    over = {m: max(r["adapter_overhead"] for r in rs) for m, rs in rows.items()}
    out.append(f"adapter overhead ≤ {GOALS['adapter']:.0%}: " +
               ("; ".join(f"{m} {'met' if v <= GOALS['adapter'] else 'not met'} (at most {v:+.1%})"
                          for m, v in over.items()) or "unmeasured"))
    b1 = {m: r["ms_per_image"] for m, rs in rows.items() for r in rs if (r["height"], r["width"], r["batch"]) == (768, 512, 1)}
    out.append(f"768×512 at batch 1 ≤ {GOALS['ms_768x512_b1']:.0f} ms: " +
               ("; ".join(f"{m} {'met' if v <= GOALS['ms_768x512_b1'] else 'not met'} ({v:.0f} ms)"
                          for m, v in b1.items()) or "unmeasured"))
    return out


def render(results: dict[str, dict]) -> str:
    """The block of docs/performance.md: a table of the expected GPU figures (measured or "unmeasured"),
    then the goals."""
    lines = [BEGIN, "", "| what | command | result |", "|---|---|---|"]
    for step in STEPS:
        res = results.get(step.name)
        shown = re.sub(r" --out \S+", "", res["command"]) if res else " ".join(["python", *step.argv])
        lines.append(f"| {step.what} | `{shown}` | "
                     f"{RENDER[res['bench']](res) if res else '**unmeasured** (no GPU run yet)'} |")
    lines += ["", "The goals of docs/gpu_plan.md, judged from these files:", ""] + [f"- {g}" for g in goals(results)]
    return "\n".join(lines + ["", END])


def page_block(text: str) -> str:
    """The block between the markers (markers included); ValueError when they are missing."""
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise ValueError(f"{_page()}: the perf:gpu markers are missing")
    return text[start:stop + len(END)]


def checked_results(flag: str, folder: Path | None) -> dict[str, dict]:
    """The files of :func:`load` named for a step of bench/gpu_suite.py (the others, bench/train_profile.py's
    say, are not this script's), each readable and a result of the script its step runs; else one line naming
    it. ``None``: bench/results/, which before the first GPU run may not exist (every figure unmeasured)."""
    if folder is None:
        folder = RESULTS
        if not folder.exists():
            return {}
    if not folder.is_dir():
        raise UsageError(f"{flag} {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    results = {}
    for step in STEPS:
        path, script = folder / f"{step.name}.json", Path(step.argv[0]).stem
        if not path.exists():
            continue
        try:
            res = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            why = " ".join(str(err).split())
            raise UsageError(f"{flag} {folder}: {path.name} is not readable JSON ({why})") from None
        if not isinstance(res, dict) or res.get("bench") != script or "command" not in res:
            raise UsageError(f"{flag} {folder}: {path.name} is not a result of bench/{script}.py")
        results[step.name] = res
    return results


def check(argv) -> tuple[argparse.Namespace, dict[str, dict], Path, str]:
    """Every input checked before the block is written: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"replace the block of {_page()}")
    p.add_argument("--check", action="store_true", help="exit 1 when that block is stale")
    p.add_argument("--results", default=None, help=f"folder of the JSON files (default {RESULTS.relative_to(ROOT)})")
    a = p.parse_args(argv)
    if a.write and a.check:
        raise UsageError("--write and --check: expected one of them at most")
    results = checked_results("--results", None if a.results is None else Path(a.results))
    page = TARGET
    text = page.read_text()
    try:
        page_block(text)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if a.write and (reason := unwritable_reason(page.parent)):
        raise UsageError(f"--write: {page}: {reason}")
    return a, results, page, text


def main(argv: list[str] | None = None) -> int:
    a, results, page, text = checked("performance", lambda: check(argv))
    block = render(results)
    if a.check:
        stale = page_block(text) != block
        print(f"{_page()}: the GPU rows are stale; run python bench/performance.py --write"
              if stale else "up to date")
        return int(stale)
    if a.write:
        atomic_write_text(page, text.replace(page_block(text), block))
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
