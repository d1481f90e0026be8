"""Adaptive scoring: which (problem, model) pairs still need samples.

The fixed protocol draws k samples for every pair. But the level rules only ask questions like
"is this rate 0?", "is it in (0, 1)?": once m of the k samples are drawn with s successes, the
rate the full k samples would give lies in ``[s/k, (s + k - m)/k]`` whatever the other k - m
samples turn out to be. Levels' three-valued ``decide(rules, bounds, problem_id, domain)`` tells,
for these bounds (an unscored model has ``[0, 1]``), which verdicts are already certain, and
``relevant_models`` which models' rates could still change one. A pair stops as soon as its model
is no longer relevant for its problem; a problem whose verdicts are all decided needs no more
samples from anyone.

Why the labels equal the fixed run's: the adaptive samples of a pair are indices ``0..m-1``
(drawn in rounds, in index order), so the fixed run's final rate lies in the bounds above. When
scoring ends, every model is either fully sampled (exact rate) or irrelevant over its bounds, so
every verdict is the same for all rates in the bounds box, in particular for the fixed run's
rates. The table records ``rate_lo`` / ``rate_hi`` per pair for ``decide``; its point estimate
``pass_rate = s / m`` also lies in the box (``s/k <= s/m <= (s+k-m)/k`` since ``s <= m``), so
labelling with ``pass_rate`` gives the same labels too (for pairs with at least one sample).

Where the rules measure a domain by mean reward (``rate: {code: reward}``), ``successes`` is the sum
of the drawn rewards (each in [0, 1]) and the same bounds hold for the k-sample mean reward: the
k - m rewards not drawn add between 0 and k - m.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUCCESS_EPS = 1e-9
"""A sample is a success when its reward is at least ``1 - SUCCESS_EPS`` (code: all tests pass)."""

Stats = Mapping[str, tuple[float, int]]
"""model -> (successes, samples drawn) for one problem (successes: summed rewards under ``reward``)."""


def is_success(reward: float) -> bool:
    """Whether a sample's reward counts as solving the problem."""
    return reward >= 1.0 - SUCCESS_EPS


def rate_bounds(successes: float, drawn: int, k: int) -> tuple[float, float]:
    """Bounds of the pass rate over k samples after ``drawn`` of them gave ``successes``."""
    if not 0 <= successes <= drawn <= k or k < 1:
        raise ValueError(f"need 0 <= successes <= drawn <= k and k >= 1, got {successes}, {drawn}, {k}")
    return successes / k, (successes + k - drawn) / k


def problem_bounds(stats: Stats, models: Iterable[str], k: int) -> dict[str, tuple[float, float]]:
    """Rate bounds of every ladder model for one problem (``[0, 1]`` for a model not sampled yet)."""
    return {m: rate_bounds(*stats.get(m, (0, 0)), k) for m in models}


def verdicts(rules: Any, stats: Stats, models: Iterable[str], k: int, problem_id: str,
             domain: str) -> dict[str, bool | None]:
    """Levels' three-valued verdicts for one problem from its samples so far (``None``: open)."""
    from ..levels.rules import decide

    return decide(rules, problem_bounds(stats, models, k), problem_id, domain)


def needs_samples(rules: Any, stats: Stats, models: list[str], k: int, problem_id: str,
                  domain: str) -> set[str]:
    """Ladder models that must still sample this problem: relevant to some open verdict and with
    fewer than k samples drawn."""
    from ..levels.rules import relevant_models

    relevant = relevant_models(rules, problem_bounds(stats, models, k), problem_id, domain)
    return {m for m in models if m in relevant and stats.get(m, (0, 0))[1] < k}


def next_indices(stored: Iterable[int], k: int, want: int) -> list[int]:
    """The first ``want`` sample indices of ``0..k-1`` not stored yet (a round asks only these)."""
    have = set(stored)
    return [i for i in range(k) if i not in have][:max(want, 0)]


def stats_of(rewards_by_idx: Mapping[int, float], k: int, measure: str = "pass") -> tuple[float, int]:
    """(successes, samples) of one pair from its stored ``{idx: reward}``, indices < k only; under
    ``measure="reward"`` the successes are the mean reward (clipped to [0, 1], over the scorable samples,
    as the table's ``mean_reward``) times the samples."""
    kept = [r for i, r in rewards_by_idx.items() if i < k]
    if measure == "reward":
        vals = [r for r in kept if r == r]
        return (min(1.0, max(0.0, sum(vals) / len(vals))) * len(kept) if vals else 0.0), len(kept)
    return sum(is_success(r) for r in kept), len(kept)
