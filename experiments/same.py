#!/usr/bin/env python
"""Does a second run of the experiments reproduce the first? Compare two ``--runs-dir`` folders file by file.

    python experiments/same.py runs/experiments /work/clean/runs/experiments

For every file of the second run that the comparison knows, the first run's file at the same path:

* sample stores (``*.sqlite``: scoring, dev and held-out evaluation samples): the rows paired by
  (problem, model, sample index), equal when text, tokens, finish reason and reward are;
* ``metrics.jsonl``: the rows paired by step, equal in every key but the clock's (seconds, runtimes);
* parquet tables (pass rates, levels): equal as data frames.

A file the second run has not written yet is counted, not compared (a run in progress can be checked).
Prints one line per file that differs and a summary; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

from stagerl.rundir import read_jsonl

CLOCK = re.compile(r"seconds|time|runtime|per_second")
"""Metric keys that measure the clock, not the run."""
SAMPLE_COLUMNS = ("text", "tokens", "finish", "reward")


def same_store(a: Path, b: Path) -> tuple[int, int]:
    """(rows of ``b``, rows of ``b`` equal to ``a``'s row of the same problem, model and index)."""
    con = sqlite3.connect(f"file:{b}?mode=ro", uri=True)
    try:
        con.execute("ATTACH DATABASE ? AS first", (f"file:{a}?mode=ro",))
        equal = " AND ".join(f"x.{c} IS y.{c}" for c in SAMPLE_COLUMNS)
        n, same = con.execute(f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN y.problem_id IS NOT NULL AND {equal} "
                              "THEN 1 ELSE 0 END), 0) FROM main.samples x LEFT JOIN first.samples y "
                              "USING (problem_id, model, idx)").fetchone()
    finally:
        con.close()
    return int(n), int(same)


def _rows(path: Path) -> dict[int, dict]:
    rows = read_jsonl(path)
    return {r["step"]: {k: v for k, v in r.items() if not CLOCK.search(k)} for r in rows}


def same_metrics(a: Path, b: Path) -> tuple[int, int]:
    """(rows of ``b``, rows of ``b`` equal to ``a``'s row of the same step, clock keys aside)."""
    ra, rb = _rows(a), _rows(b)
    return len(rb), sum(ra.get(step) == row for step, row in rb.items())


def same_table(a: Path, b: Path) -> tuple[int, int]:
    """(rows of ``b``, all of them when the two tables are equal, else 0)."""
    import pandas as pd

    ta, tb = pd.read_parquet(a), pd.read_parquet(b)
    return len(tb), len(tb) if ta.equals(tb) else 0


COMPARE = {".sqlite": same_store, ".jsonl": same_metrics, ".parquet": same_table}


def compare(first: Path, second: Path) -> dict:
    """Per kind of file: files compared, files equal, rows compared, rows equal; and what differs."""
    out = {"kinds": {}, "differs": [], "missing": []}
    for b in sorted(second.rglob("*")):
        kind = b.suffix
        if kind not in COMPARE or (kind == ".jsonl" and b.name != "metrics.jsonl") or not b.is_file():
            continue
        rel = b.relative_to(second)
        a = first / rel
        if not a.is_file():
            out["missing"].append(str(rel))
            continue
        n, same = COMPARE[kind](a, b)
        k = out["kinds"].setdefault(kind, {"files": 0, "equal_files": 0, "rows": 0, "equal_rows": 0})
        k["files"] += 1
        k["equal_files"] += n == same
        k["rows"] += n
        k["equal_rows"] += same
        if n != same:
            out["differs"].append(f"{rel}: {n - same} of {n} rows differ")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("first", type=Path, help="the first run's --runs-dir")
    p.add_argument("second", type=Path, help="the second run's --runs-dir (may still be running)")
    args = p.parse_args(argv)
    for d in (args.first, args.second):
        if not d.is_dir():
            p.error(f"{d} is not a folder")
    out = compare(args.first, args.second)
    for line in out["differs"]:
        print("DIFFERS", line)
    for rel in out["missing"]:
        print("ONLY IN SECOND", rel)
    for kind, k in out["kinds"].items():
        print(f"{kind}: {k['equal_files']} of {k['files']} files equal, {k['equal_rows']:,} of {k['rows']:,} rows")
    ok = not out["differs"] and not out["missing"] and bool(out["kinds"])
    print("the second run reproduces the first in every file it has written so far" if ok else
          "the runs differ" if out["kinds"] else "nothing was compared")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
