"""The sample store: every generated sample of a run, append-only, in one SQLite file.

Why SQLite (``<run>/samples.sqlite``) and not JSONL or Parquet shards:

* **Crash safety.** A batch of samples is one transaction; with the write-ahead log a SIGKILL
  (or power loss) at any moment leaves either the whole batch or none of it. A JSONL file can be
  left with a torn last line, and Parquet cannot be appended to at all (one file per batch would
  mean thousands of small files and a manual compaction step).
* **Idempotence.** ``PRIMARY KEY (problem_id, model, idx)`` with ``INSERT OR IGNORE`` makes
  storing a sample twice impossible, whatever a resumed run does: the database enforces it.
* **Several processes.** WAL lets readers (``stagerl levels``, a notebook, the report) read while
  a scorer writes, and several writers queue on the lock (``busy_timeout``) instead of corrupting
  anything. Nothing to install: ``sqlite3`` ships with Python.
* **Queries.** Resuming needs "which indices of which pair are stored", a one-line indexed
  query; the pass-rate table is a ``GROUP BY``. ``to_frame`` / ``export_parquet`` hand the rows to
  pandas / Arrow for analysis and sharing.

A sample row: ``problem_id, model, idx`` (sample index 0..k-1 within the pair), ``domain``,
``text``, ``tokens``, ``finish`` (``stop`` | ``length``), ``reward``, ``seconds`` (this sample's
share of its generation call's wall time) and ``created`` (unix time it was stored). The store is
generic: scoring and evaluation (``eval/<checkpoint>/<bench>.sqlite``) use the same class. A small
``meta`` key/value table (JSON values) records what produced the samples, and a ``problems``
table remembers the problems in the order they were first registered, so the pass-rate table can
be rebuilt from the file alone; ``problem_versions`` records the fingerprints of each problem's
prompt and of its answer/tests, so a changed problem is never reused silently (scoring re-grades
the stored samples of a problem whose answer or tests changed: ``set_rewards``). Text that is not
valid Unicode (a lone surrogate from a server) is stored with U+FFFD in its place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .engines.base import safe_text

COLUMNS = ("problem_id", "model", "idx", "domain", "text", "tokens", "finish", "reward", "seconds", "created")
"""Columns of a sample row, in table order."""
FINISH_VALUES = ("stop", "length")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    problem_id TEXT NOT NULL,
    model      TEXT NOT NULL,
    idx        INTEGER NOT NULL CHECK (idx >= 0),
    domain     TEXT NOT NULL DEFAULT '',
    text       TEXT NOT NULL,
    tokens     INTEGER NOT NULL,
    finish     TEXT NOT NULL,
    reward     REAL NOT NULL,
    seconds    REAL NOT NULL DEFAULT 0,
    created    REAL NOT NULL,
    PRIMARY KEY (problem_id, model, idx)
);
CREATE INDEX IF NOT EXISTS samples_model ON samples (model, problem_id);
CREATE TABLE IF NOT EXISTS problems (
    pos        INTEGER PRIMARY KEY AUTOINCREMENT,
    problem_id TEXT NOT NULL UNIQUE,
    domain     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problem_versions (
    problem_id TEXT PRIMARY KEY,
    prompt     TEXT NOT NULL,
    grading    TEXT NOT NULL
);
"""


class StoreError(ValueError):
    """A row handed to the store is malformed; the message names the row and field."""


class SampleStore:
    """An append-only store of generated samples in the SQLite file ``path`` (only re-grading,
    ``set_rewards``, and ``delete_problems`` change stored rows).

    Safe to open from several processes at once (and across ``fork``: each process opens its
    own connection on first use). Rows already stored are silently kept as they were.
    """

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db()  # create the schema now, so a bad path fails here

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable against process kill
            conn.executescript(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> "SampleStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SampleStore({str(self.path)!r})"

    # ------------------------------------------------------------------ writing

    def add(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store ``rows`` (mappings with the ``COLUMNS`` keys; ``domain``, ``seconds`` and
        ``created`` optional) in one transaction; return how many were new.

        A row whose ``(problem_id, model, idx)`` is already stored is ignored (idempotent). A bad
        row raises ``StoreError`` naming it, and nothing of the batch is stored.
        """
        now = time.time()
        values = [_row_values(i, r, now) for i, r in enumerate(rows)]
        if not values:
            return 0
        db = self._db()
        with _transaction(db):
            before = db.total_changes
            db.executemany(
                f"INSERT OR IGNORE INTO samples ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                values,
            )
            return db.total_changes - before

    def register_problems(self, items: Iterable[tuple[str, str]]) -> None:
        """Remember ``(problem_id, domain)`` pairs in first-seen order (already known ones are kept)."""
        db = self._db()
        with _transaction(db):
            db.executemany("INSERT OR IGNORE INTO problems (problem_id, domain) VALUES (?, ?)", list(items))

    def set_meta(self, key: str, value: Any) -> None:
        """Record a JSON-serialisable ``value`` under ``key`` (replacing any previous value)."""
        db = self._db()
        with _transaction(db):
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def set_versions(self, items: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(problem_id, prompt fingerprint, grading fingerprint)``: what the stored
        samples of each problem were generated from and graded against."""
        db = self._db()
        with _transaction(db):
            db.executemany("INSERT OR REPLACE INTO problem_versions VALUES (?, ?, ?)", list(items))

    def set_rewards(self, items: Iterable[tuple[str, str, int, float]]) -> int:
        """Re-grade stored samples: ``(problem_id, model, idx, reward)``, one transaction."""
        db = self._db()
        with _transaction(db):
            before = db.total_changes
            db.executemany("UPDATE samples SET reward = ? WHERE problem_id = ? AND model = ? AND idx = ?",
                           [(float(r), p, m, int(i)) for p, m, i, r in items])
            return db.total_changes - before

    def delete_problems(self, problem_ids: Iterable[str]) -> int:
        """Delete every stored sample (and the recorded version) of these problems; return the count."""
        ids = [(p,) for p in problem_ids]
        db = self._db()
        with _transaction(db):
            before = db.total_changes
            db.executemany("DELETE FROM samples WHERE problem_id = ?", ids)
            n = db.total_changes - before
            db.executemany("DELETE FROM problem_versions WHERE problem_id = ?", ids)
            return n

    def delete_models(self, models: Iterable[str]) -> int:
        """Delete every stored sample of these model names (e.g. dev evaluations a resume redoes)."""
        names = [(m,) for m in models]
        db = self._db()
        with _transaction(db):
            before = db.total_changes
            db.executemany("DELETE FROM samples WHERE model = ?", names)
            return db.total_changes - before

    # ------------------------------------------------------------------ reading

    def versions(self) -> dict[str, tuple[str, str]]:
        """problem_id -> (prompt fingerprint, grading fingerprint) as recorded by ``set_versions``."""
        return {p: (a, b) for p, a, b in self._db().execute("SELECT problem_id, prompt, grading FROM problem_versions")}

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value recorded under ``key``, or ``default``."""
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def problems(self) -> list[tuple[str, str]]:
        """Registered ``(problem_id, domain)`` pairs in registration order."""
        return [tuple(r) for r in self._db().execute("SELECT problem_id, domain FROM problems ORDER BY pos")]

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Run a read-only SQL query (e.g. an aggregate over ``samples``) and return its rows."""
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            raise StoreError(f"query: only SELECT statements are allowed, got {sql[:40]!r}")
        return self._db().execute(sql, args).fetchall()

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def counts(self, model: str | None = None) -> dict[tuple[str, str], int]:
        """Stored samples per ``(problem_id, model)``, optionally for one model."""
        sql, args = "SELECT problem_id, model, COUNT(*) FROM samples", ()
        if model is not None:
            sql, args = sql + " WHERE model = ?", (model,)
        return {(p, m): int(n) for p, m, n in self._db().execute(sql + " GROUP BY problem_id, model", args)}

    def indices(self, model: str) -> dict[str, dict[int, float]]:
        """For ``model``: problem_id -> {sample index: reward} of every stored sample."""
        out: dict[str, dict[int, float]] = {}
        for pid, idx, reward in self._db().execute(
            "SELECT problem_id, idx, reward FROM samples WHERE model = ?", (model,)
        ):
            out.setdefault(pid, {})[int(idx)] = float(reward)
        return out

    def pair_stats(self, k: int, success: float) -> list[tuple]:
        """Per (problem, model), over sample indices < ``k``: ``(problem_id, model, samples,
        successes (reward >= success), mean reward, mean tokens, max tokens, truncated, domain)``."""
        return self._db().execute(
            "SELECT problem_id, model, COUNT(*), SUM(reward >= ?), AVG(reward), AVG(tokens), MAX(tokens), "
            "SUM(finish = 'length'), MAX(domain) FROM samples WHERE idx < ? GROUP BY problem_id, model",
            (float(success), int(k))).fetchall()

    def model_totals(self) -> list[tuple]:
        """Per model, over every stored sample: ``(model, samples, tokens, seconds, truncated)``."""
        return self._db().execute(
            "SELECT model, COUNT(*), SUM(tokens), SUM(seconds), SUM(finish = 'length') FROM samples GROUP BY model"
        ).fetchall()

    def samples(
        self, model: str | None = None, problem_ids: Iterable[str] | None = None, with_rowid: bool = False
    ) -> list[dict[str, Any]]:
        """Stored rows as dicts, ordered by problem, model and index; filter by model and/or ids.

        ``with_rowid`` adds SQLite's ``rowid`` (its storage order) to each row.
        """
        ids = None if problem_ids is None else list(problem_ids)
        many = ids is not None and len(ids) > 500  # past SQLite's variable limit: filter here
        where, args = _where(model, None if many else ids)
        cols = ("rowid",) + COLUMNS if with_rowid else COLUMNS
        cur = self._db().execute(
            f"SELECT {', '.join(cols)} FROM samples{where} ORDER BY problem_id, model, idx", args
        )
        rows = [dict(zip(cols, r)) for r in cur]
        if many:
            keep = set(ids)
            rows = [r for r in rows if r["problem_id"] in keep]
        return rows

    def to_frame(self, model: str | None = None, problem_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """All (or the filtered) rows as a pandas DataFrame with the ``COLUMNS`` columns."""
        rows = self.samples(model, problem_ids)
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def export_parquet(self, path: str | Path) -> Path:
        """Write every row to the Parquet file ``path`` (a folder gets ``samples.parquet``)."""
        path = Path(path)
        if path.suffix != ".parquet":
            path = path / "samples.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(path, index=False)
        return path


# ---------------------------------------------------------------------- helpers


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error): one atomic write."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _where(model: str | None, problem_ids: Iterable[str] | None) -> tuple[str, tuple]:
    clauses, args = [], []
    if model is not None:
        clauses.append("model = ?")
        args.append(model)
    if problem_ids is not None:
        ids = list(problem_ids)
        if not ids:
            return " WHERE 0", ()
        clauses.append(f"problem_id IN ({', '.join('?' * len(ids))})")
        args.extend(ids)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _row_values(i: int, row: Mapping[str, Any], now: float) -> tuple:
    def bad(field: str, msg: str) -> StoreError:
        return StoreError(f"sample row {i} (problem {row.get('problem_id')!r}, model {row.get('model')!r}, "
                          f"idx {row.get('idx')!r}): field '{field}' {msg}")

    for f in ("problem_id", "model", "idx", "text", "tokens", "finish", "reward"):
        if f not in row:
            raise bad(f, "is missing")
    for f in ("problem_id", "model"):
        if not isinstance(row[f], str) or not row[f]:
            raise bad(f, f"must be a non-empty string, got {row[f]!r}")
    if not isinstance(row["text"], str):
        raise bad("text", f"must be a string, got {type(row['text']).__name__}")
    for f in ("idx", "tokens"):
        v = row[f]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise bad(f, f"must be an integer >= 0, got {v!r}")
    if row["finish"] not in FINISH_VALUES:
        raise bad("finish", f"must be one of {FINISH_VALUES}, got {row['finish']!r}")
    try:
        reward = float(row["reward"])
    except (TypeError, ValueError):
        raise bad("reward", f"must be a number, got {row['reward']!r}") from None
    if reward != reward:
        raise bad("reward", "is NaN")
    return (row["problem_id"], row["model"], int(row["idx"]), str(row.get("domain") or ""), safe_text(row["text"]),
            int(row["tokens"]), row["finish"], reward, float(row.get("seconds") or 0.0),
            float(row.get("created") or now))
