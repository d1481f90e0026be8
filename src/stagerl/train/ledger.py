"""A stage's cost ledger and pool cycling, for stage.json.

``add_ledger`` adds these keys to ``stage.json``:

``cost``
    ``{"tokens": completion tokens generated for training (the sum of metrics.jsonl's per-step
    ``tokens``, earlier rows of a resumed stage included), "seconds": the stage's ``seconds``,
    "dev_tokens", "dev_seconds": what the held-out dev evaluations cost}``;
``pool_passes``
    ``{"math": ..., "code": ...}``: passes over each domain's pool made by the steps trained
    (prompts drawn from the domain / problems in its pool; the mixed order draws each domain as a
    stream of shuffled passes, so a small pool cycles while a large one is on its first pass);
``dev``
    ``{"problems", "k", "scores": {step: dev score}}`` when the stage evaluated a dev set;
``warnings``
    human-readable warnings, e.g. when one domain cycled more than ``CYCLE_WARN`` × the other.
    Warnings are also printed to stderr, and ``plan_warnings`` prints them for the planned steps
    before training starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.problem import Problem

CYCLE_WARN = 10.0
"""Warn when one domain's pool makes more than this many times the passes of the other's."""


def pool_passes(order_domains: Sequence[str], pool: Sequence[Problem], steps: int, prompts_per_step: int) -> dict:
    """Passes over each domain's pool made by the first ``steps`` batches of the training order."""
    used = list(order_domains[: steps * prompts_per_step])
    out = {}
    for domain in ("math", "code"):
        size = sum(p.domain == domain for p in pool)
        out[domain] = round(used.count(domain) / size, 3) if size else 0.0
    return out


def cycle_warnings(passes: dict[str, float], ratio: float = CYCLE_WARN) -> list[str]:
    """A warning when one domain's pool cycles more than ``ratio`` × the other's."""
    m, c = passes.get("math", 0.0), passes.get("code", 0.0)
    for a, b, na, nb in ((m, c, "math", "code"), (c, m, "code", "math")):
        if a > 0 and b > 0 and a > ratio * b:
            return [f"the {na} pool made {a:g} passes against {b:g} for {nb} ({a / b:.0f}x): its problems repeat "
                    f"far more often (a small {na} pool at this math_code_ratio); add {na} problems or change "
                    "math_code_ratio"]
    return []


def read_rows(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (none if it is missing; a torn last line is skipped)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def plan_warnings(order_domains: Sequence[str], pool: Sequence[Problem], steps: int, prompts_per_step: int) -> list[str]:
    """Cycling warnings of the planned ``steps`` (printed to stderr before training starts)."""
    warnings = cycle_warnings(pool_passes(order_domains, pool, steps, prompts_per_step))
    for w in warnings:
        print(f"[stagerl] WARNING (planned {steps} steps): {w}", file=sys.stderr, flush=True)
    return warnings


def add_ledger(info: dict[str, Any], out_dir: str | Path, order_domains: Sequence[str], pool: Sequence[Problem],
               prompts_per_step: int, dev: Any = None) -> dict[str, Any]:
    """Add ``cost``, ``pool_passes`` and ``warnings`` (extending any already there) to the stage.json
    dict ``info`` (which holds ``steps`` and ``seconds``) for the steps trained; return ``info``."""
    rows = read_rows(Path(out_dir) / "metrics.jsonl")
    tokens = sum(int(r["tokens"]) for r in rows if isinstance(r.get("tokens"), (int, float)))
    info["cost"] = {"tokens": tokens, "seconds": info.get("seconds"),
                    "dev_tokens": int(getattr(dev, "tokens", 0)), "dev_seconds": round(getattr(dev, "seconds", 0.0), 1)}
    info["pool_passes"] = pool_passes(order_domains, pool, int(info["steps"]), prompts_per_step)
    warnings = cycle_warnings(info["pool_passes"])
    for w in warnings:
        print(f"[stagerl] WARNING: {w}", file=sys.stderr, flush=True)
    info["warnings"] = list(info.get("warnings", [])) + warnings
    if dev is not None:
        info["dev"] = {"problems": len(dev.problems), "k": dev.k, "scores": {str(s): v for s, v in dev.history.items()}}
    return info
