"""The GPU benchmarks of docs/gpu_plan.md in one call on one GPU: the steps below, most important first, each in its own
process under its own time limit, all under one deadline. A step that no longer fits is skipped and
said so, never cut short; a failing step does not stop the next. Every JSON and the log go to ``--out``
(the device tool brings that folder back). Standard library only, so it runs before anything is installed.

    python3 -m bench.gpu_suite                       # every step, into results/gpu_suite
    python3 -m bench.gpu_suite train_rate_default    # only the named steps
    python3 -m bench.gpu_suite --dry-run             # the steps' commands and limits; runs nothing

Before the call, on the development machine, ``bash bench/gpu_prepare.sh`` puts the wheels the GPU image
lacks into ``.whl/`` and BSDS500 ``train`` and the TAEF2 weights into ``.device/`` (both ignored by git);
the call carries both. After it: copy the JSON files to bench/results/ and run
``python bench/performance.py --write``. docs/gpu_plan.md has the plan and its time budget.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

from bench.environment import Refused  # (standard library only, as this script)

ROOT = Path(__file__).resolve().parents[1]


class Step(NamedTuple):
    """One benchmark run: its name (the JSON's file stem), the most seconds it may take, the script and
    its arguments (``--out`` is added), and what it measures (the first cell of its row in docs/performance.md)."""
    name: str
    limit: int
    argv: tuple[str, ...]
    what: str


#: the one list of the GPU figures; bench/performance.py writes the rows of docs/performance.md from it
STEPS: tuple[Step, ...] = (
    Step("receiver_full_eager", 100, ("bench/receiver.py", "--preset", "full", "--profile", "768x512:4"),
         "6B receiver, 9 Euler steps, bf16, eager"),
    Step("receiver_full_compiled", 270, ("bench/receiver.py", "--preset", "full", "--compile", "--sizes",
                                         "768x512:1,4", "256x256:4,8", "--profile", "768x512:4"),
         "6B receiver, 9 Euler steps, bf16, blocks compiled"),
    Step("train_step_full_fp32", 100, ("bench/train_step.py", "--preset", "full", "--batch", "8"),
         "6B training step, batch 8 of 256², frozen backbone in fp32, bf16 autocast"),
    Step("train_step_full_bf16", 80, ("bench/train_step.py", "--preset", "full", "--batch", "8",
                                      "--frozen-dtype", "bf16"),
         "6B training step, batch 8 of 256², frozen backbone in bf16, bf16 autocast"),
    Step("train_rate_default", 300, ("bench/train_rate.py", "--preset", "default", "--methods", "jscgc,mambajscc",
                                     "--steps", "10", "30"),
         "`default` training, whole 8000-step budget (projected from two short runs)"),
)


def command(step: Step, out: Path, python: str = "python") -> list[str]:
    return [python, *step.argv, "--out", str(out / f"{step.name}.json")]


def environment(log, wheel_dir: Path) -> dict[str, str]:
    """The children's environment: the repository and the wheels of ``wheel_dir`` (installed into /tmp/site)
    on the path, the carried data and weights."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    paths = [str(ROOT)]
    wheels = sorted(wheel_dir.glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", "/tmp/site", *map(str, wheels)], check=True)
        paths.append("/tmp/site")
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    for var, folder in (("JSCGC_DATA", ".device/data"), ("JSCGC_WEIGHTS", ".device/weights")):
        if (ROOT / folder).is_dir() and var not in env:
            env[var] = str(ROOT / folder)
    for cmd in (["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv"],
                [sys.executable, "-c", "import torch, diffusers; print('torch', torch.__version__, 'cuda', "
                 "torch.version.cuda, 'diffusers', diffusers.__version__)"]):
        try:
            log(subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60).stdout.strip())
        except (OSError, subprocess.SubprocessError) as err:
            log(f"{cmd[0]}: {err}")
    return env


def run_step(step: Step, out: Path, env: dict, log) -> int:
    """Run one step, its output to the log as it comes; killed at its limit (returns -9 then)."""
    proc = subprocess.Popen(command(step, out, sys.executable), cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(step.limit, proc.kill)
    timer.start()
    for line in proc.stdout:
        if "should be kept in float32" not in line:          # diffusers' note on every .to(dtype)
            log(line.rstrip())
    timer.cancel()
    return proc.wait()


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one :class:`Refused` line, not a usage block (jscgc.checks.Parser's rule;
    this script imports no jscgc)."""

    def error(self, message):
        raise Refused("gpu_suite", message)


def writable_folder(flag: str, path: str) -> Path:
    """A folder that exists or can be created, and can be written in: tried in the nearest existing folder,
    as jscgc.io.unwritable_reason does (permission bits say nothing when running as root)."""
    anchor = Path(path)
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        raise Refused("gpu_suite", f"{flag} {path}: {anchor} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=anchor).cleanup()
    except OSError as err:
        raise Refused("gpu_suite", f"{flag} {path}: cannot write in {anchor} ({err.strerror})") from None
    return Path(path)


def check(argv) -> tuple[argparse.Namespace, list[Step], Path]:
    """Every input checked before anything is written or run: one line naming the bad one (exit 2)."""
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("steps", nargs="*", help=f"some of {[s.name for s in STEPS]} (default: all)")
    p.add_argument("--out", default=os.environ.get("OUT", "results/gpu_suite"))
    p.add_argument("--deadline", type=float, default=560.0, help="seconds for all steps (the call's 600 s, less start-up)")
    p.add_argument("--wheels", default=str(ROOT / ".whl"), help="folder of wheels to install first")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args(argv)
    unknown = sorted(set(a.steps) - {s.name for s in STEPS})
    if unknown:
        raise Refused("gpu_suite", f"steps: unknown {unknown}; expected some of {[s.name for s in STEPS]}")
    if not (math.isfinite(a.deadline) and a.deadline > 0):
        raise Refused("gpu_suite", f"--deadline {a.deadline}: expected a positive finite number of seconds")
    if Path(a.wheels).exists() and not Path(a.wheels).is_dir():
        raise Refused("gpu_suite", f"--wheels {a.wheels}: is a file; expected a folder of wheels (or none)")
    out = writable_folder("--out", a.out)
    return a, [s for s in STEPS if not a.steps or s.name in a.steps], out


def main(argv: list[str] | None = None) -> int:
    try:
        a, steps, out = check(argv)
    except Refused as refused:          # its line is printed; this main returns exit statuses
        return refused.code
    if a.dry_run:
        for s in steps:
            print(s.name, s.limit, " ".join(command(s, out)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "suite.log", "a") as f:
        def log(text: str) -> None:
            print(text, flush=True)
            f.write(text + "\n")
            f.flush()

        env, start = environment(log, Path(a.wheels)), time.monotonic()
        for s in steps:
            left = a.deadline - (time.monotonic() - start)
            if left < s.limit:
                log(f"== {s.name} skipped: needs up to {s.limit} s, {left:.0f} s left "
                    f"(run: python3 -m bench.gpu_suite {s.name})")
                continue
            log(f"== {s.name} (limit {s.limit} s, {left:.0f} s left): {' '.join(command(s, out))}")
            t0 = time.monotonic()
            rc = run_step(s, out, env, log)
            log(f"== {s.name} rc={rc} in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
