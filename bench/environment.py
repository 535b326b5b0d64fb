"""What every benchmark JSON records beside its figures: the machine, the library versions, the date,
the command and the code's commit, so that a row of docs/performance.md names what made it.

Also how a bench script refuses a bad input: every input is checked in the main process before any work
(:func:`checked`), and a bad one is :class:`Refused`, one line ``<script>: <what is wrong>`` on stderr naming
the flag and what is expected, exit status 2, nothing written. The checks themselves are jscgc.checks'.
Importing this module needs only the standard library (bench/gpu_suite.py runs before anything is installed);
torch and jscgc are imported where they are used.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class Refused(SystemExit):
    """Bad input, found before any work: one line ``<script>: <what is wrong>`` on stderr, exit status 2."""

    def __init__(self, script: str, message: str):
        print(f"{script}: {' '.join(message.splitlines())}", file=sys.stderr)
        super().__init__(2)


def checked(script: str, check: Callable[[], T]) -> T:
    """``check()``, the script's checks of all its inputs; a bad one it finds (a
    :class:`jscgc.checks.UsageError`, a DamagedFile or a FileNotFoundError, as :func:`jscgc.checks.run_main`)
    is :class:`Refused`. A SystemExit rather than run_main's return value, since a bench main returns its
    figures to its callers."""
    from jscgc.checks import UsageError
    from jscgc.io import DamagedFile

    try:
        return check()
    except (UsageError, DamagedFile, FileNotFoundError) as err:
        raise Refused(script, str(err)) from None


def json_out(flag: str, path: str | Path) -> Path:
    """A JSON file to write (an earlier one is replaced): not a folder, in a folder that exists or can be
    created and be written in (tried, see :func:`jscgc.io.unwritable_reason`)."""
    from jscgc.checks import UsageError
    from jscgc.io import unwritable_reason

    out = Path(path)
    if out.is_dir() or not out.name:
        raise UsageError(f"{flag} {path}: is a folder; expected a JSON file to write")
    if reason := unwritable_reason(out.parent):
        raise UsageError(f"{flag} {out}: {reason}")
    return out


def device_name(device: torch.device) -> str:
    """'NVIDIA H200' for a CUDA device, else 'cpu (<n> threads)'."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def environment(device: torch.device, script: str, argv: list[str] | None) -> dict[str, Any]:
    """{device, torch, cuda, diffusers, python, date, command, source} for a result's JSON."""
    import diffusers
    import torch

    from jscgc.io import source_version

    return {"device": device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda,
            "diffusers": diffusers.__version__, "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["python", f"bench/{script}", *(argv if argv is not None else sys.argv[1:])]),
            "source": source_version(ROOT)}


def write_cpu_result(out: Path, result: dict[str, Any], script: str, argv: list[str] | None) -> dict[str, Any]:
    """A CPU benchmark's ``result`` with its :func:`environment` added, written atomically as JSON to ``out``
    (``wrote <out>`` printed); returns what was written."""
    import torch

    from jscgc.io import atomic_write_json

    result = {**result, **environment(torch.device("cpu"), script, argv)}
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so a wall-clock time covers it."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset, GiB (None on the CPU)."""
    if device.type != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / 2 ** 30


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
