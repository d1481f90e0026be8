"""Cut a pass-rate table into levels; read tables made here or elsewhere; write and read levels.

A pass-rate table is long (one row per problem × model: ``problem_id, domain, model, pass_rate``
and, from adaptive scoring, ``rate_lo`` / ``rate_hi``) or wide (one pass-rate column per model, as
published difficulty-annotated datasets are). Levels are written one parquet file per level; the
nested ``tests`` and ``meta`` fields are stored as JSON strings so any parquet reader (and
``datasets.load_dataset("parquet", ...)``) takes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..data.problem import Problem
from .rules import Rules, RulesError, decide

LONG_COLUMNS = ("problem_id", "model", "pass_rate")


def to_long(df: pd.DataFrame, model_columns: dict[str, str] | None = None, domain: str | None = None) -> pd.DataFrame:
    """A wide table (one pass-rate column per model) in long form. ``model_columns`` maps model name
    -> column; by default every numeric column other than the id is a model (a ``_pass_rate``
    suffix is dropped from the name)."""
    id_col = next((c for c in ("problem_id", "id", "unique_id") if c in df.columns), None)
    if id_col is None:
        raise RulesError(f"pass-rate table: no id column (expected 'problem_id' or 'id'; columns: {list(df.columns)})")
    if model_columns is None:
        skip = {id_col, "domain", "samples", "k"}
        model_columns = {c[: -len("_pass_rate")] if c.endswith("_pass_rate") else c: c
                         for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])}
    if not model_columns:
        raise RulesError(f"pass-rate table: no numeric pass-rate columns found (columns: {list(df.columns)})")
    rows = []
    for model, col in model_columns.items():
        if col not in df.columns:
            raise RulesError(f"pass-rate table: column {col!r} (model {model!r}) not found")
        bad = df[~df[col].between(0, 1)]
        if len(bad):
            raise RulesError(f"pass-rate table: column {col!r}, row {bad.index[0]}: {bad[col].iloc[0]!r} is not a rate in [0, 1]")
        part = pd.DataFrame({"problem_id": df[id_col].astype(str), "model": model, "pass_rate": df[col].astype(float)})
        part["domain"] = df["domain"].values if "domain" in df.columns else (domain or "math")
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def read_table(path: str | Path, model_columns: dict[str, str] | None = None) -> pd.DataFrame:
    """A pass-rate table from parquet, csv or jsonl, long or wide."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pass-rate table not found: {path} (run `stagerl score` first, or pass --table)")
    name = path.name.lower()
    if name.endswith(".parquet"):
        df = pd.read_parquet(path)
    elif name.endswith(".csv"):
        df = pd.read_csv(path)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        df = pd.read_json(path, lines=True)
    else:
        raise RulesError(f"{path}: unknown table format (expected .parquet, .csv or .jsonl)")
    if all(c in df.columns for c in LONG_COLUMNS):
        return df
    try:
        return to_long(df, model_columns)
    except RulesError as e:
        raise RulesError(f"{path}: {e}") from None


def _bounds(g: pd.DataFrame) -> dict[str, tuple[float, float]]:
    out = {}
    for r in g.itertuples(index=False):
        lo, hi = getattr(r, "rate_lo", None), getattr(r, "rate_hi", None)
        if lo is None or pd.isna(lo):
            lo = hi = r.pass_rate
        if pd.isna(lo):
            continue  # a pair with no samples: unknown
        out[r.model] = (float(lo), float(hi))
    return out


def label_table(table: pd.DataFrame, rules: Rules, on_missing: str = "error") -> pd.DataFrame:
    """One row per problem: ``problem_id, domain, keep, <level>...`` and ``rate_<model>`` columns.
    A verdict the table cannot settle (a model's rate missing) is an error naming problem and model,
    or, with ``on_missing="skip"``, the problem is left out (``attrs["skipped"]`` counts them)."""
    rows, skipped = [], []
    for pid, g in table.groupby("problem_id", sort=False):
        domain = str(g["domain"].iloc[0]) if "domain" in g.columns else "math"
        bounds = _bounds(g)
        verdicts = decide(rules, bounds, str(pid), domain)
        if any(v is None for v in verdicts.values()):
            missing = sorted(set(rules.models.values()) - set(bounds))
            if on_missing == "skip":
                skipped.append(str(pid))
                continue
            raise RulesError(f"problem {pid!r}: the table has no rate for model(s) {missing} that the rules need "
                             f"(table models: {sorted(table['model'].unique())}); bind the rule aliases with "
                             "levels.bind, or score these models")
        row = {"problem_id": str(pid), "domain": domain, **verdicts}
        row.update({f"rate_{r.model}": float(r.pass_rate) for r in g.itertuples(index=False)})
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


def build_levels(table: pd.DataFrame, rules: Rules, problems: list[Problem] | None = None,
                 on_missing: str = "error") -> dict[str, pd.DataFrame]:
    """``{level: DataFrame}``: the problems in each level, with their rates and (given ``problems``)
    their fields."""
    labels = label_table(table, rules, on_missing)
    by_id = {p.id: p for p in problems} if problems is not None else None
    if by_id is not None and len(labels):
        unknown = sorted(set(labels["problem_id"]) - set(by_id))
        if unknown:
            raise RulesError(f"the pass-rate table has {len(unknown)} problem(s) not in the recipe's data, "
                             f"e.g. {unknown[0]!r}")
    levels = {}
    for name in rules.levels:
        part = labels[labels[name] == True] if len(labels) else labels  # noqa: E712
        rate_cols = [c for c in part.columns if c.startswith("rate_")]
        df = part[["problem_id", "domain", *rate_cols]].reset_index(drop=True)
        if by_id is not None:
            df = pd.DataFrame([{**_problem_row(by_id[pid]), **r} for pid, r in zip(df["problem_id"], df.to_dict("records"))])
        levels[name] = df
    return levels


def _problem_row(p: Problem) -> dict:
    return {"id": p.id, "domain": p.domain, "prompt": p.prompt, "answer": p.answer,
            "tests": json.dumps(p.tests) if p.tests is not None else None, "source": p.source,
            "meta": json.dumps(p.meta, default=str)}


def write_levels(levels: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """One ``<level>.parquet`` per level in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in levels.items():
        path = out / f"{name}.parquet"
        df.to_parquet(path, index=False)
        paths.append(path)
    return paths


def read_level(path: str | Path) -> list[Problem]:
    """A level file back as Problems (needs the problem fields: build with ``problems=``)."""
    df = pd.read_parquet(path)
    if "prompt" not in df.columns:
        raise RulesError(f"{path}: holds rates only; build levels with the problems to train on them")
    def opt(v):
        return None if v is None or (isinstance(v, float) and pd.isna(v)) else v

    return [Problem(id=r["id"], domain=r["domain"], prompt=r["prompt"], answer=opt(r["answer"]),
                    tests=json.loads(r["tests"]) if opt(r["tests"]) else None, source=opt(r["source"]) or "",
                    meta=json.loads(r["meta"]) if opt(r["meta"]) else {}) for r in df.to_dict("records")]
