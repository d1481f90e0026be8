"""The checks a pass-rate table passes before any level is built. ``stagerl check --table`` and
``stagerl levels`` run the same ones (through ``stagerl.checks``), so a bad table stops both in
seconds, before the run folder is touched:

* the file reads (a known format, UTF-8, not empty) and its mapped columns exist
  (:mod:`stagerl.levels.columns`); every rate is a number in [0, 1];
* every rate a level rule needs is given: a blank or NaN cell of a model the rules use is an error
  naming the file, row and column (in a stagerl table a NaN rate with ``rate_lo`` / ``rate_hi``
  bounds is fine: adaptive scoring settled that pair without drawing it);
* every id of the table is a problem of the recipe's data: one that matches none is an error naming
  the file, row and column; problems with no row in the table are counted, a warning (they are in
  no level), or an error with ``levels.require_all`` / ``--require-all``;
* the levels build from it (one domain per problem, the table's agreeing with the problems', every
  verdict settled), and, for an export, at least one level has problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .build import _ID_COLUMNS, LONG_COLUMNS, _auto_model_columns, build_levels, read_frame, to_long
from .columns import map_columns
from .rules import Rules, RulesError

SHOWN = 3
"""Places named per kind of problem (the count says how many there are)."""


@dataclass
class TableCheck:
    """What :func:`check_table` found: the table in long form (None if it could not be read),
    errors and warnings (each naming the file), and the levels built from it (when it passed)."""

    table: pd.DataFrame | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    levels: dict | None = None
    missing: list[str] = field(default_factory=list)
    """Ids of the problems that have no row in the table."""


def row_label(path: Path, i: int) -> str:
    """Where data row ``i`` (0-based) is in the file: ``line N`` of a csv (after the header) or
    JSON Lines file, ``row i`` of a parquet file."""
    name = path.name.lower()
    if name.endswith(".csv"):
        return f"line {i + 2}"
    if name.endswith((".jsonl", ".jsonl.gz")):
        return f"line {i + 1}"
    return f"row {i}"


def _places(path: Path, rows: list[int], col: str, ids: pd.Series | None) -> str:
    shown = [f"{row_label(path, i)}" + (f" (problem {str(ids.iloc[i])!r})" if ids is not None else "")
             for i in rows[:SHOWN]]
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return f"column {col!r}, {', '.join(shown)}{more}"


def check_table(path: str | Path, rules: Rules | None, problems: list | None = None,
                columns: dict[str, str] | None = None, require_all: bool = False,
                export: bool = False) -> TableCheck:
    """Every problem of the pass-rate table at ``path`` for these ``rules`` and ``problems`` (the
    recipe's; None skips the checks that need them). See the module docstring."""
    path, out = Path(path), TableCheck()
    try:
        frame = read_frame(path)
        model_columns = None
        if columns:
            frame, model_columns = map_columns(frame, columns)
        frame = frame.reset_index(drop=True)
        out.table = to_long(frame, model_columns)
    except (RulesError, OSError) as e:
        msg = str(e)
        out.errors.append(msg if str(path) in msg else f"{path}: {msg}")
        return out
    used = set(rules.models.values()) if rules is not None else None
    _blank_rates(path, frame, model_columns, used, out)
    if problems is not None:
        _ids(path, frame, {p.id for p in problems}, [p.id for p in problems], require_all, out)
    if out.errors or rules is None or used - set(out.table["model"].astype(str)):
        return out  # a rule model the table lacks: stagerl.checks names the alias and its binding
    try:
        out.levels = build_levels(out.table, rules, problems)
    except RulesError as e:
        out.errors.append(f"{path}: {e}")
        return out
    if export and not any(len(df) for df in out.levels.values()):
        out.errors.append(f"{path}: every level is empty ({', '.join(out.levels)}) under these rules: "
                          "there is nothing to export")
    return out


def _blank_rates(path: Path, frame: pd.DataFrame, model_columns: dict[str, str] | None, used: set | None,
                 out: TableCheck) -> None:
    if all(c in frame.columns for c in LONG_COLUMNS):
        ids = frame["problem_id"]
        rate = pd.to_numeric(frame["pass_rate"], errors="coerce")
        bounded = frame[["rate_lo", "rate_hi"]].notna().all(axis=1) if {"rate_lo", "rate_hi"} <= set(frame.columns) \
            else pd.Series(False, index=frame.index)
        needed = frame["model"].astype(str).isin(used) if used is not None else pd.Series(True, index=frame.index)
        bad = list(frame.index[rate.isna() & frame["pass_rate"].isna() & ~bounded & needed])
        if bad:
            out.errors.append(f"{path}: {len(bad)} blank pass rate(s) of models the level rules use, "
                              f"{_places(path, bad, 'pass_rate', ids)}; give every rate as a number in [0, 1] "
                              "(or leave the problem out of the table)")
        _blank_ids(path, ids, "problem_id", out)
        return
    id_col = next(c for c in _ID_COLUMNS if c in frame.columns)  # to_long checked there is one
    ids = frame[id_col]
    cols = model_columns or _auto_model_columns(frame, id_col)
    for model, col in cols.items():
        if used is not None and str(model) not in used:
            continue
        bad = list(frame.index[frame[col].isna()])
        if bad:
            out.errors.append(f"{path}: {len(bad)} blank pass rate(s) of model {str(model)!r}, which the level "
                              f"rules use: {_places(path, bad, col, ids)}; give every rate as a number in [0, 1] "
                              "(or leave the problem out of the table)")
    _blank_ids(path, ids, id_col, out)


def _blank_ids(path: Path, ids: pd.Series, col: str, out: TableCheck) -> None:
    bad = list(ids.index[ids.isna() | (ids.astype(str).str.strip() == "")])
    if bad:
        out.errors.append(f"{path}: {len(bad)} row(s) without a problem id, {_places(path, bad, col, None)}")


def _ids(path: Path, frame: pd.DataFrame, known: set[str], order: list[str], require_all: bool,
         out: TableCheck) -> None:
    col = "problem_id" if "problem_id" in frame.columns else next(c for c in _ID_COLUMNS if c in frame.columns)
    ids = frame[col].astype(str)
    strangers = list(frame.index[~ids.isin(known) & frame[col].notna()])
    if strangers:
        first = ids.loc[strangers].drop_duplicates()
        out.errors.append(f"{path}: {len(first)} id(s) of the table match no problem of the recipe's data "
                          f"({len(known)} problems), {_places(path, list(first.index), col, ids)}; "
                          "fix the ids, or list the data they belong to under `data`")
    present = set(ids)
    out.missing = [pid for pid in order if pid not in present]
    if out.missing:
        shown = ", ".join(map(repr, out.missing[:SHOWN])) + (f" and {len(out.missing) - SHOWN} more"
                                                             if len(out.missing) > SHOWN else "")
        msg = (f"{path}: {len(out.missing)} of the recipe's {len(order)} problems have no row in the table "
               f"({shown}); they are in no level")
        if require_all:
            out.errors.append(msg + " (levels.require_all is set)")
        else:
            out.warnings.append(msg + "; set levels.require_all (or pass --require-all) to make this an error")
