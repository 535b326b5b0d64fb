"""Atomic writes: a result or checkpoint is either complete on disk or absent."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def _umask_mode(path: Path, mode: int = 0o666) -> None:
    """mkstemp creates files 0600; give results the usual permissions (mode & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        _umask_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON (indented, keys sorted) written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save(path: str | os.PathLike, save: Callable[[Path], None]) -> None:
    """Call ``save(tmp_path)`` to write a file, then rename it onto ``path``.

    ``tmp_path`` keeps ``path``'s suffix so that writers that infer a format from it
    (matplotlib's savefig, say) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        save(Path(tmp))
        _umask_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_dir(final: str | os.PathLike, fill: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder with ``fill(tmp)``, then rename it to ``final``.

    ``final`` must not exist yet: a folder is never silently overwritten.
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} exists already; refusing to overwrite it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        fill(tmp)
        _umask_mode(tmp, 0o777)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def folder_name(label: str) -> str:
    """A result label as a folder name: "jscgc (sample)" -> "jscgc_sample" (ASCII letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")


def unwritable_reason(out: str | os.PathLike) -> str | None:
    """Why folder ``out`` cannot be created and written, or None. Writability is tried (a temporary folder
    in the nearest existing ancestor, then removed), since permission bits say nothing when running as root."""
    out = Path(out)
    anchor = out
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        return f"{anchor} is a file, not a folder"
    try:
        tempfile.TemporaryDirectory(dir=anchor).cleanup()
    except OSError as err:
        return f"cannot write in {anchor} ({err.strerror})"
    return None


def source_version(where: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The git commit of the code that makes a result, for its config: ``{"commit": sha, "dirty": bool}``
    (dirty: tracked files differ from the commit), or None outside a git checkout or without git.
    ``where``: a path inside the checkout (default: this package's folder)."""
    import subprocess

    folder = Path(where) if where is not None else Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(folder), *a], capture_output=True, text=True,  # noqa: E731
                                        timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}
