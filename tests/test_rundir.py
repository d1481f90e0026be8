"""The run folder's one owner (issue 9): a lock two real processes contend for, temporary files
with unique names, readers that name file and line, and a report that never creates a folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helper module beside this file
from openai_stub import StubServer  # noqa: E402
from stagerl.cli import main  # noqa: E402

import stagerl  # noqa: E402

SRC = str(Path(stagerl.__file__).resolve().parents[1])  # subprocesses run the stagerl under test
HOLD = ("import sys, time\nfrom stagerl.rundir import RunLock\n"
        "with RunLock(sys.argv[1], 'score'):\n    print('held', flush=True)\n    time.sleep(600)\n")


def env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def score_recipe(tmp: Path, url: str) -> Path:
    (tmp / "p.jsonl").write_text(json.dumps({"id": "a", "domain": "math", "prompt": "3 + 4?", "answer": "7"}) + "\n")
    recipe = {"name": "r", "runs_dir": str(tmp / "runs"), "data": [str(tmp / "p.jsonl")],
              "scoring": {"k": 2, "adaptive": False, "sampling": {"max_tokens": 8},
                          "models": [{"name": "srv", "model": "stub", "engine": "openai", "options": {"base_url": url}}]},
              "levels": {"rules": {"models": {"policy": "srv"}, "levels": {"all": "policy in [0,1]"}}}}
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def holder(tmp_path):
    """A real process holding the lock of ``tmp_path/runs/r``; SIGKILLed at the end."""
    run = tmp_path / "runs" / "r"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env())
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_stops_at_once_naming_the_holder(tmp_path, holder):
    with StubServer() as srv:
        path = score_recipe(tmp_path, srv.url)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "stagerl.cli", "score", str(path)], capture_output=True,
                             text=True, env=env(), timeout=300)
        assert out.returncode == 2 and time.perf_counter() - t0 < 120
        assert f"in use by PID {holder.pid} (stagerl score" in out.stderr and "--wait" in out.stderr
        assert srv.requests == 0
    assert not (tmp_path / "runs" / "r" / "samples.sqlite").exists()
    assert not (tmp_path / "runs" / "r" / "recipe.yaml").exists()


def test_wait_queues_behind_the_holder_even_a_killed_one(tmp_path, holder):
    with StubServer() as srv:
        path = score_recipe(tmp_path, srv.url)
        waiter = subprocess.Popen([sys.executable, "-m", "stagerl.cli", "score", str(path), "--wait"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
        try:
            line = ""
            while "waiting for" not in line:
                line = waiter.stdout.readline()
                assert line or waiter.poll() is None, "the waiter ended without waiting"
            assert f"PID {holder.pid}" in line
            time.sleep(1.0)
            assert waiter.poll() is None and srv.requests == 0  # still queued
            holder.send_signal(signal.SIGKILL)  # the kernel frees the lock of a killed holder
            rest = waiter.communicate(timeout=300)[0]
        finally:
            if waiter.poll() is None:
                waiter.kill()
        assert waiter.returncode == 0, rest
        assert srv.requests > 0
    assert (tmp_path / "runs" / "r" / "pass_rates.parquet").exists()


def _write_tables(out: str, rounds: int) -> None:
    from stagerl.scoring.table import write_table
    from stagerl.store import SampleStore

    store = SampleStore(Path(out) / "samples.sqlite")
    for _ in range(rounds):
        write_table(store, out)


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    from stagerl.store import SampleStore

    with SampleStore(tmp_path / "samples.sqlite") as store:
        store.set_meta("scoring", {"k": 1, "models": ["m"]})
        store.register_problems([("a", "math")])
        store.add([{"problem_id": "a", "model": "m", "idx": 0, "text": "x", "tokens": 1, "finish": "stop", "reward": 1}])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_tables, args=(str(tmp_path), 25)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("samples.sqlite")) == \
        ["ledger.json", "pass_rates.parquet"]  # no temporary file left behind


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    from stagerl.rundir import atomic_path, write_text

    target = write_text(tmp_path / "f.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as a, atomic_path(target) as b:
            assert a != b and a.parent == b.parent == tmp_path
            a.write_text("new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_torn_metrics_line_names_file_and_line(tmp_path, capsys):
    stage = tmp_path / "run" / "stages" / "1_s"
    stage.mkdir(parents=True)
    (stage / "metrics.jsonl").write_text('{"step": 1, "reward": 0.1}\n{"step": 2, "reward": 0.2}\n{"step": 3, "rew')
    assert main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{stage / 'metrics.jsonl'}, line 3: not a JSON row" in err


def test_report_on_a_missing_folder_is_an_error_and_creates_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "runs" / "mistyped")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
