"""What every benchmark JSON records beside its figures: the machine, the library versions, the date,
the command and the code's commit, so that a row of the README's Performance table names what made it."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from jscgc.io import source_version

ROOT = Path(__file__).resolve().parents[1]


class Refused(SystemExit):
    """Bad input, found before any work: one line ``<script>: <what is wrong>`` on stderr, exit status 2."""

    def __init__(self, script: str, message: str):
        print(f"{script}: {message}", file=sys.stderr)
        super().__init__(2)


def device_name(device: torch.device) -> str:
    """'NVIDIA H200' for a CUDA device, else 'cpu (<n> threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def environment(device: torch.device, script: str, argv: list[str] | None) -> dict[str, Any]:
    """{device, torch, cuda, diffusers, python, date, command, source} for a result's JSON."""
    import diffusers

    return {"device": device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda,
            "diffusers": diffusers.__version__, "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(["python", f"bench/{script}", *(argv if argv is not None else sys.argv[1:])]),
            "source": source_version(ROOT)}


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """Peak GPU memory allocated since the last reset, GiB (None on the CPU)."""
    return torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
