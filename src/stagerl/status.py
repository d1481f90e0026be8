"""``stagerl status RUN...``: where a run stands, read from its folder while it runs.

Nothing is loaded and nothing is written: the command reads the run folder's files (history,
scoring store, levels, each stage's metrics, evaluation results) and never takes the folder's
lock, so it can be asked any time, also while another process works in the folder. Who works in
it now comes from the kernel's lock table (``/proc/locks``; elsewhere a lock probe). A folder that
is not a run folder but holds run folders (``runs/``) gets a block per run folder in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import statistics
import sys
from pathlib import Path

from . import console
from .rundir import RunDir, RunFolderError, read_json, read_jsonl, stage_finished


def holder_pid(run: RunDir) -> int | None:
    """The PID holding the run folder's lock now (None: nobody, or unknown)."""
    try:
        st = os.stat(run.lock_file)
    except FileNotFoundError:
        return None
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return _probe(run)
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[-3].count(":") != 2:
            continue
        major, minor, inode = parts[-3].split(":")
        if int(inode) == st.st_ino and (int(major, 16), int(minor, 16)) == (os.major(st.st_dev), os.minor(st.st_dev)):
            return int(parts[-4])
    return None


def _probe(run: RunDir) -> int | None:
    """Without a lock table: try a shared lock for an instant (held: someone works there)."""
    fd = os.open(run.lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return int(_lock_info(run).get("pid") or -1)
    finally:
        os.close(fd)


def _lock_info(run: RunDir) -> dict:
    try:
        return json.loads(run.lock_file.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def now_line(run: RunDir, pid: int | None) -> str:
    """Who works in the folder (``pid``: the lock's holder), or how the last command ended."""
    if pid is not None and pid <= 0:  # held by a process this one cannot see (another PID namespace, a container)
        return "working now: a process not visible from here holds the folder's lock"
    if pid is not None:
        info = _lock_info(run)
        what = f"stagerl {info['command']}, " if info.get("pid") == pid and info.get("command") else ""
        since = f", since {info['since']}" if info.get("pid") == pid and info.get("since") else ""
        return f"working now: {what}PID {pid}{since}"
    rows = read_jsonl(run.history) if run.history.is_file() else []
    if not rows:
        return "idle: no command has run here"
    last = rows[-1]
    if last["status"] == "started":  # no end written: killed, or the machine went down
        return (f"idle: `stagerl {last['command']}` started {last['time']} and did not finish (killed?); "
                "run it again to resume")
    if last["status"] == "finished":
        return f"idle: last `stagerl {last['command']}` finished {last.get('end', '')}"
    return f"idle: last `stagerl {last['command']}` stopped {last.get('end', '')}: {last['status']}"


def _unfinished(working: bool, missing: str) -> str:
    return f"under way ({missing} yet)" if working else f"stopped ({missing}; no process works here)"


def scoring_line(run: RunDir, working: bool) -> str | None:
    done = run.pass_rates.is_file()
    counts = _store_counts(run.samples) if run.samples.is_file() else {}
    if not counts and not done:
        return None
    per_model = ", ".join(f"{m} {n:,}" for m, (n, _) in counts.items())
    tokens = sum(t for _, t in counts.values())
    head = "done (pass_rates.parquet)" if done else _unfinished(working, "no pass_rates.parquet")
    samples = sum(n for n, _ in counts.values())
    stored = f": {samples:,} samples stored ({per_model}), {tokens:,} tokens" if counts else ""
    return f"scoring: {head}{stored}"


def _read_only(path: Path, *queries: str) -> list[list[tuple]] | None:
    """Each query's rows from the SQLite file ``path`` opened read-only (a writer's open transaction is
    not waited for); ``None`` when it cannot be read."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return [db.execute(q).fetchall() for q in queries]
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _store_counts(path: Path) -> dict[str, tuple[int, int]]:
    """Samples and tokens per model, read-only."""
    got = _read_only(path, "SELECT model, COUNT(*), COALESCE(SUM(tokens), 0) FROM samples GROUP BY model ORDER BY model")
    return {} if got is None else {m: (n, t) for m, n, t in got[0]}


def _eval_progress(path: Path) -> str:
    """``"960 of 1,440, about 12 min left"``: an evaluation store's samples against its problems × k,
    the time left at the stored samples' mean seconds (just the count while its settings are not
    written yet), read-only."""
    got = _read_only(path, "SELECT COUNT(*), COALESCE(SUM(seconds), 0) FROM samples", "SELECT COUNT(*) FROM problems",
                     "SELECT value FROM meta WHERE key = 'scoring'")
    if got is None:
        return "0"
    (stored, seconds), problems, meta = got[0][0], got[1][0][0], (got[2] or [None])[0]
    try:
        setting = json.loads(meta[0]) if meta else {}
        expected = problems * int(setting["k"]) * len(setting["models"])
    except (ValueError, KeyError, TypeError):
        return f"{stored:,}"
    left = f", about {console.duration(seconds / stored * (expected - stored))} left" \
        if 0 < stored < expected and seconds > 0 else ""
    return f"{stored:,} of {expected:,}{left}"


def levels_line(run: RunDir) -> str | None:
    if not run.level_stats.is_file():
        return None
    stats = read_json(run.level_stats)
    sizes = " · ".join(f"{name} {info.get('total', 0)}" for name, info in stats.get("levels", {}).items())
    return f"levels: {sizes or 'none'} (of {stats.get('problems', '?')} problems)"


def stage_lines(run: RunDir, working: bool) -> list[str]:
    """One line per stage of the recipe (or per stage folder, without a recipe)."""
    planned = _planned_stages(run)
    folders = {d.name: d for d in run.stage_folders()} if run.stages.is_dir() else {}
    names = [f"{i}_{s.name}" for i, s in enumerate(planned, 1)] or list(folders)
    steps = {f"{i}_{s.name}": s.max_steps for i, s in enumerate(planned, 1)}
    if not folders:
        return [f"training: not started (stages {', '.join(names)})"] if names else []
    return [_stage_line(name, run.stages / name, steps.get(name), working) for name in names]


def _planned_stages(run: RunDir) -> list:
    if not run.recipe.is_file():
        return []
    from .config import ConfigError, load_recipe

    try:
        return list(load_recipe(run.recipe).train.stages)
    except ConfigError:
        return []


def _stage_line(name: str, folder: Path, max_steps: int | None, working: bool) -> str:
    if stage_finished(folder):
        info = read_json(folder / "stage.json")
        steps = info.get("steps")
        return f"stage {name}: finished after {steps} step{'' if steps == 1 else 's'}, {console.end_reason(info)}"
    metrics = folder / "metrics.jsonl"
    rows = read_jsonl(metrics) if metrics.is_file() else []
    trained = [r for r in rows if r.get("step", 0) >= 1 and r.get("reward") is not None]
    if not trained:
        return f"stage {name}: {'started, no step yet' if folder.is_dir() else 'not started'}"
    last = trained[-1]
    total = f" of {max_steps}" if max_steps else ""
    parts = [f"stage {name}: step {last['step']}{total}", f"reward {last['reward']:.3f}"]
    dev = [r for r in rows if r.get("dev_score") is not None]
    if dev:
        parts.append(f"dev {dev[-1]['dev_score']:.3f} at step {dev[-1]['step']}")
    pace = _pace(trained)
    if pace:
        parts.append(f"{pace:.0f} s/step")
        if working and max_steps and max_steps > last["step"]:
            parts.append(f"at most {console.duration(pace * (max_steps - last['step']))} left")
    if not working:
        parts.append("stopped (no process works here): rerun the command to resume")
    return ", ".join(parts)


def _pace(trained: list[dict]) -> float | None:
    """Median seconds per step over the last few steps (``seconds`` is the stage's running time)."""
    by_step = {r["step"]: r.get("seconds") for r in trained if isinstance(r.get("seconds"), (int, float))}
    steps = sorted(by_step)[-6:]
    gaps = [(by_step[b] - by_step[a]) / (b - a) for a, b in zip(steps, steps[1:]) if by_step[b] > by_step[a]]
    return statistics.median(gaps) if gaps else None


def eval_lines(run: RunDir, working: bool) -> list[str]:
    root = run.root / "eval"
    found = [p for p in root.glob("*") if p.is_dir()] if root.is_dir() else []
    out = []
    for d in sorted(found, key=lambda p: (p.name != "base", p.name)):  # the base model first
        if not (d / "results.json").is_file():
            shown = ", ".join(f"{db.stem} {_eval_progress(db)}" for db in sorted(d.glob("*.sqlite")))
            out.append(f"eval {d.name}: {_unfinished(working, 'no results.json')}"
                       + (f"; samples stored: {shown}" if shown else ""))
            continue
        res = read_json(d / "results.json")
        shown = ", ".join(f"{b} {r['pass@1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" for b, r in res.items()
                          if isinstance(r, dict) and "pass@1" in r)
        out.append(f"eval {d.name}: {shown or 'no benchmark'}")
    return out


def runs_below(folder: Path, depth: int = 3) -> list[Path]:
    """The run folders under ``folder``, at most ``depth`` levels down, in name order; a run folder's own
    subfolders are not searched (``experiments/run.py`` keeps ``runs/experiments/seed<S>/<arm>``)."""
    out = []
    for d in sorted(folder.iterdir()):
        if d.is_dir() and not d.is_symlink():
            if RunDir(d).holds_run():
                out.append(d)
            elif depth > 1:
                out += runs_below(d, depth - 1)
    return out


def status_lines(folder: str | Path) -> list[str]:
    """The status block of a run folder, or of every run folder under ``folder`` (``runs_below``)."""
    path = Path(folder)
    if path.is_dir() and not RunDir(path).holds_run():
        runs = runs_below(path)
        if runs:
            return [line for d in runs for line in status_lines(d)]
    run = RunDir(path).require()
    pid = holder_pid(run)
    working = pid is not None
    head = now_line(run, pid)
    body = [scoring_line(run, working), levels_line(run), *stage_lines(run, working), *eval_lines(run, working)]
    return [str(path), f"  {head}", *(f"  {line}" for line in body if line)]


def run_status(folders: list[str]) -> None:
    """Print each folder's block; a folder that cannot be read is named on stderr and the others are
    still shown (then ``RunFolderError``: the command's exit status is 2)."""
    bad = []
    for folder in folders:
        try:
            print("\n".join(status_lines(folder)), flush=True)
        except RunFolderError as e:
            bad.append(str(folder))
            print(f"stagerl status: {e}", file=sys.stderr, flush=True)
    if bad:
        raise RunFolderError(f"{len(bad)} of {len(folders)} folder(s) could not be read: {', '.join(bad)}")
