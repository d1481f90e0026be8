"""A real scoring process (real transformers engine, tiny model) SIGKILLed mid-run, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from stagerl.store import SampleStore

K = 4
N_PROBLEMS = 12


def _write_problems(path: Path) -> None:
    with path.open("w") as f:
        for i in range(N_PROBLEMS):
            f.write(json.dumps({"id": f"p{i:02d}", "domain": "math", "prompt": f"What is {i} + {2 * i}?",
                                "answer": str(3 * i)}) + "\n")


def _command(problems: Path, run: Path, model_dir: str, call_size: int = K, models: int = 2) -> list[str]:
    # call_size = K: one problem per engine call, so rows reach the store a few at a time
    names = ["--model", f"tiny={model_dir}", "--model", f"tiny-hot={model_dir}"][:2 * models]
    return [sys.executable, "-m", "stagerl.scoring.run", "--problems", str(problems), "--store",
            str(run / "samples.sqlite"), "--out", str(run), *names, "--k", str(K), "--fixed", "--max-tokens", "12",
            "--temperature", "1.0", "--call-size", str(call_size), "--option", "batch_size=4", "--option",
            "device=\"cpu\"", "--no-progress"]


def _kill_once_stored(command: list[str], env: dict, run: Path, rows: int) -> Path:
    """Start the scorer, SIGKILL it once its store holds ``rows`` samples; return the store's path."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db, store, deadline = run / "samples.sqlite", None, time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            store = store or SampleStore(db)
            if len(store) >= rows:
                break
        time.sleep(0.02)
    assert proc.poll() is None, f"the scorer ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    return db


def test_sigkill_mid_run_then_resume_regenerates_nothing_stored(tmp_path, tiny_model_dir):
    problems, run = tmp_path / "problems.jsonl", tmp_path / "run"
    _write_problems(problems)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    db = _kill_once_stored(_command(problems, run, tiny_model_dir), env, run, 2 * K)

    before = {(r["problem_id"], r["model"], r["idx"]): r for r in SampleStore(db).samples(with_rowid=True)}
    total = 2 * N_PROBLEMS * K
    assert 2 * K <= len(before) < total
    # a call of K samples ends well within one flush interval (30 s): each stored pair holds all K
    assert set(SampleStore(db).counts().values()) == {K}

    done = subprocess.run(_command(problems, run, tiny_model_dir), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    after = {(r["problem_id"], r["model"], r["idx"]): r for r in SampleStore(db).samples(with_rowid=True)}

    assert len(after) == total == summary["rows"]
    assert summary["generated"] == summary["stored"] == total - len(before)  # nothing re-generated
    for key, row in before.items():  # rows stored before the kill are untouched
        assert after[key] == row
    assert min(after[k]["rowid"] for k in set(after) - set(before)) > max(r["rowid"] for r in before.values())

    table = pd.read_parquet(run / "pass_rates.parquet")
    assert len(table) == 2 * N_PROBLEMS and (table["samples"] == K).all() and not table["decided_early"].any()
    assert list(table["model"].unique()) == ["tiny", "tiny-hot"]
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["total"]["samples"] == total
    assert ledger["total"]["tokens"] == sum(r["tokens"] for r in after.values())

    # a third start finds nothing to do and loads no model
    again = subprocess.run(_command(problems, run, tiny_model_dir), env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["generated"] == 0


def test_one_long_call_killed_midway_keeps_what_finished(tmp_path, tiny_model_dir):
    """An evaluation hands a whole benchmark to one engine call. With finished prompts stored as they
    come (``STAGERL_FLUSH_SECONDS=0``: at once), a SIGKILL in the middle of that one call keeps what
    finished, and the resumed run generates only the rest: before, nothing reached the store until
    the call returned."""
    problems, run = tmp_path / "problems.jsonl", tmp_path / "run"
    _write_problems(problems)
    total = N_PROBLEMS * K  # one model, all of it in one call of 12 batches of 4
    command = _command(problems, run, tiny_model_dir, call_size=total, models=1)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "STAGERL_FLUSH_SECONDS": "0"}
    db = _kill_once_stored(command, env, run, 2 * K)
    before = {(r["problem_id"], r["idx"]): r for r in SampleStore(db).samples()}
    assert 2 * K <= len(before) < total
    assert all(r["seconds"] > 0 for r in before.values())

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    after = {(r["problem_id"], r["idx"]): r for r in SampleStore(db).samples()}
    assert len(after) == total and summary["generated"] == total - len(before)
    assert all(after[key] == row for key, row in before.items())
