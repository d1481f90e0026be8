"""Readers of run-folder files for the report (never a model); a missing file reads as empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..curriculum.stages import stage_folders
from ..evaluate.compare import checkpoint_order
from ..rundir import read_jsonl


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def read_recipe(run_dir: Path) -> dict:
    path = run_dir / "recipe.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def read_table(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / "pass_rates.parquet"
    return pd.read_parquet(path) if path.exists() else None


def read_stages(run_dir: Path) -> list[dict]:
    """Each stage folder in stage order: ``{dir, name, levels, info (stage.json), metrics (rows),
    relevel (relevel.json or None)}``; every metric row gains ``_global``, its step counted from
    the first stage's start (stages that restart their step count at 1 are laid end to end)."""
    stages, offset = [], 0
    for d in stage_folders(run_dir):
        info = read_json(d / "stage.json") or {}
        path = d / "metrics.jsonl"
        metrics = read_jsonl(path) if path.exists() else []  # a torn line names file and line
        steps = [m.get("step", i + 1) for i, m in enumerate(metrics)]
        shift = offset if steps and min(steps) <= offset else 0
        for m, s in zip(metrics, steps):
            m["_global"] = s + shift
        start = offset
        offset = max([m["_global"] for m in metrics], default=offset)
        cfg = info.get("config", {})
        stages.append({"dir": d.name, "name": cfg.get("name", d.name), "levels": cfg.get("levels", []),
                       "info": info, "metrics": metrics, "relevel": read_json(d / "relevel.json"),
                       "start": start, "end": offset})
    return stages


def read_eval(run_dir: Path) -> dict[str, dict]:
    """``{checkpoint: {benchmark: results}}`` from eval/<checkpoint>/results.json, base first, then
    stages in number order."""
    eval_dir = run_dir / "eval"
    return {name: json.loads((eval_dir / name / "results.json").read_text()) for name in checkpoint_order(eval_dir)}


def step_count(stage: dict) -> int:
    """Optimizer steps of a stage: its metric rows, less a step-0 row (the dev baseline alone)."""
    return sum(1 for m in stage["metrics"] if m.get("step", 1) >= 1)


def checkpoint_steps(run_dir: Path, stages: list[dict] | None = None) -> dict[str, int]:
    """Global step of each evaluated checkpoint: 0 for ``base``, a stage's last step for its checkpoint."""
    stages = read_stages(run_dir) if stages is None else stages
    ends = {s["dir"]: s["end"] for s in stages}
    out = {}
    for name in read_eval(run_dir):
        if name == "base":
            out[name] = 0
        elif name in ends:
            out[name] = ends[name]
    return out


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers as the report prints them (tests read the files and format them with this)."""
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    if isinstance(x, bool) or isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}f}"


def fmt_ci(r: dict, key: str = "pass@1") -> str:
    """``0.312 [0.250, 0.375]``: a value with its 95% interval."""
    lo, hi = r.get("ci95", [None, None])
    return f"{fmt(r.get(key))} [{fmt(lo)}, {fmt(hi)}]" if lo is not None else fmt(r.get(key))


def fmt_diff(p: dict) -> str:
    lo, hi = p["ci95"]
    return f"{p['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
