"""Built-in problem sets shipped with the package (see ``sets/SOURCES.md``) and generated ones."""

from __future__ import annotations

import gzip
import json
from importlib import resources

from . import families, generated
from .problem import Problem

# name -> (file in sets/, domain, source label)
STORED = {
    "aime24": ("aime24.jsonl.gz", "math", "AIME 2024"),
    "aime25": ("aime25.jsonl.gz", "math", "AIME 2025"),
    "amc23": ("amc23.jsonl.gz", "math", "AMC 2023"),
    "math500": ("math500.jsonl.gz", "math", "MATH-500"),
    "math_train": ("math_train.jsonl.gz", "math", "MATH train + AIME 1983-2023"),
    "lcb_test": ("lcb_test.jsonl.gz", "code", "LiveCodeBench 2024-08..2025-01"),
    "lcb_train": ("lcb_train.jsonl.gz", "code", "LiveCodeBench (earlier)"),
}
GENERATED = {"demo_math": generated.demo_math, "demo_code": generated.demo_code,
             "chain_math": families.chain_math, "gen_code": families.gen_code}


def builtin_names() -> list[str]:
    """Names accepted by ``load_builtin``: the stored sets, then the generated ones."""
    return sorted(STORED) + sorted(GENERATED)


def _row_to_problem(row: dict, domain: str, name: str) -> Problem:
    meta = {k: v for k, v in row.items() if k not in ("id", "problem", "answer", "tests", "source")}
    if domain == "math":
        return Problem(id=str(row["id"]), domain="math", prompt=row["problem"], answer=str(row["answer"]),
                       source=row.get("source", name), meta=meta)
    return Problem(id=str(row["id"]), domain="code", prompt=row["problem"], tests=row["tests"],
                   source=row.get("source", name), meta=meta)


def load_builtin(name: str, limit: int | None = None, **gen_args) -> list[Problem]:
    """Problems of a built-in set by name (``builtin_names()``); ``n``/``seed`` for generated sets."""
    if name in GENERATED:
        problems = GENERATED[name](**gen_args)
    elif name in STORED:
        if gen_args:
            raise ValueError(f"built-in set {name!r} is stored, not generated: it takes no {sorted(gen_args)}")
        file, domain, _ = STORED[name]
        with resources.files("stagerl.data").joinpath("sets", file).open("rb") as raw, \
                gzip.open(raw, "rt", encoding="utf-8") as f:
            problems = [_row_to_problem(json.loads(line), domain, name) for line in f if line.strip()]
    else:
        raise ValueError(f"unknown built-in set {name!r}; built-in sets: {', '.join(builtin_names())}")
    return problems if limit is None else problems[:limit]
