"""Our math and code rewards behind the two interfaces other trainers call.

- :func:`compute_score` is a verl custom reward function (``reward.custom_reward_function.path`` =
  this file, ``name=compute_score``): ``compute_score(data_source, solution_str, ground_truth,
  extra_info=None)`` -> a float in [0, 1]. The domain comes from ``extra_info["domain"]`` (our verl
  export writes it); without it, a ground truth holding ``inputs``/``outputs`` (a dict or its JSON
  string, as verl's ``prime_code`` reads code tests) is code, anything else math.
- :func:`trl_reward` is a reward function for an unmodified ``trl.GRPOTrainer`` on the same
  exported rows: TRL passes the dataset's ``reward_model`` and ``extra_info`` columns as keyword
  arguments.

Math is :func:`stagerl.rewards.math_reward` (last ``\\boxed{}``, Math-Verify); code is
:func:`stagerl.rewards.code_reward` (the program in the sandbox, passed tests / all tests).
"""

from __future__ import annotations

import json
from typing import Any

_CODE_SOURCES = ("codecontests", "apps", "codeforces", "taco")  # verl's own code data sources


def _tests(ground_truth: Any) -> dict | None:
    t = ground_truth
    if isinstance(t, str) and t.lstrip().startswith("{"):
        try:
            t = json.loads(t)
        except json.JSONDecodeError:
            return None
    return t if isinstance(t, dict) and "inputs" in t and "outputs" in t else None


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None,
                  **kwargs: Any) -> float:
    """The reward of ``solution_str`` (verl's custom reward function signature; extra keyword
    arguments verl may pass are ignored)."""
    from stagerl.rewards.code import code_reward  # absolute: verl may load this file by path
    from stagerl.rewards.math import math_reward

    domain = (extra_info or {}).get("domain")
    tests = _tests(ground_truth)
    if domain is None:
        domain = "code" if tests is not None or data_source in _CODE_SOURCES else "math"
    if domain == "code":
        if tests is None:
            raise ValueError(f"code ground truth is not a test set ({{inputs, outputs}}): {str(ground_truth)[:80]!r}")
        return float(code_reward(solution_str, tests))
    if domain != "math":
        raise ValueError(f"extra_info.domain {domain!r}: expected math or code")
    return float(math_reward(solution_str, str(ground_truth)))


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: the assistant's message(s)
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    return str(completion)


def trl_reward(completions: list, reward_model: list[dict], extra_info: list[dict] | None = None,
               data_source: list[str] | None = None, **kwargs: Any) -> list[float]:
    """A ``trl.GRPOTrainer`` reward function for the exported rows: one score per completion."""
    n = len(completions)
    infos = extra_info or [None] * n
    sources = data_source or ["stagerl"] * n
    return [compute_score(s, _text(c), rm["ground_truth"], info)
            for c, rm, info, s in zip(completions, reward_model, infos, sources)]
