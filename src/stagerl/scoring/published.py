"""Published difficulty tables in: the forms public RL datasets ship, turned into our long table.

A *form* says where a table keeps each model's difficulty. It is a small mapping (a built-in name,
or a YAML file given to ``--table-form``)::

    id: question                  # the column (dotted path for nested fields, e.g. extra_info.id)
    domain: math                  # optional: a fixed domain, or {column: category}
    rows_per_problem: agree       # optional: "one" (default) or "agree" (several rows per problem,
                                  # e.g. one per distilled response; their rates must be equal)
    missing: error                # optional: "error" (default) or "skip" a blank/NaN value
    models:                       # model name -> where its difficulty is
      deepseek-r1: {rate: pass_rate_r1}              # a pass rate in [0, 1]
      r1-distill-qwen-7b: {fraction: difficulty}     # a "successes/samples" string such as "3/8"
      some-model: {successes: extra_info.ok, samples: 16}   # counts (samples: a column or a number)

Built-in forms (each confirmed from the publisher's card or code; see docs/tables.md):
``am-team`` (a-m-team AM-DeepSeek-Distilled-40M ``pass_rate_<model>`` columns), ``polaris``
(POLARIS-Dataset-53K ``difficulty`` as "s/n" from DeepSeek-R1-Distill-Qwen-7B), ``flat`` (an id
column and one rate column per model) and ``stagerl`` (our own ``levels --export`` folder).

Every value is checked before any work: a bad one raises :class:`TableError` naming the file, the
row (``line N`` for JSON Lines, ``row i`` otherwise) and the field. :func:`convert` writes the
result as a long parquet (``problem_id, domain, model, pass_rate`` and ``samples``/``successes``
where known) under the stagerl cache, so every later step reads it as any other table.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import yaml

from ..levels.rules import RulesError
from ..levels.tree import nodes

FORMS: dict[str, dict] = {
    "am-team": {"id": "question", "rows_per_problem": "agree",
                "models": {"deepseek-r1": {"rate": "pass_rate_r1"},
                           "r1-distill-qwen-7b": {"rate": "pass_rate_7b"},
                           "r1-distill-qwen-1.5b": {"rate": "pass_rate_1.5b"}}},
    "polaris": {"id": "problem", "models": {"r1-distill-qwen-7b": {"fraction": "difficulty"}}},
}
"""Built-in forms besides ``flat`` and ``stagerl`` (which read their models from the columns)."""

_KINDS = ("rate", "fraction", "successes")
_FORM_KEYS = {"id", "domain", "rows_per_problem", "missing", "models"}


class TableError(RulesError):
    """A published table (or its form) is malformed; the message names file, row and field."""


def load_form(spec: str | Path | dict | None) -> dict | None:
    """A form: a built-in name, a YAML file, or a mapping (checked, key path in the error).
    ``None``, ``"flat"`` and ``"stagerl"`` return ``None`` or the name (columns decide the models)."""
    if spec is None or spec in ("flat", "stagerl"):
        return spec
    if isinstance(spec, str) and spec in FORMS:
        form = FORMS[spec]
    elif isinstance(spec, dict):
        form = spec
    else:
        path = Path(spec)
        if not path.is_file():
            raise TableError(f"--table-form {spec!r}: not a built-in form ({', '.join([*FORMS, 'flat', 'stagerl'])}) "
                             "and no such YAML file")
        form = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(form, dict):
            raise TableError(f"{path}: a table form is a mapping with keys id, models (see docs/tables.md)")
    bad = sorted(set(form) - _FORM_KEYS)
    if bad:
        raise TableError(f"table form: unknown key {bad[0]!r} (keys: {', '.join(sorted(_FORM_KEYS))})")
    if not isinstance(form.get("id"), str) or not form.get("models") or not isinstance(form["models"], dict):
        raise TableError("table form: needs 'id' (a column) and 'models' (model name -> {rate|fraction|successes})")
    for model, where in form["models"].items():
        if not isinstance(where, dict) or len(set(where) & set(_KINDS)) != 1 or set(where) - {*_KINDS, "samples"}:
            raise TableError(f"table form: models.{model}: give exactly one of rate, fraction, successes "
                             "(with samples for successes)")
        if "successes" in where and "samples" not in where:
            raise TableError(f"table form: models.{model}: successes needs samples (a column or a number)")
    if form.get("rows_per_problem", "one") not in ("one", "agree"):
        raise TableError("table form: rows_per_problem must be 'one' or 'agree'")
    if form.get("missing", "error") not in ("error", "skip"):
        raise TableError("table form: missing must be 'error' or 'skip'")
    return form


def _get(row: dict, path: str) -> Any:
    """``row[a][b]...`` for ``"a.b"`` (a column named with the dots wins); ``KeyError`` if absent."""
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        if isinstance(value, str) and value.strip().startswith("{"):
            value = json.loads(value)  # nested fields stored as JSON strings
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not {what}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{v!r} is not {what}") from None
    if math.isnan(x):
        raise ValueError(f"NaN is not {what}")
    return x


def _value(row: dict, where: dict) -> tuple[float, int | None, int | None]:
    """(rate, samples, successes) of one model in one row; ``ValueError`` naming what is wrong."""
    if "rate" in where:
        rate = _number(_get(row, where["rate"]), "a pass rate in [0, 1]")
        if not 0 <= rate <= 1:
            raise ValueError(f"{rate:g} is not a pass rate in [0, 1]")
        return rate, None, None
    if "fraction" in where:
        v = _get(row, where["fraction"])
        s, sep, n = str(v).partition("/")
        try:
            succ, samples = int(s.strip()), int(n.strip())
        except ValueError:
            raise ValueError(f"{v!r} is not a 'successes/samples' fraction such as '3/8'") from None
    else:
        samples_at = where["samples"]
        samples_v = samples_at if isinstance(samples_at, (int, float)) else _get(row, samples_at)
        succ_f = _number(_get(row, where["successes"]), "a count of successes")
        samples_f = _number(samples_v, "a count of samples")
        if succ_f != int(succ_f) or samples_f != int(samples_f):
            raise ValueError(f"counts must be whole numbers, got {succ_f:g} of {samples_f:g}")
        succ, samples = int(succ_f), int(samples_f)
    if samples < 1 or not 0 <= succ <= samples:
        raise ValueError(f"{succ} successes of {samples} samples is not a count (0 <= successes <= samples, samples >= 1)")
    return succ / samples, samples, succ


def read_rows(source: str | Path) -> Iterator[tuple[str, str, dict]]:
    """(where, row label, row) of a file (.jsonl[.gz], .json, .parquet, .csv), a folder of parquet
    files (our export: ``data/*.parquet``), or ``hf:NAME[:DATA_FILES]`` (``datasets``; NAME may be
    a hub id or a local dataset folder)."""
    from ..data.loaders import LoadError, _rows

    text = str(source)
    if text.startswith("hf:"):
        import datasets

        name, _, files = text[3:].partition(":")
        ds = datasets.load_dataset(name, data_files=files or None, split="train")
        yield from ((text, f"row {i}", r) for i, r in enumerate(ds))
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"pass-rate table not found: {path}")
    if path.is_dir():
        files = sorted((path / "data").glob("*.parquet")) or sorted(path.glob("*.parquet"))
        if not files:
            raise TableError(f"{path}: a folder with no parquet files (expected our export's data/<level>.parquet)")
        for f in files:
            yield from ((str(f), label, r) for label, r in _rows(f))
        return
    if path.name.lower().endswith(".csv"):
        df = pd.read_csv(path, keep_default_na=False, na_values=[])
        yield from ((str(path), f"line {i + 2}", r) for i, r in enumerate(df.to_dict("records")))
        return
    try:
        for label, r in _rows(path):
            if isinstance(r, Exception):
                raise TableError(f"{path}: {label}: {r}")
            yield str(path), label, r
    except LoadError as e:
        raise TableError(str(e)) from None


def _stagerl_form(row: dict) -> dict:
    """The form of our own export, read from its columns: ``rate_<model>`` (and ``samples_<model>``)."""
    rates = [c[5:] for c in row if c.startswith("rate_") and not c.startswith(("rate_lo_", "rate_hi_"))]
    models = {m: {"rate": f"rate_{m}"} for m in rates}
    return {"id": "id" if "id" in row else "problem_id", "domain": {"column": "domain"}, "models": models,
            "rows_per_problem": "agree", "missing": "skip"}


def _flat_form(row: dict) -> dict:
    """An id column and every other numeric column a model's rate (``domain`` kept as the domain)."""
    ident = next((c for c in ("problem_id", "id", "unique_id") if c in row), None)
    if ident is None:
        raise TableError(f"no id column (expected problem_id, id or unique_id; columns: {sorted(row)}); "
                         "give a form with --table-form")
    skip = {ident, "domain", "samples", "successes", "k", "index", "idx", "source"}
    models = {c: {"rate": c} for c, v in row.items() if c not in skip and isinstance(v, (int, float, str))
              and not isinstance(v, bool) and not (isinstance(v, str) and not _looks_numeric(v))}
    return {"id": ident, "domain": {"column": "domain"} if "domain" in row else None, "models": models}


def _looks_numeric(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return not v.strip()  # a blank cell still belongs to its (numeric) column


def read_published(source: str | Path, form: str | Path | dict | None = "flat") -> pd.DataFrame:
    """The long pass-rate table of a published ``source`` read through ``form`` (see the module
    docstring). Raises :class:`TableError` naming file, row and field for the first bad value."""
    spec = load_form(form)
    out: dict[tuple[str, str], dict] = {}
    first_row: dict[str, str] = {}
    n_rows = 0
    for where, label, row in read_rows(source):
        n_rows += 1
        if not isinstance(row, dict):
            raise TableError(f"{where}: {label}: expected an object with named fields")
        f = spec if isinstance(spec, dict) else _stagerl_form(row) if spec == "stagerl" else _flat_form(row)
        if not f["models"]:
            raise TableError(f"{where}: {label}: no model columns found (columns: {sorted(row)})")
        try:
            pid = _get(row, f["id"])
        except KeyError:
            raise TableError(f"{where}: {label}: field {f['id']!r} (the id) is missing") from None
        if _blank(pid):
            raise TableError(f"{where}: {label}: field {f['id']!r} (the id) is blank")
        pid = str(pid)
        dom = f.get("domain")
        if isinstance(dom, dict):
            try:
                dom = _get(row, dom["column"])
            except KeyError:
                raise TableError(f"{where}: {label}: field {dom['column']!r} (the domain) is missing") from None
        dom = None if _blank(dom) else str(dom)
        if dom is not None and dom not in ("math", "code"):
            raise TableError(f"{where}: {label}: field 'domain': {dom!r} is not math or code")
        again = pid in first_row
        if again and f.get("rows_per_problem", "one") == "one":
            raise TableError(f"{where}: {label}: field {f['id']!r}: id {pid!r} again (first at {first_row[pid]}); "
                             "one row per problem is expected (rows_per_problem: agree if rows repeat it)")
        first_row.setdefault(pid, f"{where}: {label}" if where != str(source) else label)
        for model, at in f["models"].items():
            field = next(at[k] for k in _KINDS if k in at)
            try:
                raw = _get(row, field)
            except KeyError:
                raise TableError(f"{where}: {label}: field {field!r} (model {model!r}) is missing") from None
            if _blank(raw):
                if f.get("missing", "error") == "skip":
                    continue
                raise TableError(f"{where}: {label}: field {field!r} (model {model!r}) is blank or NaN; fill it "
                                 "or set missing: skip in the table form")
            try:
                rate, samples, succ = _value(row, at)
            except (ValueError, KeyError, json.JSONDecodeError) as e:
                raise TableError(f"{where}: {label}: field {field!r} (model {model!r}): {e}") from None
            entry = {"problem_id": pid, "domain": dom, "model": str(model), "pass_rate": rate,
                     "samples": samples, "successes": succ}
            old = out.get((pid, str(model)))
            if old is not None and (old["pass_rate"] != rate or old["samples"] != samples or old["domain"] != dom):
                raise TableError(f"{where}: {label}: field {field!r} (model {model!r}): problem {pid!r} has "
                                 f"{rate:g} here but {old['pass_rate']:g} at {first_row[pid]}; rows of one "
                                 "problem must agree")
            out[(pid, str(model))] = entry
    if not n_rows:
        raise TableError(f"{source}: the table has no rows")
    table = pd.DataFrame(list(out.values()), columns=["problem_id", "domain", "model", "pass_rate", "samples",
                                                      "successes"])
    for col in ("samples", "successes"):
        if table[col].isna().all():
            table = table.drop(columns=col)
    return table


def convert(source: str | Path, form: str | Path | dict | None, cache_dir: str | Path | None = None) -> Path:
    """:func:`read_published` written once as a long parquet under ``$STAGERL_CACHE/tables`` (named
    ``<source name>.<form>.<hash of source, form and content>.parquet``); returns its path, which
    ``--table`` then reads as usual."""
    from ..models import cache_root
    from ..rundir import atomic_path

    table = read_published(source, form)
    spec = load_form(form)
    where = str(source) if str(source).startswith("hf:") else str(Path(source).resolve())
    key = hashlib.sha256(json.dumps([where, spec], sort_keys=True, default=str).encode())
    key.update(pd.util.hash_pandas_object(table, index=False).values.tobytes())  # the content, not only the name
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(where.rstrip("/")).name.split(".")[0])[:60]
    label = form or "flat"
    name = f"{stem}.{label if isinstance(label, str) and label in (*FORMS, 'flat', 'stagerl') else 'form'}"
    out = Path(cache_dir or Path(cache_root()) / "tables") / f"{name}.{key.hexdigest()[:12]}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file():
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
    return out


def _aliases(node: Any) -> set[str]:
    """The model aliases a parsed condition uses (atoms under all / any / not)."""
    return {n[1] for n in nodes(node) if n[0] == "atom"}


def levels_without(rules: Any, models: set[str]) -> dict[str, list[str]]:
    """``{level: [aliases]}``: the levels whose conditions (or ``keep``) use an alias bound to a model
    the table does not have. Those levels cannot be built from the table."""
    absent = {a for a, m in rules.models.items() if m not in models}
    keep = _aliases(rules.keep) & absent
    out = {}
    for name, cond in rules.levels.items():
        need = sorted((_aliases(cond) & absent) | keep)
        if need:
            out[name] = need
    return out


def alias_used(rules: Any, alias: str) -> bool:
    """Whether ``keep`` or a level's condition uses ``alias``."""
    return alias in _aliases(rules.keep) or any(alias in _aliases(c) for c in rules.levels.values())


def levels_note(rules: Any, models: set[str], alias: str) -> str:
    """A sentence for an error about ``alias``: which levels cannot be built without its model, and
    which can."""
    blocked = levels_without(rules, models)
    hit = [name for name, need in blocked.items() if alias in need]
    if not hit:
        return ""
    ok = [name for name in rules.levels if name not in blocked]
    return (f". Without it these levels cannot be built: {', '.join(hit)}"
            + (f" (these can: {', '.join(ok)}; leave the others out of the rules to build them)" if ok else ""))
