"""Save and restore the resumable part of an experiments folder, without model weights.

A run of every arm over three seeds takes days of two cores (docs/next-run.md), longer than a machine
may last. ``save`` packs, in one ``.tar.xz`` of a few MB, what another machine needs to go on where
this one stopped, and everything ``experiments/tables.py`` reads:

- each seed's ``_shared/`` (scoring store, levels, the base model's evaluation), even while a process
  writes it;
- each finished arm (``experiment.json``: ``run.py`` skips it), without its weights (``checkpoint/``,
  ``checkpoints/``), which no table reads;
- ``compare/``, ``logs/`` and the seeds' ``recipes/``.

An unfinished arm is left out: its stages would need their weights, so it starts again on the new
machine (at most one arm per process is lost). SQLite files are copied with SQLite's online backup,
a consistent copy while another process writes them; a JSON Lines file is cut after its last whole
line; other files are written atomically by stagerl (temporary file, then rename) and copied as they
are. ``restore`` unpacks into a folder that does not exist yet, and refuses an archive made at
another commit than the checkout's (the run would go on with other code)::

    python experiments/snapshot.py save runs/experiments snapshot.tar.xz
    python experiments/snapshot.py restore snapshot.tar.xz runs/experiments
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from stagerl.rundir import atomic_path, replace_dir

MANIFEST = "SNAPSHOT.json"
WEIGHTS = {"checkpoint", "checkpoints"}  # folders of model weights, never packed
SKIP_FILES = {".lock"}
SKIP_SUFFIXES = ("-wal", "-shm", "-journal")  # the backup holds their content


class SnapshotError(ValueError):
    """An archive or folder that cannot be saved or restored; the message names it."""


def commit_of(folder: Path) -> str | None:
    """The git commit checked out where ``folder`` lies, with ``+dirty`` if tracked files changed."""
    def git(*args: str) -> str | None:
        r = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None:
        return None
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def plan(root: Path) -> tuple[list[Path], dict]:
    """The folders to pack (relative to ``root``) and what the manifest says of each seed."""
    if not root.is_dir():
        raise SnapshotError(f"{root}: no such folder (the experiments folder run.py writes, e.g. runs/experiments)")
    keep = [p.relative_to(root) for p in (root / "compare", root / "logs") if p.is_dir()]
    seeds: dict = {}
    for seed_dir in sorted(root.glob("seed*")):
        if not seed_dir.is_dir():
            continue
        info: dict = {"finished": [], "left_out": []}
        for sub in sorted(seed_dir.iterdir()):
            if not sub.is_dir():
                continue
            if sub.name in ("_shared", "recipes"):
                keep.append(sub.relative_to(root))
            elif (sub / "experiment.json").is_file():
                keep.append(sub.relative_to(root))
                info["finished"].append(sub.name)
            else:
                info["left_out"].append(sub.name)
        seeds[seed_dir.name] = info
    if not seeds:
        raise SnapshotError(f"{root}: no seed<S>/ folders: not an experiments folder written by experiments/run.py")
    return keep, seeds


def _files(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in WEIGHTS)
        for name in sorted(filenames):
            if name not in SKIP_FILES and not name.endswith(SKIP_SUFFIXES):
                yield Path(dirpath) / name


def _sqlite_copy(src: Path, tmp: Path) -> bytes:
    """A consistent copy of a live SQLite file (online backup), as bytes in rollback-journal mode."""
    out = tmp / "copy.sqlite"
    out.unlink(missing_ok=True)
    s, d = sqlite3.connect(src, timeout=60), sqlite3.connect(out)
    try:
        s.backup(d)  # reads only; a writer goes on meanwhile (WAL)
        d.execute("PRAGMA journal_mode = DELETE")
    finally:
        s.close()
        d.close()
    return out.read_bytes()


def _content(path: Path, tmp: Path) -> bytes:
    if path.suffix == ".sqlite":
        return _sqlite_copy(path, tmp)
    data = path.read_bytes()
    if path.suffix == ".jsonl" and data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # a line being appended right now: not yet part of the run
    return data


def save(root: Path, out: Path) -> dict:
    """Pack ``root`` (see the module's text) into ``out``, atomically; return the manifest."""
    root, out = Path(root), Path(out)
    keep, seeds = plan(root)
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit_of(root),
                "folder": str(root.resolve()), "seeds": seeds, "files": 0, "bytes": 0}
    with atomic_path(out) as part, tempfile.TemporaryDirectory() as tmp, tarfile.open(part, "w:xz") as tar:
        members = []
        for folder in keep:
            for path in _files(root / folder):
                data = _content(path, Path(tmp))
                members.append((path.relative_to(root).as_posix(), data))
                manifest["files"] += 1
                manifest["bytes"] += len(data)
        for name, data in [(MANIFEST, json.dumps(manifest, indent=1).encode())] + members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return manifest


def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = tar.extractfile(MANIFEST)
            return json.loads(member.read()) if member else {}
    except (OSError, EOFError, KeyError, tarfile.TarError, json.JSONDecodeError) as e:
        raise SnapshotError(f"{archive}: not a whole snapshot made by experiments/snapshot.py ({e})") from None


def restore(archive: Path, dest: Path, any_commit: bool = False) -> dict:
    """Unpack ``archive`` into ``dest`` (which must not exist yet, so nothing is overwritten); the
    folder appears whole or not at all. Refuse an archive of another commit unless ``any_commit``."""
    archive, dest = Path(archive), Path(dest)
    manifest = read_manifest(archive)
    if dest.exists() and any(dest.iterdir()):
        raise SnapshotError(f"{dest}: exists and is not empty; restore only into a new folder (nothing was changed)")
    here = commit_of(next(p for p in dest.absolute().parents if p.exists()))
    made = manifest.get("commit")
    if not any_commit and (made or "").removesuffix("+dirty") != (here or "").removesuffix("+dirty"):
        raise SnapshotError(f"{archive}: made at commit {made}, but {dest.parent} is at {here}; check out {made} "
                            "(the run must go on with the code it started with) or pass --any-commit")
    def unpack(tmp: Path) -> None:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name != MANIFEST], filter="data")

    try:
        replace_dir(dest, unpack)  # dest is absent or empty: nothing of it is lost
    except (EOFError, tarfile.TarError, ValueError) as e:
        raise SnapshotError(f"{archive}: cannot be unpacked ({type(e).__name__}: {e}); {dest} was not created") from None
    return manifest


def describe(manifest: dict) -> str:
    lines = [f"{manifest.get('files')} files, {manifest.get('bytes', 0) / 1e6:.1f} MB unpacked; made "
             f"{manifest.get('created')} at commit {manifest.get('commit')} from {manifest.get('folder')}"]
    for seed, info in (manifest.get("seeds") or {}).items():
        lines.append(f"  {seed}: finished {', '.join(info['finished']) or '–'}; "
                     f"left out (start again) {', '.join(info['left_out']) or '–'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save", help="pack an experiments folder's resumable part into a .tar.xz")
    s.add_argument("folder", type=Path)
    s.add_argument("archive", type=Path)
    r = sub.add_parser("restore", help="unpack a snapshot into a new experiments folder")
    r.add_argument("archive", type=Path)
    r.add_argument("folder", type=Path)
    r.add_argument("--any-commit", action="store_true", help="restore even if the checkout is at another commit")
    a = p.parse_args(argv)
    try:
        if a.cmd == "save":
            m = save(a.folder, a.archive)
            print(f"saved {a.archive} ({a.archive.stat().st_size / 1e6:.2f} MB): " + describe(m))
        else:
            m = restore(a.archive, a.folder, a.any_commit)
            print(f"restored {a.folder}: " + describe(m))
    except SnapshotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
