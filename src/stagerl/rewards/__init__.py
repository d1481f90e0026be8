"""Rewards: pure functions from (response, ground truth) to a float in [0, 1].

One module per reward (as verl's ``utils/reward_score``): ``math.py`` and ``code.py``.
This package knows nothing of engines, scoring or training.
"""

from __future__ import annotations

from . import sandbox
from .code import SandboxError, code_reward, code_rewards, sandbox_record, sandbox_status
from .math import math_reward, math_rewards
from .verl import trl_reward  # the same rewards for verl (compute_score) and a plain trl.GRPOTrainer

__all__ = ["math_reward", "math_rewards", "code_reward", "code_rewards", "problem_rewards", "sandbox_status",
           "sandbox_record", "configure_rewards", "SandboxError", "trl_reward"]


def configure_rewards(cfg) -> None:
    """Apply a recipe's ``rewards:`` section (a ``config.RewardsConfig``) to this process's code
    sandbox: its mode (``bwrap`` or ``unsafe-limits``), wall clock and memory cap per test.
    Scoring, training and evaluation call it once before grading. (Grading workers and the math
    timeout are passed where grading is called.)"""
    sandbox.configure_sandbox(cfg.sandbox, timeout_s=float(cfg.code_timeout), memory_mb=int(cfg.code_memory_mb),
                              cpu_s=int(float(cfg.code_timeout)) + 1)


def problem_rewards(problems: list, responses: list[str], workers: int | None = None,
                    math_timeout: float | None = None) -> list[float]:
    """Grade ``responses[i]`` against ``problems[i]`` (a ``Problem``), routing each by domain.

    Math and code items are batched separately so each reward keeps its own worker pool.
    ``workers`` and ``math_timeout`` are the recipe's ``rewards.workers`` / ``rewards.math_timeout``.
    """
    if len(problems) != len(responses):
        raise ValueError(f"{len(problems)} problems but {len(responses)} responses")
    out = [0.0] * len(problems)
    for domain, fn, key in (("math", math_rewards, "answer"), ("code", code_rewards, "tests")):
        idx = [i for i, p in enumerate(problems) if p.domain == domain]
        if idx:
            extra = {"timeout": math_timeout} if domain == "math" and math_timeout is not None else {}
            scores = fn([responses[i] for i in idx], [getattr(problems[i], key) for i in idx], workers=workers, **extra)
            for i, s in zip(idx, scores):
                out[i] = float(s)
    return out
