"""Levels out as the parquet files verl's RL dataset reads (``stagerl levels --export DIR --format verl``).

One ``DIR/<level>.parquet`` per non-empty level, one row per problem, in the schema of verl's own
``examples/data_preprocess`` scripts (e.g. ``gsm8k.py``), which ``verl.utils.dataset.rl_dataset.RLHFDataset``
and verl's reward managers read:

==============  ==============================================================================
data_source     the problem's source (verl passes it to the reward function; metrics group by it)
prompt          the chat messages the policy sees (``recipe.prompt``: the same as scoring and training)
ability         ``math`` or ``code``
reward_model    ``{style: "rule", ground_truth}``: the math answer, or for code the tests as the JSON
                string verl's ``prime_code`` reads (``{"inputs": [...], "outputs": [...], "fn_name"?}``)
extra_info      ``{index, id, level, domain, rates}``: our problem id, the level, and the pass rate of
                each reference model (``rates``: model -> rate; NaN where the table had none)
==============  ==============================================================================

The rewards for these rows are :func:`stagerl.rewards.verl.compute_score` (verl's
``reward.custom_reward_function``). The same files train with a plain ``trl.GRPOTrainer`` and
:func:`stagerl.rewards.verl.trl_reward` (the README shows how).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd

from ..data.problem import Problem
from .build import write_parquet


def verl_row(problem: Problem, level: str, index: int, rates: dict[str, float],
             messages: Callable[[Problem], list[dict]]) -> dict:
    """One verl RL row for ``problem`` (see the module docstring)."""
    truth = problem.answer if problem.domain == "math" else json.dumps(problem.tests)
    return {"data_source": problem.source or "stagerl", "prompt": messages(problem), "ability": problem.domain,
            "reward_model": {"style": "rule", "ground_truth": truth},
            "extra_info": {"index": index, "id": problem.id, "level": level, "domain": problem.domain,
                           "rates": {m: float(r) for m, r in rates.items()}}}


def export_verl(levels: dict[str, pd.DataFrame], out_dir: str | Path,
                messages: Callable[[Problem], list[dict]] | None = None) -> list[Path]:
    """Write ``out_dir/<level>.parquet`` for each non-empty level (levels built with the problems);
    return the paths. ``messages`` turns a Problem into chat messages (default: no system message,
    no few-shot: :func:`stagerl.data.prompts.to_messages`)."""
    from ..data.prompts import to_messages

    messages = messages or to_messages
    nonempty = {name: df for name, df in levels.items() if len(df)}
    if not nonempty:
        raise ValueError(f"every level is empty ({', '.join(levels)}): nothing to export")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in nonempty.items():
        if "prompt" not in df.columns:
            raise ValueError(f"level {name}: holds rates only; build the levels with the problems to export them")
        rate_cols = [c for c in df.columns if c.startswith("rate_") and not c.startswith(("rate_lo_", "rate_hi_"))]
        rows = []
        for i, r in enumerate(df.to_dict("records")):
            rates = {c[5:]: r[c] for c in rate_cols}
            rows.append(verl_row(Problem.from_row(r), name, i, rates, messages))
        paths.append(write_parquet(pd.DataFrame(rows), out / f"{name}.parquet"))
    for name in set(levels) - set(nonempty):  # a stale file from an earlier export would mislead
        (out / f"{name}.parquet").unlink(missing_ok=True)
    return paths
