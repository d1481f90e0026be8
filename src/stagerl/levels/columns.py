"""Column names of a pass-rate table made elsewhere, mapped to ours (``levels.table_columns`` in a
recipe, ``--table-columns`` on the command line).

The mapping is *ours -> theirs*. A key is one of our column names (:data:`OURS`: ``problem_id``,
``domain``, ``model``, ``pass_rate``, ...) and the file's column is renamed to it; any other key is
a model name, and its value the column holding that model's pass rates (a wide table), e.g.::

    levels:
      table_columns: {problem_id: question_id, r1-1.5b: acc_small, r1-7b: acc_medium}

A mapped column the table lacks is an error naming the key and the table's columns. Richer forms
(successes and samples in nested fields, published datasets) build on :func:`map_columns`.
"""

from __future__ import annotations

import pandas as pd

from .rules import RulesError

OURS = ("problem_id", "domain", "model", "pass_rate", "rate_lo", "rate_hi", "samples", "successes")
"""Columns of a pass-rate table a mapping can rename to (see ``stagerl.levels.build``)."""


def parse_columns(items: str | list[str] | None) -> dict[str, str]:
    """``"problem_id=qid,r1-7b=acc"`` (or several such strings) -> ``{"problem_id": "qid", "r1-7b": "acc"}``."""
    out: dict[str, str] = {}
    for item in [items] if isinstance(items, str) else items or []:
        for pair in filter(None, (p.strip() for p in item.split(","))):
            ours, sep, theirs = pair.partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise RulesError(f"--table-columns: expected OURS=THEIRS pairs separated by commas, got {pair!r}")
            out[ours.strip()] = theirs.strip()
    return out


def map_columns(df: pd.DataFrame, mapping: dict[str, str],
                where: str = "levels.table_columns") -> tuple[pd.DataFrame, dict[str, str] | None]:
    """``df`` with the mapped columns renamed to ours, and ``{model: column}`` for the keys that are
    model names (None when there are none: the model columns are then found as usual)."""
    have = list(map(str, df.columns))
    missing = [f"{where}.{ours}: column {theirs!r} is not in the table" for ours, theirs in mapping.items()
               if theirs not in have]
    if missing:
        raise RulesError("; ".join(missing) + f" (columns: {', '.join(have)})")
    rename = {theirs: ours for ours, theirs in mapping.items() if ours in OURS}
    clash = [ours for theirs, ours in rename.items() if ours in have and ours != theirs and ours not in rename]
    if clash:
        raise RulesError(f"{where}.{clash[0]}: the table already has a column {clash[0]!r}; map that one, or drop it")
    models = {ours: theirs for ours, theirs in mapping.items() if ours not in OURS}
    return df.rename(columns=rename), (models or None)
