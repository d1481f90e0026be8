"""Load problems from files (jsonl, jsonl.gz, json, parquet), Hugging Face datasets, built-in sets.

Every row becomes a ``Problem``. A malformed row raises ``LoadError`` naming the file, the row and
the field, after the whole source is read (the message counts and names the other bad rows, so one
run finds them all); nothing is dropped silently. With ``skip_bad=True`` bad rows are skipped, a warning names
the first few, and the count is on the returned list (``problems.skipped``).
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

from .problem import Problem, ProblemError

# our field -> columns tried in order when no mapping is given
DEFAULT_COLUMNS = {
    "id": ("id", "problem_id", "unique_id", "task_id"),
    "prompt": ("prompt", "problem", "question"),
    "answer": ("answer", "ground_truth", "final_answer"),
    "tests": ("tests", "input_output"),
    "domain": ("domain",),
    "source": ("source",),
}


class LoadError(ValueError):
    """A row of a problem file cannot become a Problem. The message says where and what to do."""


class Problems(list):
    """A list of problems that also says how many bad rows were skipped (``skip_bad=True``)."""

    skipped: int = 0
    skipped_rows: list[str]

    def __init__(self, items: Iterable[Problem] = (), skipped_rows: list[str] | None = None):
        super().__init__(items)
        self.skipped_rows = skipped_rows or []
        self.skipped = len(self.skipped_rows)


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(row label, row) pairs: 1-based line numbers for JSON Lines, 0-based indices otherwise."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield f"line {n}", LoadError(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                                                 "save the file as UTF-8")
                    continue
                if not line.strip():
                    continue
                try:
                    yield f"line {n}", json.loads(line)
                except json.JSONDecodeError as e:
                    yield f"line {n}", LoadError(f"not valid JSON ({e.msg} at column {e.colno})")
    elif name.endswith((".json", ".json.gz")):
        from ..yamlfile import YamlFileError, decode

        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as f:
            try:
                data = json.loads(decode(f.read(), str(path)))
            except YamlFileError as e:
                raise LoadError(str(e)) from None
            except json.JSONDecodeError as e:
                raise LoadError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise LoadError(f"{path}: expected a JSON list of rows or {{\"data\": [...]}}, got {type(data).__name__}")
        yield from ((f"row {i}", r) for i, r in enumerate(data))
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from ((f"row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist()))
    else:
        raise LoadError(f"{path}: unknown file type; expected .jsonl, .jsonl.gz, .json or .parquet")


def _pick(row: dict, ours: str, fields: dict[str, str]) -> tuple[str | None, Any]:
    if ours in fields:
        col = fields[ours]
        if col not in row:
            raise LoadError(f"field '{ours}' is mapped to column '{col}', which this row lacks "
                            f"(columns: {', '.join(sorted(row))})")
        return col, row[col]
    for col in DEFAULT_COLUMNS.get(ours, (ours,)):
        if col in row and row[col] is not None:
            return col, row[col]
    return None, None


def row_to_problem(row: Any, fields: dict[str, str] | None = None, domain: str | None = None,
                   default_id: str = "", source: str = "") -> Problem:
    """One row -> Problem; raises ``LoadError`` naming the field that is wrong."""
    if isinstance(row, LoadError):
        raise row
    if not isinstance(row, dict):
        raise LoadError(f"expected an object with named fields, got {type(row).__name__}")
    fields = fields or {}
    cols: dict[str, str] = {}  # our field -> the column it came from
    values: dict[str, Any] = {}
    # a domain given by the caller wins; the file's 'domain' column (if any) then stays in meta
    for ours in ("id", "prompt", "answer", "tests", "source") + (() if domain else ("domain",)):
        col, val = _pick(row, ours, fields)
        if col is not None:
            cols[ours], values[ours] = col, val
    tests = values.get("tests")
    if isinstance(tests, str):  # APPS/TACO store input_output as a JSON string
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError as e:
            raise LoadError(f"field 'tests' (column '{cols['tests']}'): not valid JSON ({e.msg})") from None
    answer = values.get("answer")
    if isinstance(answer, float) and answer.is_integer():
        answer = str(int(answer))  # 27.0 -> "27"
    elif isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    dom = domain or values.get("domain") or ("code" if tests is not None else "math" if answer is not None else None)
    if dom is None:
        tried = lambda ours: fields[ours] if ours in fields else "/".join(DEFAULT_COLUMNS[ours])  # noqa: E731
        raise LoadError(f"field 'answer' is missing (column {tried('answer')}; a math row needs its answer, a code "
                        f"row its 'tests' (column {tried('tests')}) or a 'domain'); columns of this row: "
                        f"{', '.join(map(str, row)) or 'none'}. Map other column names with fields={{...}}")
    # columns we did not use (including an answer on a code row or tests on a math row) go to meta
    unused = {"answer"} if dom == "code" else {"tests"} if dom == "math" else set()
    used = {col for ours, col in cols.items() if ours not in unused}
    pid = values.get("id", default_id)
    meta = {k: v for k, v in row.items() if k not in used}
    return Problem(id=str(pid) if pid is not None else "", domain=dom, prompt=values.get("prompt"),
                   answer=answer if dom == "math" else None, tests=tests if dom == "code" else None,
                   source=str(values.get("source") or source), meta=meta)


def _collect(rows: Iterable[tuple[str, Any]], where: str, fields, domain, skip_bad: bool, source: str,
             id_prefix: str) -> Problems:
    bad_keys = sorted(set(fields or {}) - set(DEFAULT_COLUMNS))
    if bad_keys:  # a typo in the mapping would otherwise be ignored silently
        raise ValueError(f"{where}: fields: unknown field '{bad_keys[0]}' (ours: {', '.join(DEFAULT_COLUMNS)})")
    out: list[Problem] = []
    bad: list[str] = []
    labels: list[str] = []
    n_bad = 0
    seen: dict[str, str] = {}
    for label, row in rows:
        try:
            p = row_to_problem(row, fields, domain, default_id=f"{id_prefix}-{label.split()[-1]}", source=source)
            if p.id in seen:
                raise LoadError(f"field 'id': duplicate id {p.id!r} (first seen at {seen[p.id]})")
        except (LoadError, ProblemError) as e:
            n_bad += 1
            if skip_bad or n_bad <= 6:  # an error names the first six (a wrong mapping makes every row bad)
                bad.append(f"{where}: {label}: {e}")
                labels.append(label)
            continue
        seen[p.id] = label
        out.append(p)
    if bad and not skip_bad:  # every row is read first, so one run counts every bad row
        more = (f" ({n_bad - 1} more bad row(s): {', '.join(labels[1:6])}" + (", ..." if n_bad > 6 else "")
                + ")") if n_bad > 1 else ""
        raise LoadError(f"{bad[0]}{more}. Fix the row, map its columns to ours with the source's fields "
                        "(a recipe: fields: {ours: theirs}), or skip bad rows with skip_bad "
                        "(a recipe: skip_bad: true; Python: skip_bad=True)")
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        warnings.warn(f"skipped {len(bad)} bad row(s): {shown}", stacklevel=3)
    return Problems(out, bad)


def load_file(path: str | Path, domain: str | None = None, fields: dict[str, str] | None = None,
              skip_bad: bool = False) -> Problems:
    """Problems from a ``.jsonl``, ``.jsonl.gz``, ``.json`` (list or ``{"data": [...]}``) or
    ``.parquet`` file. ``fields`` maps our field names to the file's columns, e.g.
    ``{"prompt": "question", "tests": "input_output"}``; unmapped columns go to ``meta``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"problem file not found: {path}")
    stem = path.name.split(".")[0]
    return _collect(_rows(path), str(path), fields, domain, skip_bad, source=stem, id_prefix=stem)


def load_hf(name: str, config: str | None = None, split: str = "train", fields: dict[str, str] | None = None,
            domain: str | None = None, skip_bad: bool = False) -> Problems:
    """Problems from a Hugging Face dataset (hub id, or a local dataset folder) via ``datasets``."""
    import datasets

    ds = datasets.load_dataset(name, config, split=split)
    where = f"{name}" + (f" ({config})" if config else "") + f" split {split}"
    return _collect(((f"row {i}", r) for i, r in enumerate(ds)), where, fields, domain, skip_bad,
                    source=name, id_prefix=Path(name).name)


SOURCE_KEYS = ("builtin", "path", "hf")
# the optional keys each kind of source takes (besides ``limit``)
SOURCE_OPTIONS = {
    "builtin": ("n", "seed"),
    "path": ("fields", "domain", "skip_bad"),
    "hf": ("config", "split", "fields", "domain", "skip_bad"),
}


def load_source(spec: str | dict) -> Problems:
    """The one entry point recipes use. ``spec`` is ``"builtin:NAME"``, ``"hf:ORG/NAME"``, a file
    path, or a dict with exactly one of ``builtin`` / ``path`` / ``hf``, an optional ``limit``
    (the first N problems) and the options of its kind: ``n``, ``seed`` for generated built-ins;
    ``fields``, ``domain``, ``skip_bad`` for files; the same plus ``config``, ``split`` for HF
    datasets. A key that does not apply is an error, not silently ignored."""
    from .builtin import load_builtin

    if isinstance(spec, str):
        kind, sep, rest = spec.partition(":")
        spec = {kind: rest} if sep and kind in ("builtin", "hf") else {"path": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"data source: expected a string or a mapping, got {type(spec).__name__}")
    spec = dict(spec)
    kinds = [k for k in SOURCE_KEYS if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"data source {spec}: give exactly one of {', '.join(SOURCE_KEYS)}")
    kind = kinds[0]
    allowed = {kind, "limit", *SOURCE_OPTIONS[kind]}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"data source {spec}: unknown key '{unknown[0]}' for a {kind} source "
                         f"(valid: {', '.join(sorted(allowed))})")
    limit = spec.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"data source {spec}: 'limit' must be a positive integer, got {limit!r}")
    if kind == "builtin":
        gen = {k: spec[k] for k in ("n", "seed") if k in spec}
        problems = Problems(load_builtin(spec["builtin"], **gen))
    elif kind == "path":
        problems = load_file(spec["path"], spec.get("domain"), spec.get("fields"), spec.get("skip_bad", False))
    else:
        problems = load_hf(spec["hf"], spec.get("config"), spec.get("split", "train"), spec.get("fields"),
                           spec.get("domain"), spec.get("skip_bad", False))
    if limit is not None:
        problems = Problems(problems[:limit], problems.skipped_rows)
    return problems
