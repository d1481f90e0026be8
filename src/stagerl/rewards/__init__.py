"""Rewards: pure functions from (response, ground truth) to a float in [0, 1].

One module per reward (as verl's ``utils/reward_score``): ``math.py`` and ``code.py``.
This package knows nothing of engines, scoring or training.
"""

from __future__ import annotations

from .code import SandboxError, code_reward, code_rewards, sandbox_status
from .math import math_reward, math_rewards

__all__ = ["math_reward", "math_rewards", "code_reward", "code_rewards", "problem_rewards", "sandbox_status",
           "SandboxError"]


def problem_rewards(problems: list, responses: list[str], workers: int | None = None) -> list[float]:
    """Grade ``responses[i]`` against ``problems[i]`` (a ``Problem``), routing each by domain.

    Math and code items are batched separately so each reward keeps its own worker pool.
    """
    if len(problems) != len(responses):
        raise ValueError(f"{len(problems)} problems but {len(responses)} responses")
    out = [0.0] * len(problems)
    for domain, fn, key in (("math", math_rewards, "answer"), ("code", code_rewards, "tests")):
        idx = [i for i, p in enumerate(problems) if p.domain == domain]
        if idx:
            scores = fn([responses[i] for i in idx], [getattr(problems[i], key) for i in idx], workers=workers)
            for i, s in zip(idx, scores):
                out[i] = float(s)
    return out
