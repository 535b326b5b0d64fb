"""Checks of a command's inputs, in the main process before any work: a bad input is a :class:`UsageError`, one
line naming the input and what is expected; :func:`run_main` prints it as ``<command>: …`` and gives exit 2."""
from __future__ import annotations

import argparse
import csv
import math
import numbers
import sys
from pathlib import Path
from typing import Callable, Collection, Iterable, Sequence

from jscgc.io import DamagedFile, unwritable_reason


class UsageError(ValueError):
    """A bad input, reported as one line ``<command>: …`` with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors (unknown flags, values of the wrong type) are UsageErrors, not a usage block."""
    def error(self, message):
        raise UsageError(message)


def int_at_least(flag: str, value, low: int) -> int:
    """An integer ``value`` >= ``low`` (:func:`positive_int`: 1, :func:`nonnegative_int`: 0)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise UsageError(f"{flag} {value}: expected an integer >= {low}")
    return int(value)


def positive_int(flag: str, value) -> int:
    return int_at_least(flag, value, 1)


def nonnegative_int(flag: str, value) -> int:
    return int_at_least(flag, value, 0)


def finite(flag: str, value) -> float:
    """A finite number (an SNR in dB, say)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise UsageError(f"{flag} {value}: expected a finite number")
    return float(value)


def finite_all(flag: str, values: Sequence, distinct: bool = False, what: str = "numbers") -> list[float]:
    """At least one value, all finite (and distinct when asked); ``what`` names them (e.g. "SNRs in dB")."""
    floats = [float(v) for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)]
    if not floats or len(floats) < len(values) or (distinct and len(set(floats)) != len(floats)):
        raise UsageError(f"{flag} {' '.join(map(str, values)) or '(none)'}: expected "
                         f"{'distinct ' if distinct else ''}finite {what}")
    return floats


def positive_finite(flag: str, value) -> float:
    """A finite number > 0 (a learning rate, say)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    raise UsageError(f"{flag} {value}: expected a positive finite number")


def names(flag: str, text: str, known: Collection[str]) -> list[str]:
    """A comma list of distinct names, each one of ``known``, at least one."""
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise UsageError(f"{flag} {text!r}: expected distinct names from {','.join(known)}"
                         + (f" (unknown: {','.join(unknown)})" if unknown else ""))
    return chosen


def writable_folder(flag: str, path) -> Path:
    """A folder that exists or can be created, and can be written in (tried, see unwritable_reason)."""
    if why := unwritable_reason(path):
        raise UsageError(f"{flag} {path}: {why}")
    return Path(path)


def new_folder(flag: str, path) -> Path:
    """A folder that does not exist yet and can be created (an ``--out`` that is never overwritten)."""
    if Path(path).exists():
        raise UsageError(f"{flag} {path}: exists; choose a new folder")
    return writable_folder(flag, path)


def results_folder(flag: str, path, files: Iterable[str], columns: dict | None = None) -> Path:
    """A folder that holds every one of ``files``; each CSV named in ``columns`` has those header columns."""
    folder = Path(path)
    missing = [f for f in files if not (folder / f).is_file()]
    if not folder.is_dir() or missing:
        raise UsageError(f"{flag} {path}: " + (f"lacks {', '.join(missing)}" if folder.is_dir() else "no such folder"))
    for name, wanted in (columns or {}).items():
        with open(folder / name, newline="", encoding="utf-8", errors="replace") as f:
            header = next(csv.reader(f), [])
        if absent := [c for c in wanted if c not in header]:
            raise UsageError(f"{flag} {path}: {name} has no column {', '.join(absent)} (damaged, or another file)")
    return folder


def data_folder(flag: str, path, need: str | None = None) -> Path:
    """The data root (:func:`jscgc.imagedata.data_root`) holding ``need``; its one-line error names ``flag``."""
    from jscgc.imagedata import data_root
    try:
        return data_root(path, need=need)
    except FileNotFoundError as err:
        raise UsageError(f"{flag}: {err}") from None


def image_folder(flag: str, path, need: str) -> Path:
    """``<data root>/<need>`` (:func:`data_folder`), which must hold image files; one line naming ``flag``."""
    from jscgc.imagedata import image_files

    folder = data_folder(flag, path, need=need) / need
    try:
        image_files(folder)
    except FileNotFoundError as err:
        raise UsageError(f"{flag}: {err}") from None
    return folder


def run_main(command: str, check: Callable[[], object], work: Callable[[object], int]) -> int:
    """``work(check())``; a UsageError, DamagedFile or FileNotFoundError raised by ``check`` is printed as
    one line ``<command>: <message>`` on stderr and gives 2 (``work`` has not started)."""
    try:
        checked = check()
    except (UsageError, DamagedFile, FileNotFoundError) as err:
        print(f"{command}: {' '.join(str(err).splitlines())}", file=sys.stderr)
        return 2
    return work(checked)
