"""Storage of results: atomic writes (a result or checkpoint is either complete on disk or absent), validated
reads (a damaged file is named, never a traceback), a lock per results folder, and a completion marker."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


#: the name prefix of a file being written atomically; one left behind was cut short by a kill
TEMPORARY = ".tmp-"


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete the half-written files (:data:`TEMPORARY` prefix) a killed run left under ``folder``; call it
    while holding the folder's :class:`FolderLock`. Returns how many were removed."""
    stale = [p for p in Path(folder).rglob(f"{TEMPORARY}*") if p.is_file()] if Path(folder).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def _umask_mode(path: Path, mode: int = 0o666) -> None:
    """mkstemp creates files 0600; give results the usual permissions (mode & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY}{path.name}.", suffix=".tmp")
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY}{path.stem}.", suffix=path.suffix)
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


# ----------------------------------------------------------------------------- reading back, locking, completion
class DamagedFile(ValueError):
    """A stored file the code reads back cannot be used. The message is one line:
    ``<file> is damaged: <why>; remove it or pass --overwrite``."""

    def __init__(self, path: str | os.PathLike, why: str):
        self.path = Path(path)
        super().__init__(f"{self.path} is damaged: {why}; remove it or pass --overwrite")


def read_json(path: str | os.PathLike, keys: tuple[str, ...] = ()) -> Any:
    """The JSON object stored at ``path``; :class:`DamagedFile` when it is not valid UTF-8 JSON, or (with
    ``keys``) not an object holding every one of them. FileNotFoundError when it is absent."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedFile(path, f"not JSON ({type(err).__name__} at byte {getattr(err, 'start', getattr(err, 'pos', '?'))})") from None
    missing = [k for k in keys if not isinstance(value, dict) or k not in value]
    if missing:
        raise DamagedFile(path, f"no {', '.join(missing)}")
    return value


#: the file that marks a results folder as finished, written last (``mark_complete``)
COMPLETE = "complete.json"


def mark_complete(out: str | os.PathLike, record: dict | None = None) -> None:
    """Write ``out/complete.json`` last: the folder's results are whole. A folder with results but without
    it was left by a killed run; rerunning the same command finishes it."""
    atomic_write_json(Path(out) / COMPLETE, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(record or {})})


def is_complete(out: str | os.PathLike) -> bool:
    return (Path(out) / COMPLETE).is_file()


class FolderLock:
    """An exclusive claim on a results folder, held for one run: ``out/.lock`` (JSON: pid, host, start,
    command), created with O_EXCL. A second run on the same folder refuses at once, naming the first
    (:class:`FolderBusy`). A lock whose process is gone (same host, pid not running) or that cannot be read
    is stale and taken over. Use as a context manager; the lock is removed on exit."""

    def __init__(self, out: str | os.PathLike):
        self.path = Path(out) / ".lock"
        self.held = False

    def _holder(self) -> dict | None:
        """The live holder's record, or None when the lock is stale or absent."""
        try:
            record = json.loads(self.path.read_text())
            pid, host = int(record["pid"]), str(record["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return record                                      # another machine: cannot tell, assume alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return record

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None:
                    raise FolderBusy(self.path.parent, holder) from None
                self.path.unlink(missing_ok=True)              # stale: the process that held it is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self.held = True
            return self
        raise FolderBusy(self.path.parent, {"pid": "?", "started": "?", "command": "another run"})

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class FolderBusy(RuntimeError):
    """Another live run holds the folder's lock; the message names it in one line."""

    def __init__(self, out: Path, holder: dict):
        super().__init__(f"{out} is in use by another run (pid {holder.get('pid')}, started {holder.get('started')}: "
                         f"{holder.get('command')}); wait for it to end or choose another --out")


def run_in(command: str, out: str | os.PathLike, work: Callable[[], int], record: dict | None = None) -> int:
    """Run a command's ``work`` while holding ``out``'s :class:`FolderLock`: a killed run's half-written
    files are removed first, and ``complete.json`` (with ``record``) is written last when ``work`` returns 0.
    A folder held by another live run is one line ``<command>: …`` and exit status 2."""
    out = Path(out)
    try:
        lock = FolderLock(out).acquire()
    except FolderBusy as err:
        print(f"{command}: {err}", file=sys.stderr)
        return 2
    try:
        if not is_complete(out) and any(p.name != ".lock" for p in out.iterdir()):
            print(f"{command}: {out} holds the results of a run that did not finish; running it again", file=sys.stderr)
        (out / COMPLETE).unlink(missing_ok=True)
        remove_stale_temporaries(out)
        code = work()
        if code == 0:
            mark_complete(out, {"command": command, **(record or {})})
        return code
    finally:
        lock.release()
