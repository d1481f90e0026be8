"""The run folder's one owner: every path a stage reads or writes, atomic writes, the lock.

::

    <run>/recipe.yaml            the recipe of the last command that passed its checks
    <run>/history.jsonl          one line per command: time, command, recipe hash, pid, status
    <run>/.lock                  held (``fcntl.flock``) by the process working in the folder
    <run>/samples.sqlite         every scoring sample (``store.SampleStore``)
    <run>/pass_rates.parquet     problem x model pass rates; <run>/ledger.json tokens and seconds
    <run>/levels/                <level>.parquet, stats.json, *.png; replaced as one set
    <run>/stages/<i>_<name>/     checkpoint/, metrics.jsonl, stage.json (written last: "finished")
    <run>/eval/<checkpoint>/     <benchmark>.sqlite, <benchmark>/, results.json
    <run>/report/                report.md, *.png

Writes are atomic: a file is written under a unique temporary name in its own folder and renamed
into place (``os.replace``), so two writers never share a temporary file and a reader never sees
half a file. One process at a time works in a run folder: :class:`RunLock` takes an exclusive
``flock`` on ``<run>/.lock`` (released by the kernel when the process dies, even by SIGKILL); a
second process stops at once with a message naming the holder's PID and command, or waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable


class RunFolderError(ValueError):
    """A run folder is missing, in use, or holds a file that cannot be read (names file and line)."""


def run_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a run name (None when it can): a run folder is one folder inside the
    runs folder, so a name is a single path component (no ``/``, ``\\``, ``..``, leading ``.``)."""
    if not isinstance(name, str) or not name.strip():
        return f"must be a non-empty string, got {name!r}"
    if "/" in name or "\\" in name or "\0" in name or name.startswith(".") or name != name.strip():
        return (f"{name!r} is not a folder name: a run name is one folder inside the runs folder (no '/', "
                "'\\', surrounding spaces or leading '.'); set runs_dir to put runs elsewhere")
    return None


class RunDir:
    """The paths of one run folder (nothing is created by asking for a path)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    recipe = property(lambda self: self.root / "recipe.yaml")
    history = property(lambda self: self.root / "history.jsonl")
    lock_file = property(lambda self: self.root / ".lock")
    samples = property(lambda self: self.root / "samples.sqlite")
    pass_rates = property(lambda self: self.root / "pass_rates.parquet")
    ledger = property(lambda self: self.root / "ledger.json")
    levels = property(lambda self: self.root / "levels")
    level_stats = property(lambda self: self.root / "levels" / "stats.json")
    stages = property(lambda self: self.root / "stages")
    report = property(lambda self: self.root / "report")
    run_json = property(lambda self: self.root / "run.json")

    def level(self, name: str) -> Path:
        return self.levels / f"{name}.parquet"

    def level_files(self) -> list[Path]:
        return sorted(self.levels.glob("*.parquet"))

    def stage(self, index: int, name: str) -> Path:
        """``stages/<index>_<name>`` (index from 1)."""
        return self.stages / f"{index}_{name}"

    def stage_folders(self) -> list[Path]:
        """The stage folders in stage order (``10_x`` after ``2_y``, not before)."""
        def order(d: Path) -> tuple:
            head = d.name.split("_", 1)[0]
            return (int(head), d.name) if head.isdigit() else (1 << 30, d.name)

        return sorted((d for d in self.stages.glob("*") if d.is_dir()), key=order)

    def eval(self, checkpoint: str) -> Path:
        return self.root / "eval" / checkpoint

    MARKERS = ("recipe.yaml", "history.jsonl", "samples.sqlite", "pass_rates.parquet", "levels", "stages", "eval")
    """Entries of which a run folder holds at least one (every command writes recipe.yaml and history.jsonl)."""

    def holds_run(self) -> bool:
        """Whether the folder holds a run's files (one of ``MARKERS``)."""
        return any((self.root / m).exists() for m in self.MARKERS)

    def require(self) -> "RunDir":
        """This run folder, which must exist and hold a run's files (a mistyped folder is an error,
        never created; a folder that is not a run folder is an error, never written to)."""
        if not self.root.is_dir():
            raise RunFolderError(f"run folder not found: {self.root}" +
                                 (" (it is a file)" if self.root.exists() else ""))
        if not self.holds_run():
            raise RunFolderError(f"{self.root} is not a stagerl run folder (none of {', '.join(self.MARKERS)} in it); "
                                 "pass a folder under your runs folder, e.g. runs/<name>")
        return self


def numbered_folders(folder: str | Path, prefix: str) -> dict[int, Path]:
    """The ``<prefix>-<N>`` folders directly in ``folder`` (``checkpoint-12``, ``best-4``), by ``N``."""
    found = {}
    for d in Path(folder).glob(f"{prefix}-*"):
        m = re.fullmatch(rf"{re.escape(prefix)}-(\d+)", d.name)
        if m and d.is_dir():
            found[int(m.group(1))] = d
    return found


def stage_finished(stage_dir: str | Path) -> bool:
    """The one test for "this stage is finished": stage.json (written last) and a checkpoint."""
    d = Path(stage_dir)
    return (d / "stage.json").is_file() and (d / "checkpoint" / "config.json").is_file()


# ---------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; on success it replaces ``path`` atomically,
    on error it is removed (``path`` keeps its old content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def replace_dir(path: str | Path, fill: Callable[[Path], Any]) -> Any:
    """Build a folder anew with ``fill(tmp_dir)`` and swap it in for ``path`` as one set: files of
    the old folder that ``fill`` did not write are gone (a renamed level leaves nothing behind).
    On error the old folder is kept as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent))
    try:
        result = fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------- readers


def read_jsonl(path: str | Path) -> list[dict]:
    """Every row of a JSON Lines file (blank lines skipped); a torn or corrupt line is a
    ``RunFolderError`` naming the file and line (what a SIGKILL mid-write can leave)."""
    path = Path(path)
    rows = []
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                shown = raw[:80].decode("utf-8", "replace").rstrip("\n")
                raise RunFolderError(f"{path}, line {n}: not a JSON row ({e}): {shown!r}; the process writing "
                                     "it was probably killed mid-line: delete that line and try again") from None
            if not isinstance(row, dict):
                raise RunFolderError(f"{path}, line {n}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def read_json(path: str | Path) -> Any:
    """A JSON file; a corrupt one is a ``RunFolderError`` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f"{path}: not valid JSON ({e})") from None


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one line (one ``write`` call, so concurrent appenders do not interleave)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")


# ---------------------------------------------------------------------------- the lock


_HELD: dict[str, "RunLock"] = {}


class RunLock:
    """An exclusive lock on a run folder (``flock`` on ``<run>/.lock``), re-entrant within a process.

    ``wait=False``: a folder in use raises ``RunFolderError`` at once, naming the holder's PID and
    command; ``wait=True`` blocks until the holder is done. The kernel releases the lock when the
    holding process exits, however it exits, so a killed run never leaves a stale lock."""

    def __init__(self, root: str | Path, command: str = "", wait: bool = False) -> None:
        self.path = RunDir(root).lock_file
        self.command, self.wait = command, wait
        self._fd: int | None = None
        self._outer: RunLock | None = None

    def __enter__(self) -> "RunLock":
        key = str(self.path.resolve())
        if key in _HELD:  # this process holds it already (e.g. `run` calling `score`)
            self._outer = _HELD[key]
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                if not self.wait:
                    raise RunFolderError(f"run folder {self.path.parent} is in use by {holder}; wait for it to "
                                         "finish, or pass --wait to queue behind it") from None
                print(f"stagerl: waiting for {holder} to release {self.path.parent}", flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": self.command,
                                      "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD[key] = self
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._outer is not None:
            self._outer = None
            return
        if self._fd is not None:
            _HELD.pop(str(self.path.resolve()), None)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        info = {}
    if not info.get("pid"):
        return "another process"
    what = f" (stagerl {info['command']}" + (f", since {info['since']})" if info.get("since") else ")")
    return f"PID {info['pid']}{what if info.get('command') else ''}"
