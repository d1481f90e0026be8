"""experiments/snapshot.py: an experiments folder packed without weights, while a process writes its
store, and unpacked on another checkout only at the same commit and only into a new folder."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from repo_files import load  # tests/ is on the path: conftest.py
from stagerl.store import SampleStore

snap = load("experiments/snapshot.py")
TEXT = "y" * 3000  # big rows: the writer's WAL checkpoints into the main file while the snapshot reads


def row(pid: str, idx: int) -> dict:
    return {"problem_id": pid, "model": "m", "idx": idx, "domain": "math", "text": TEXT, "tokens": 7,
            "finish": "stop", "reward": 1.0}


def _writer(path: str, started, stop) -> None:
    store = SampleStore(path)
    i = 0
    while not stop.is_set():
        store.add([row(f"p{i}", j) for j in range(4)])
        i += 1
        if i == 20:
            started.set()


def count(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    finally:
        db.close()


def make_runs(root: Path) -> None:
    """An experiments folder as run.py leaves it: a finished arm, an unfinished one, weights in both."""
    shared = root / "seed0" / "_shared"
    shared.mkdir(parents=True)
    (shared / "history.jsonl").write_text('{"status": "finished"}\n{"status": "runn')  # an append under way
    (shared / ".lock").write_text("")
    (root / "seed0" / "recipes").mkdir()
    (root / "seed0" / "recipes" / "a.yaml").write_text("seed: 0\n")
    done = root / "seed0" / "a"
    for arm in (done, root / "seed0" / "b"):
        st = arm / "stages" / "1_L1"
        (st / "checkpoint").mkdir(parents=True)
        (st / "checkpoint" / "model.safetensors").write_bytes(b"\0" * 4096)
        (st / "checkpoints" / "checkpoint-4").mkdir(parents=True)
        (st / "checkpoints" / "checkpoint-4" / "optimizer.pt").write_bytes(b"\1" * 4096)
        (st / "metrics.jsonl").write_text('{"step": 0, "reward": 0.5}\n')
        (st / "stage.json").write_text('{"steps": 4}')
    with SampleStore(done / "eval" / "base" / "heldout_math.sqlite") as st:
        st.add([row("q", j) for j in range(3)])
    (done / "experiment.json").write_text('{"arm": "a"}')
    (root / "logs").mkdir()
    (root / "logs" / "seed0.log").write_text("log\n")
    (root / "compare" / "x-seed0").mkdir(parents=True)
    (root / "compare" / "x-seed0" / "compare.json").write_text('{"pairs": []}')


def test_save_while_a_process_writes_then_restore(tmp_path):
    root = tmp_path / "runs"
    make_runs(root)
    store = root / "seed0" / "_shared" / "samples.sqlite"
    SampleStore(store).close()
    ctx = mp.get_context("spawn")
    started, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_writer, args=(str(store), started, stop))
    proc.start()
    try:
        assert started.wait(60)
        before = count(store)
        manifest = snap.save(root, tmp_path / "s.tar.xz")
        after = count(store)
    finally:
        stop.set()
        proc.join(60)
    assert proc.exitcode == 0
    assert manifest["seeds"] == {"seed0": {"finished": ["a"], "left_out": ["b"]}}

    with tarfile.open(tmp_path / "s.tar.xz") as tar:
        names = set(tar.getnames())
    assert not any("checkpoint" in n or n.endswith((".lock", "-wal", "-shm")) for n in names)
    assert not any(n.startswith("seed0/b") for n in names)

    out = tmp_path / "elsewhere" / "runs"
    assert snap.restore(tmp_path / "s.tar.xz", out)["seeds"] == manifest["seeds"]
    copy = out / "seed0" / "_shared" / "samples.sqlite"
    db = sqlite3.connect(copy)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no -wal needed beside it
    assert {len(t) for (t,) in db.execute("SELECT text FROM samples")} == {len(TEXT)}  # whole rows only
    assert all(n % 4 == 0 for (n,) in db.execute("SELECT COUNT(*) FROM samples GROUP BY problem_id"))
    db.close()
    assert before <= count(copy) <= after
    assert (out / "seed0" / "_shared" / "history.jsonl").read_text() == '{"status": "finished"}\n'
    with SampleStore(out / "seed0" / "a" / "eval" / "base" / "heldout_math.sqlite") as st:
        assert len(st) == 3
    for rel in ("seed0/a/experiment.json", "seed0/a/stages/1_L1/metrics.jsonl", "seed0/a/stages/1_L1/stage.json",
                "seed0/recipes/a.yaml", "logs/seed0.log", "compare/x-seed0/compare.json"):
        assert (out / rel).read_bytes() == (root / rel).read_bytes()
    assert not (out / "seed0" / "a" / "stages" / "1_L1" / "checkpoint").exists()
    # the restored store takes new samples where the old one stopped
    with SampleStore(copy) as st:
        st.add([row("new", 0)])
        assert st.counts()[("new", "m")] == 1


def test_restore_refuses_a_folder_in_use_and_loses_nothing(tmp_path):
    root = tmp_path / "runs"
    make_runs(root)
    snap.save(root, tmp_path / "s.tar.xz")
    (root / "seed0" / "a" / "experiment.json").write_text('{"arm": "a", "later": 1}')
    with pytest.raises(snap.SnapshotError, match="not empty"):
        snap.restore(tmp_path / "s.tar.xz", root)
    assert json.loads((root / "seed0" / "a" / "experiment.json").read_text())["later"] == 1
    assert snap.main(["restore", str(tmp_path / "s.tar.xz"), str(root)]) == 2
    (tmp_path / "bad.tar.xz").write_bytes(b"not a tar")
    with pytest.raises(snap.SnapshotError, match="bad.tar.xz: not a whole snapshot"):
        snap.restore(tmp_path / "bad.tar.xz", tmp_path / "new")
    (tmp_path / "cut.tar.xz").write_bytes((tmp_path / "s.tar.xz").read_bytes()[:-64])  # a copy cut short
    with pytest.raises(snap.SnapshotError, match="cut.tar.xz: (cannot be unpacked|not a whole snapshot)"):
        snap.restore(tmp_path / "cut.tar.xz", tmp_path / "new")
    assert [p.name for p in tmp_path.iterdir() if "new" in p.name] == []
    (tmp_path / "logsonly" / "logs").mkdir(parents=True)
    with pytest.raises(snap.SnapshotError, match="logsonly: no seed<S>/ folders"):
        snap.save(tmp_path / "logsonly", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_restore_checks_the_commit(tmp_path):
    repo = tmp_path / "clone"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (repo / "code.py").write_text("1\n")
    git("add", "code.py")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    make_runs(repo / "runs" / "experiments")
    manifest = snap.save(repo / "runs" / "experiments", tmp_path / "s.tar.xz")
    assert manifest["commit"] == first

    (repo / "code.py").write_text("2\n")
    git("commit", "-qam", "two")
    with pytest.raises(snap.SnapshotError, match=f"made at commit {first}"):
        snap.restore(tmp_path / "s.tar.xz", repo / "runs" / "again")
    assert not [p for p in (repo / "runs").iterdir() if "again" in p.name]  # not even a temporary folder
    snap.restore(tmp_path / "s.tar.xz", repo / "runs" / "again", any_commit=True)
    git("checkout", "-q", first)
    snap.restore(tmp_path / "s.tar.xz", repo / "runs" / "third")
    assert (repo / "runs" / "third" / "seed0" / "a" / "experiment.json").is_file()
