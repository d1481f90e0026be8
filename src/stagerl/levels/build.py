"""Cut a pass-rate table into levels; read tables made here or elsewhere; write and read levels.

A pass-rate table is *long* (one row per problem × model: ``problem_id, domain, model, pass_rate``
and, from adaptive scoring, ``rate_lo`` / ``rate_hi``) or *wide* (one pass-rate column per model, as
published difficulty-annotated datasets are); :func:`to_long` turns the second into the first.

A level is a DataFrame with one row per problem: ``problem_id, domain, rate_<model>...`` or, built
with the problems, the Problem fields ``id, domain, prompt, answer, tests, source, meta`` followed by
the ``rate_<model>`` columns. From a stagerl pass-rate table each rate comes with
``samples_<model>`` (the samples it is over: fewer than k where adaptive scoring stopped the pair
early) and ``rate_lo_<model>`` / ``rate_hi_<model>`` (bounds of the k-sample rate). In the parquet files ``tests`` and ``meta`` are JSON strings (so any
parquet reader, and ``datasets.load_dataset("parquet", ...)``, takes them); :func:`read_level`
turns the rows back into Problems.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.problem import ROW_FIELDS, Problem, ProblemError
from .rules import Rules, RulesError, decide, relevant_models

LONG_COLUMNS = ("problem_id", "model", "pass_rate")
PROBLEM_COLUMNS = ROW_FIELDS
_ID_COLUMNS = ("problem_id", "id", "unique_id")
_NOT_MODELS = {"domain", "samples", "successes", "k", "index", "idx"}


def _auto_model_columns(df: pd.DataFrame, id_col: str) -> dict[str, str]:
    """Model name -> column: the ``*_pass_rate`` / ``pass_rate_*`` columns if there are any, else
    every numeric column other than the id and known count columns."""
    marked = {}
    for c in map(str, df.columns):
        if c.endswith("_pass_rate") and c != "_pass_rate":
            marked[c[: -len("_pass_rate")]] = c
        elif c.startswith("pass_rate_") and c != "pass_rate_":
            marked[c[len("pass_rate_"):]] = c
    if marked:
        return marked
    return {str(c): str(c) for c in df.columns if c != id_col and str(c) not in _NOT_MODELS
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}


def _check_rates(df: pd.DataFrame, col: str, id_col: str, what: str) -> None:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = df[(values.notna() & ~values.between(0, 1)) | (values.isna() & df[col].notna())]
    if len(bad):
        i = bad.index[0]
        v = df.at[i, col]
        shown = repr(v) if isinstance(v, str) else str(v)
        raise RulesError(f"{what}: column {col!r}, row {i} (problem {str(df.at[i, id_col])!r}): "
                         f"{shown} is not a pass rate in [0, 1]")


def to_long(df: pd.DataFrame, model_columns: dict[str, str] | None = None, domain: str | None = None) -> pd.DataFrame:
    """A pass-rate table in long form: ``problem_id, domain, model, pass_rate`` (plus any bounds).

    A long table (``problem_id, model, pass_rate``) is checked and returned as is. A wide one has
    an id column (``problem_id``, ``id`` or ``unique_id``) and one pass-rate column per model:
    ``model_columns`` maps model name -> column; by default the ``<model>_pass_rate`` (or
    ``pass_rate_<model>``) columns, or else every numeric column. NaN rates are left out (unknown).
    ``domain`` fills a missing ``domain`` column (left empty otherwise, for the problems to fill)."""
    what = "pass-rate table"
    if all(c in df.columns for c in LONG_COLUMNS):
        out = df.copy()
        out["problem_id"] = out["problem_id"].astype(str)
        _check_rates(out, "pass_rate", "problem_id", what)
    else:
        id_col = next((c for c in _ID_COLUMNS if c in df.columns), None)
        if id_col is None:
            raise RulesError(f"{what}: no id column (expected one of {list(_ID_COLUMNS)}; columns: {list(df.columns)})")
        if model_columns is None:
            model_columns = _auto_model_columns(df, id_col)
        if not model_columns:
            raise RulesError(f"{what}: no pass-rate columns found (columns: {list(df.columns)}); "
                             "name them <model>_pass_rate or pass model_columns={model: column}")
        parts = []
        for model, col in model_columns.items():
            if col not in df.columns:
                raise RulesError(f"{what}: column {col!r} (model {model!r}) not found (columns: {list(df.columns)})")
            _check_rates(df, col, id_col, what)
            part = pd.DataFrame({"problem_id": df[id_col].astype(str), "model": str(model),
                                 "pass_rate": pd.to_numeric(df[col]).astype(float)})
            if "domain" in df.columns:
                part["domain"] = df["domain"].values
            parts.append(part[part["pass_rate"].notna()])
        out = pd.concat(parts, ignore_index=True)
    if "domain" not in out.columns:
        out["domain"] = domain
    elif domain is not None:
        out["domain"] = out["domain"].fillna(domain)
    dup = out[out.duplicated(["problem_id", "model"], keep=False)]
    if len(dup):
        pid, model = dup["problem_id"].iloc[0], dup["model"].iloc[0]
        n = int(((dup["problem_id"] == pid) & (dup["model"] == model)).sum())
        raise RulesError(f"{what}: problem {pid!r} has {n} rows for model {model!r}; expected one per (problem, model)")
    return out


def read_frame(path: str | Path) -> pd.DataFrame:
    """A table file (parquet, csv or jsonl) as it is, before any check; an unreadable, empty or
    non-UTF-8 file is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pass-rate table not found: {path} (run `stagerl score` first, or pass --table)")
    if path.is_dir():
        raise RulesError(f"{path}: is a folder, not a pass-rate table file")
    name = path.name.lower()
    if not name.endswith((".parquet", ".csv", ".jsonl", ".jsonl.gz")):
        raise RulesError(f"{path}: unknown table format (expected .parquet, .csv or .jsonl)")
    if path.stat().st_size == 0:
        raise RulesError(f"{path}: the file is empty (expected a pass-rate table: a header and one row per "
                         "problem and model, or per problem with one column per model)")
    try:
        if name.endswith(".parquet"):
            df = pd.read_parquet(path)
        elif name.endswith(".csv"):
            df = pd.read_csv(path, encoding="utf-8")
        else:
            df = pd.read_json(path, lines=True, encoding="utf-8")
    except UnicodeDecodeError as e:
        from ..yamlfile import YamlFileError, decode

        try:  # the line and column of the first bad byte
            decode(path.read_bytes(), str(path)) if not name.endswith(".gz") else None
        except YamlFileError as where:
            raise RulesError(str(where)) from None
        raise RulesError(f"{path}: not UTF-8 text ({e.reason}); save the file as UTF-8") from None
    except (ValueError, OSError) as e:  # pandas' and pyarrow's parse errors are ValueErrors
        kind = "parquet" if name.endswith(".parquet") else "CSV" if name.endswith(".csv") else "JSON Lines"
        raise RulesError(f"{path}: cannot read it as a {kind} table: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not len(df):
        raise RulesError(f"{path}: the table has no rows (columns: {list(map(str, df.columns))})")
    return df


def read_table(path: str | Path, model_columns: dict[str, str] | None = None, domain: str | None = None,
               columns: dict[str, str] | None = None) -> pd.DataFrame:
    """A pass-rate table from parquet, csv or jsonl, long or wide, in long form (see :func:`to_long`).
    ``columns`` renames the file's columns to ours first (see :func:`stagerl.levels.columns.map_columns`)."""
    path = Path(path)
    df = read_frame(path)
    try:
        if columns:
            from .columns import map_columns

            df, mapped = map_columns(df, columns)
            model_columns = model_columns or mapped
        return to_long(df, model_columns, domain)
    except RulesError as e:
        raise RulesError(f"{path}: {e}") from None


def _problems_by_id(problems: list[Problem] | pd.DataFrame) -> dict[str, Problem]:
    if isinstance(problems, pd.DataFrame):
        rows, problems = problems.to_dict("records"), []
        for i, r in enumerate(rows):
            try:
                problems.append(Problem.from_row(r))
            except (ProblemError, TypeError, KeyError, json.JSONDecodeError) as e:
                raise RulesError(f"problems, row {i} (id {r.get('id')!r}): {e}") from None
    by_id: dict[str, Problem] = {}
    for p in problems:
        if p.id in by_id:
            raise RulesError(f"problems: id {p.id!r} appears twice")
        by_id[p.id] = p
    return by_id


def label_table(table: pd.DataFrame, rules: Rules, on_missing: str = "error",
                domains: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per problem: ``problem_id, domain, keep, <level>...`` and ``rate_<model>`` columns.

    A pair's ``rate_lo`` / ``rate_hi`` (adaptive scoring) are used as bounds when present, else its
    ``pass_rate``; for a domain the rules measure by mean reward (``rate: {code: reward}``) its
    ``mean_reward`` and ``reward_lo`` / ``reward_hi`` instead (so ``rate_<model>`` is that mean reward).
    A verdict the table cannot settle (a model's rate missing or too loose) is an error naming problem
    and models, or, with ``on_missing="skip"``, the problem is left out (``attrs["skipped"]`` lists them).
    ``domains`` (problem id -> domain) fills or checks domains."""
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    t = to_long(table)
    bounded = "rate_lo" in t.columns and "rate_hi" in t.columns
    counted = "samples" in t.columns
    rewarded = {d for d, v in rules.rate.items() if v == "reward"}  # domains whose rate is the mean reward
    if rewarded and "mean_reward" not in t.columns:
        raise RulesError(f"the rules measure {sorted(rewarded)} by mean reward (rate: reward); the pass-rate table has "
                         "no mean_reward column (a stagerl scoring table has one)")
    nan = pd.Series(float("nan"), index=t.index)
    reward = t["mean_reward"].astype(float) if rewarded else nan
    cols = [t["problem_id"], t["domain"], t["model"].astype(str), t["pass_rate"].astype(float),
            t["rate_lo"] if bounded else t["pass_rate"], t["rate_hi"] if bounded else t["pass_rate"],
            t["samples"] if counted else t["pass_rate"], reward,
            t["reward_lo"] if rewarded and "reward_lo" in t.columns else reward,
            t["reward_hi"] if rewarded and "reward_hi" in t.columns else reward]
    per: dict[str, tuple[Any, dict, dict]] = {}
    for pid, dom, model, rate, lo, hi, n, rrate, rlo, rhi in zip(*cols):
        entry = per.setdefault(pid, (dom, {}, {}))
        if dom != entry[0] and not (pd.isna(dom) and pd.isna(entry[0])):
            raise RulesError(f"pass-rate table: problem {pid!r} has two domains, {entry[0]!r} and {dom!r}")
        entry[1][model] = ((rate, lo, hi), (rrate, rlo, rhi))
        if counted:  # beside each rate: how many samples it is over
            entry[2][f"samples_{model}"] = int(n) if n == n else None
    rows, skipped = [], []
    for pid, (dom, measured, rates) in per.items():
        known = (domains or {}).get(pid)
        if known is not None and isinstance(dom, str) and dom != known:
            raise RulesError(f"problem {pid!r}: the pass-rate table says domain {dom!r}, the problems say {known!r}")
        dom = dom if isinstance(dom, str) else known
        if dom is None:
            raise RulesError(f"problem {pid!r}: no domain (the table has no 'domain' column; pass the problems, "
                             "or domain= to to_long/read_table)")
        bounds: dict[str, tuple[float, float]] = {}
        for model, (by_pass, by_reward) in measured.items():  # the rate the rules read for this domain
            rate, lo, hi = by_reward if dom in rewarded else by_pass
            rates[f"rate_{model}"] = rate
            if bounded or dom in rewarded:  # the k-sample rate's bounds
                rates[f"rate_lo_{model}"], rates[f"rate_hi_{model}"] = float(lo), float(hi)
            if lo != lo or hi != hi:  # NaN: a pair with no samples
                lo, hi = rate, rate
            if lo == lo:
                bounds[model] = (float(lo), float(hi))
        verdicts = decide(rules, bounds, pid, dom)
        if None in verdicts.values():
            if on_missing == "skip":
                skipped.append(pid)
                continue
            need = sorted(relevant_models(rules, bounds, pid, dom))
            raise RulesError(f"problem {pid!r}: the table has no settled rate for model(s) {need} that the rules "
                             f"need (table models: {sorted(t['model'].astype(str).unique())}); bind the rule "
                             "aliases with levels.bind, score these models, or pass on_missing='skip'")
        rows.append({"problem_id": pid, "domain": dom, **verdicts, **rates})
    out = pd.DataFrame(rows, columns=["problem_id", "domain", "keep", *rules.levels]) if not rows else pd.DataFrame(rows)
    out.attrs["skipped"] = skipped
    return out


class Levels(dict):
    """``{level: DataFrame}`` as :func:`build_levels` makes it, with the one labelling it was cut
    from in ``labels`` (what :func:`label_table` returned), so the stats reuse it."""

    labels: pd.DataFrame | None = None


def build_levels(table: pd.DataFrame, rules: Rules, problems: list[Problem] | pd.DataFrame | None = None,
                 on_missing: str = "error") -> Levels:
    """``{level: DataFrame}``: the problems in each level (in table order), with their
    ``rate_<model>`` columns and, given ``problems`` (Problems or a DataFrame of their dicts),
    their fields (``tests`` and ``meta`` as JSON strings). Every level's ``attrs["skipped"]`` lists
    the problems left out for missing rates (``on_missing="skip"``; see :func:`label_table`)."""
    by_id = _problems_by_id(problems) if problems is not None else None
    domains = {pid: p.domain for pid, p in by_id.items()} if by_id is not None else None
    labels = label_table(table, rules, on_missing, domains)
    if by_id is not None and len(labels):
        unknown = [pid for pid in labels["problem_id"] if pid not in by_id]
        if unknown:
            raise RulesError(f"the pass-rate table has {len(unknown)} problem(s) not among the given problems, "
                             f"e.g. {unknown[0]!r}")
    rate_cols = [c for c in labels.columns if c.startswith(("rate_", "samples_"))]
    levels = Levels()
    levels.labels = labels
    for name in rules.levels:
        part = labels[labels[name].astype(bool)] if len(labels) else labels
        df = part[["problem_id", "domain", *rate_cols]].reset_index(drop=True)
        if by_id is not None:
            fields = pd.DataFrame([by_id[pid].to_row() for pid in df["problem_id"]], columns=list(PROBLEM_COLUMNS))
            df = pd.concat([fields, df[rate_cols]], axis=1)
        df.attrs["skipped"] = list(labels.attrs["skipped"])
        levels[name] = df
    return levels


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """``df`` as parquet; an empty one is written with no row group (``datasets`` fails on a
    zero-row row group: "BatchSize must be greater than 0")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if len(df):
        pq.write_table(table, path)
    else:
        pq.ParquetWriter(path, table.schema).close()
    return Path(path)


def write_levels(levels: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """One ``<level>.parquet`` per level in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_parquet(df, out / f"{name}.parquet") for name, df in levels.items()]


def read_level(path: str | Path) -> list[Problem]:
    """A level file back as Problems (the file needs the problem fields: build with ``problems=``)."""
    df = pd.read_parquet(path)
    if "prompt" not in df.columns:
        raise RulesError(f"{path}: holds rates only; build the levels with the problems to train on them")

    out = []
    for i, r in enumerate(df.to_dict("records")):
        try:
            out.append(Problem.from_row(r))
        except (ProblemError, json.JSONDecodeError) as e:
            raise RulesError(f"{path}, row {i} (id {r.get('id')!r}): {e}") from None
    return out
