"""The pass-rate table and the cost ledger, rebuilt from the sample store alone.

``pass_rates.parquet`` is long: one row per (problem, model) with

==================  ===========================================================================
problem_id, domain  the problem
model               the reference model's name (ladder order)
k                   samples per pair under the fixed protocol
samples             samples actually drawn (< k when adaptive scoring stopped the pair early)
successes           samples with reward >= 1 - 1e-9
pass_rate           successes / samples (NaN when the pair drew nothing)
rate_lo, rate_hi    bounds of the k-sample rate: [s/k, (s+k-m)/k]; equal when samples == k. Under the
                    statistical stopping rule (``scoring.stop.rule: bayes`` or ``joint``, recorded in the store)
                    a pair stopped early is taken at its point estimate: both equal s/m
decided_early       samples < k: the pair's outcome under the level rules was settled sooner
mean_reward         mean reward of the drawn samples (partial credit for code)
reward_lo, reward_hi  bounds of the k-sample mean reward, as ``rate_lo`` / ``rate_hi`` (what level rules
                    with ``rate: {<domain>: reward}`` decide on)
mean_tokens         mean generated tokens; ``max_tokens`` the longest sample
truncated           samples cut at max_tokens (finish == "length")
==================  ===========================================================================

``ledger.json`` holds generated tokens, samples and generation seconds per model and in total.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..rundir import RunDir, atomic_path, write_json
from ..store import SampleStore
from .adaptive import SUCCESS_EPS

TABLE_COLUMNS = ["problem_id", "domain", "model", "k", "samples", "successes", "pass_rate", "rate_lo", "rate_hi",
                 "decided_early", "mean_reward", "reward_lo", "reward_hi", "mean_tokens", "max_tokens", "truncated"]

def scoring_meta(store: SampleStore) -> dict[str, Any]:
    """What ``score`` recorded in the store: ``{"k": int, "models": [names, weakest first]}``."""
    return store.get_meta("scoring", {}) or {}


def _bounds(credit: float, n: int, k: int, at_point: bool) -> tuple[float, float]:
    """Bounds of the k-sample rate after ``n`` samples worth ``credit`` (successes or summed rewards);
    the point estimate where a statistical stop ended the pair early."""
    if at_point and 0 < n < k:
        return credit / n, credit / n
    return credit / k, min(1.0, (credit + k - n) / k)


def pass_rate_table(
    store: SampleStore,
    problems: list[tuple[str, str]] | None = None,
    models: list[str] | None = None,
    k: int | None = None,
) -> pd.DataFrame:
    """The pass-rate table (see the module docstring) of ``problems`` × ``models``.

    ``problems`` are ``(problem_id, domain)`` pairs and default to every problem registered in the
    store; ``models`` and ``k`` default to what ``score`` recorded. Only sample indices < k count.
    Pairs that drew no sample are listed with ``samples`` 0 and bounds ``[0, 1]``.
    """
    meta = scoring_meta(store)
    k = int(k or meta.get("k") or 0)
    if k < 1:
        raise ValueError(f"{store.path}: no k recorded by a scoring run; pass k")
    problems = problems if problems is not None else store.problems()
    db_rows = store.pair_stats(k, 1.0 - SUCCESS_EPS)
    agg = {(r[0], r[1]): r for r in db_rows}
    if models is None:
        models = list(meta.get("models") or [])
        models += sorted({m for _, m in agg} - set(models))
    if not problems:  # nothing registered: list the sampled problems
        problems = sorted({(r[0], r[8]) for r in db_rows})
    at_point = (meta.get("stop") or {}).get("rule") in ("bayes", "joint")  # statistical stops: labels at s/m
    out = []
    for pid, domain in problems:
        for model in models:
            r = agg.get((pid, model))
            n, s = (int(r[2]), int(r[3])) if r else (0, 0)
            credit = min(1.0, max(0.0, float(r[4]))) * n if r and r[4] is not None else 0.0  # summed rewards
            (lo, hi), (rlo, rhi) = (_bounds(x, n, k, at_point) for x in (s, credit))
            out.append({
                "problem_id": pid, "domain": domain, "model": model, "k": k, "samples": n, "successes": s,
                "pass_rate": s / n if n else math.nan, "rate_lo": lo, "rate_hi": hi,
                "decided_early": n < k,
                "mean_reward": float(r[4]) if r else math.nan, "reward_lo": rlo, "reward_hi": rhi,
                "mean_tokens": float(r[5]) if r else math.nan,
                "max_tokens": int(r[6]) if r else 0, "truncated": int(r[7]) if r else 0,
            })
    return pd.DataFrame(out, columns=TABLE_COLUMNS)


def ledger(store: SampleStore, models: list[str] | None = None) -> dict[str, Any]:
    """Generated tokens, samples and generation seconds per model and in total (every stored sample)."""
    rows = store.model_totals()
    per = {m: {"samples": int(n), "tokens": int(t), "seconds": round(float(s), 3), "truncated": int(tr)}
           for m, n, t, s, tr in rows}
    order = list(models or scoring_meta(store).get("models") or [])
    order += sorted(set(per) - set(order))
    per = {m: per.get(m, {"samples": 0, "tokens": 0, "seconds": 0.0, "truncated": 0}) for m in order}
    for v in per.values():
        v["tokens_per_s"] = round(v["tokens"] / v["seconds"], 2) if v["seconds"] > 0 else None
    total = {key: sum(v[key] for v in per.values()) for key in ("samples", "tokens", "truncated")}
    total["seconds"] = round(sum(v["seconds"] for v in per.values()), 3)
    return {"models": per, "total": total, "sandbox": store.get_meta("sandbox")}


def write_table(
    store: SampleStore,
    out_dir: str | Path,
    problems: list[tuple[str, str]] | None = None,
    models: list[str] | None = None,
    k: int | None = None,
) -> pd.DataFrame:
    """Write ``pass_rates.parquet`` and ``ledger.json`` into ``out_dir`` from the store alone
    (so both can be rebuilt after a crash); return the table. Files are replaced atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pass_rate_table(store, problems, models, k)
    run = RunDir(out_dir)
    with atomic_path(run.pass_rates) as tmp:  # unique temporary names: concurrent writers never share one
        table.to_parquet(tmp, index=False)
    write_json(run.ledger, ledger(store, models))
    return table
