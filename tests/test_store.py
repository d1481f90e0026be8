"""The sample store: idempotent appends, atomic batches, several writer processes at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest

from stagerl.store import COLUMNS, SampleStore, StoreError


def row(pid: str, model: str, idx: int, reward: float = 1.0, text: str = "x") -> dict:
    return {"problem_id": pid, "model": model, "idx": idx, "domain": "math", "text": text,
            "tokens": 3 + idx, "finish": "stop" if idx % 2 else "length", "reward": reward, "seconds": 0.5}


def test_add_is_idempotent_and_keeps_the_first_version(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    assert store.add([row("p1", "a", i) for i in range(4)]) == 4
    # the same keys again (with different content) store nothing and change nothing
    assert store.add([row("p1", "a", i, reward=0.0, text="other") for i in range(4)]) == 0
    assert store.add([row("p1", "a", 3), row("p1", "a", 4)]) == 1
    assert len(store) == 5
    got = store.samples(model="a")
    assert [r["idx"] for r in got] == [0, 1, 2, 3, 4]
    assert {r["text"] for r in got} == {"x"} and {r["reward"] for r in got} == {1.0}
    assert store.counts() == {("p1", "a"): 5}
    assert store.indices("a") == {"p1": {i: 1.0 for i in range(5)}}


def test_bad_row_names_the_field_and_stores_nothing_of_its_batch(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    bad = row("p2", "a", 1)
    bad["finish"] = "eos"
    with pytest.raises(StoreError, match=r"row 1 .*'p2'.*field 'finish'"):
        store.add([row("p1", "a", 0), bad])
    missing = row("p1", "a", 0)
    del missing["reward"]
    with pytest.raises(StoreError, match="field 'reward' is missing"):
        store.add([missing])
    with pytest.raises(StoreError, match="field 'idx'"):
        store.add([row("p1", "a", -1)])
    assert len(store) == 0


def test_filters_frame_parquet_meta_and_problems(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    store.add([row(p, m, i) for p in ("p1", "p2", "p3") for m in ("a", "b") for i in range(2)])
    assert len(store.samples(model="b", problem_ids=["p1", "p3"])) == 4
    assert store.samples(problem_ids=[]) == []
    many = [f"x{i}" for i in range(600)] + ["p2"]  # more ids than SQLite binds at once
    assert {r["problem_id"] for r in store.samples(problem_ids=many)} == {"p2"}
    frame = store.to_frame()
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 12
    back = pd.read_parquet(store.export_parquet(tmp_path / "out"))
    assert back.sort_values(["problem_id", "model", "idx"]).reset_index(drop=True).equals(frame)
    store.set_meta("scoring", {"k": 4})
    store.register_problems([("p2", "math"), ("p1", "code")])
    store.register_problems([("p1", "math"), ("p3", "math")])
    reopened = SampleStore(tmp_path / "s.sqlite")
    assert reopened.get_meta("scoring") == {"k": 4} and reopened.get_meta("nope", 7) == 7
    assert reopened.problems() == [("p2", "math"), ("p1", "code"), ("p3", "math")]


def _writer(path: str, worker: int, barrier) -> None:
    store = SampleStore(path)
    barrier.wait()
    # every worker writes the same 40 keys (overlapping) plus 40 of its own, in small batches
    for start in range(0, 40, 5):
        store.add([row("shared", "m", i, text=f"w{worker}") for i in range(start, start + 5)])
        store.add([row(f"own{worker}", "m", i) for i in range(start, start + 5)])


def test_concurrent_writer_processes_store_each_key_once(tmp_path):
    path = str(tmp_path / "s.sqlite")
    store = SampleStore(path)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(path, w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(store) == 40 + 4 * 40
    counts = store.counts()
    assert counts[("shared", "m")] == 40 and all(counts[(f"own{w}", "m")] == 40 for w in range(4))
    # one writer won each shared key, whole rows only
    assert all(r["text"].startswith("w") for r in store.samples(problem_ids=["shared"]))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_survives_fork(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    store.add([row("p", "m", 0)])
    ctx = mp.get_context("fork")
    p = ctx.Process(target=store.add, args=([row("p", "m", 1)],))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    store.add([row("p", "m", 2)])
    assert store.counts() == {("p", "m"): 3}
