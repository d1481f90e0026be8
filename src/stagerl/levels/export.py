"""Export leveled data as a Hugging Face dataset folder with a dataset card.

Layout: ``data/<level>.parquet`` and ``README.md`` whose YAML front-matter declares one config per
non-empty level (split ``train``; the first one is the default config). The folder loads with
``datasets.load_dataset(folder, "<level>", split="train")`` and publishes as it stands with
``huggingface-cli upload <repo> <folder> --repo-type dataset`` (or ``load_dataset`` + ``push_to_hub``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ..rundir import replace_dir
from .build import write_parquet
from .rules import Rules

_EXPORT_ENTRIES = {"README.md", "data"}
"""What an export folder holds; a folder holding anything else is not replaced."""


def _tags(levels: dict[str, pd.DataFrame]) -> list[str]:
    domains = sorted({str(d) for df in levels.values() if len(df) for d in df["domain"].dropna().unique()})
    return ["reasoning", *domains, "difficulty", "curriculum", "stagerl"]


def export_problem(out_dir: str | Path, run_dir: str | Path | None = None) -> str | None:
    """Why ``out_dir`` cannot take an export (None when it can): it is a file, a folder holding
    other things than an earlier export (they would be replaced), or the run folder itself."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        return f"{out} is a file, not a folder: pass a folder for the dataset (README.md and data/ go in it)"
    if run_dir is not None and out.resolve() in (Path(run_dir).resolve(), (Path(run_dir) / "levels").resolve()):
        return f"{out} is the run folder or its levels/: pass a folder of its own for the dataset"
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in _EXPORT_ENTRIES)
        if other:
            return (f"{out} holds other things than a dataset export ({', '.join(other[:3])}"
                    f"{', ...' if len(other) > 3 else ''}), which replacing it would delete: pass a new or empty folder")
    parent = next((p for p in out.resolve().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{out}: {parent} is a file, not a folder"
    return None


def _counts_table(levels: dict[str, pd.DataFrame]) -> str:
    domains = sorted({str(d) for df in levels.values() for d in df["domain"].dropna().unique()})
    head = "| level | problems | " + " | ".join(domains) + " |\n|---|---|" + "---|" * len(domains)
    rows = []
    for name, df in levels.items():
        by = df["domain"].value_counts()
        rows.append(f"| {name} | {len(df)} | " + " | ".join(str(int(by.get(d, 0))) for d in domains) + " |")
    return "\n".join([head, *rows])


def _early_note(levels: dict[str, pd.DataFrame], k: object) -> str:
    """A card line on the rates that are over fewer than k samples (adaptive early stops)."""
    frames = [df for df in levels.values() if len(df)]
    if not frames:
        return ""
    rows = pd.concat(frames).drop_duplicates(subset=["id" if "id" in frames[0].columns else "problem_id"])
    cols = [c for c in rows.columns if c.startswith("samples_")]
    if not cols or not isinstance(k, int):
        return ""
    counts = rows[cols].apply(pd.to_numeric, errors="coerce")
    early = int((counts < k).sum().sum())
    if not early:
        return f"- Every exported rate is over all k = {k} samples\n"
    return (f"- {early} exported (problem, model) rates are over fewer than k = {k} samples: adaptive scoring "
            f"stopped those pairs once no level verdict could change. `samples_<model>` gives each rate's "
            f"sample count and `rate_lo_<model>` / `rate_hi_<model>` the bounds of the rate all k samples "
            f"would give\n")


def export_dataset(levels: dict[str, pd.DataFrame], rules: Rules, out_dir: str | Path, info: dict) -> Path:
    """Write ``data/<level>.parquet`` (one config per non-empty level, split ``train``; the first is
    the default) and ``README.md``; return ``out_dir``. Empty levels are listed in the card but get
    no config: ``datasets`` cannot load an empty split.

    ``info`` describes how the rates were made; keys used (all optional): ``sources`` (list),
    ``reference_models`` (weakest to strongest), ``k`` (samples per problem and model),
    ``sampling`` (dict of settings), ``stats`` (e.g. from ``level_stats``), ``license``; or, for
    rates from a table made elsewhere, ``table`` (``{path, columns, models, rows}``: the card then
    describes the table and claims no k or sampling settings).

    The folder is built aside and swapped in only when complete (``rundir.replace_dir``): a refusal
    (every level empty, ``out_dir`` a file or a folder of other things) or a failure leaves
    ``out_dir`` as it was."""
    nonempty = [name for name, df in levels.items() if len(df)]
    if not nonempty:
        raise ValueError(f"every level is empty ({', '.join(levels)}): nothing to export")
    problem = export_problem(out_dir)
    if problem:
        raise ValueError(problem)
    out = Path(out_dir)
    replace_dir(out, lambda tmp: _write(levels, rules, tmp, info, nonempty))
    return out


def _rates_lines(levels: dict[str, pd.DataFrame], info: dict) -> str:
    table = info.get("table")
    if table:
        return (f"- Pass rates from a table made elsewhere: `{table.get('path', 'n/a')}` ({table.get('rows', '?')} rows; "
                f"columns: {', '.join(map(str, table.get('columns', []))) or 'n/a'})\n"
                f"- Models in the table: {', '.join(map(str, table.get('models', []))) or 'n/a'}\n"
                "- How the table's rates were sampled (samples per problem, sampling settings) is not recorded "
                "in it, so not here\n")
    return (f"- Reference models (weakest to strongest): {', '.join(map(str, info.get('reference_models', []))) or 'n/a'}\n"
            f"- Samples per problem and model (k): {info.get('k', 'n/a')}\n"
            f"{_early_note(levels, info.get('k'))}- Sampling: `{json.dumps(info.get('sampling', {}), default=str)}`\n")


def _write(levels: dict[str, pd.DataFrame], rules: Rules, out: Path, info: dict, nonempty: list[str]) -> None:
    (out / "data").mkdir(parents=True, exist_ok=True)
    configs = []
    for name in nonempty:
        write_parquet(levels[name], out / "data" / f"{name}.parquet")
        config: dict = {"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}.parquet"}]}
        if name == nonempty[0]:
            config["default"] = True
        configs.append(config)
    empty = [name for name in levels if name not in nonempty]
    graded = ("the pass rates of a table of reference models' results" if info.get("table") else
              "the pass rates of reference models, each sampling every problem k times")
    empty_note = (f"\nEmpty levels, exported without a config (`datasets` cannot load an empty split): "
                  f"{', '.join(empty)}.\n" if empty else "")
    front: dict = {"configs": configs, "tags": _tags(levels), "task_categories": ["text-generation"], "language": ["en"]}
    if info.get("license"):
        front["license"] = info["license"]
    stats = info.get("stats") or {}
    dropped = f"- Dropped by the `keep` rule: {stats['dropped']} of {stats.get('problems', '?')} problems\n" \
        if stats.get("dropped") is not None else ""
    first = nonempty[0]
    rate_fields = ("`rate_<model>`: each model's pass rate as the table gives it." if info.get("table") else
                   """`rate_<model>`: the pass rate of each reference model (successes / samples), with `samples_<model>`
(the samples that rate is over) and `rate_lo_<model>` / `rate_hi_<model>` (the bounds of the rate
over all k samples; equal to the rate when all k were drawn) where the rates come from stagerl scoring.""")
    card = f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# Difficulty-graded problems (stagerl)

Problems graded by {graded}, then
cut into levels by rules over those rates (the a-m-team 2025 recipe, built with stagerl).
Levels may overlap: one config per level.

## How the rates were made
- Sources: {", ".join(map(str, info.get("sources", []))) or "n/a"}
{_rates_lines(levels, info)}{dropped}
## Problems per level and domain
{_counts_table(levels)}
{empty_note}
## Rules
Conditions are pass-rate intervals per model alias (`(`/`)` open, `[`/`]` closed ends); `models`
binds each alias to a reference model; `retain` keeps a seeded, per-problem fraction.

```yaml
{rules.to_yaml().strip()}
```

## Fields
`id`, `domain` (math | code), `prompt`, `answer` (math), `tests` (code; a JSON string in the APPS/TACO
`input_output` form: `inputs`, `outputs`, optional `fn_name`), `source`, `meta` (a JSON string), and
{rate_fields}

```python
from datasets import load_dataset
ds = load_dataset("<this folder or repo>", "{first}", split="train")
```
"""
    (out / "README.md").write_text(card, encoding="utf-8")
