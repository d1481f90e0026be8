"""The statistical stopping rule (``scoring.stop: {rule: bayes, error: ε}``): stop a pair once its
labels are that sure, from a stated model.

The model. Each (problem, model) pair has a pass probability ``p`` drawn from a prior: a
zero-one-inflated Beta — ``P(p = 0) = zero``, ``P(p = 1) = one``, and ``Beta(a, b)`` otherwise (the
two point masses carry the problems a model never / always solves, which any published pass-rate
histogram shows as its two tall end bars). Samples are independent Bernoulli(p). After ``m`` samples
with ``s`` successes the ``r = k - m`` samples not drawn yet hold ``X`` successes with the exact
posterior predictive (a mixture of Beta-binomial ``BB(r, a + s, b + m - s)`` and the point masses
that the data leave possible), so the k-sample rate would be ``q = (s + X) / k``.

A stopped pair is labelled at its point estimate ``s / m`` (the table's ``pass_rate``; its
``rate_lo = rate_hi = s / m``). Its *error* is the posterior probability that some verdict of its
problem (keep or a level) would differ at ``q``: summed over every ``x`` of ``X`` for which the model
is still relevant (``levels.rules.relevant_models``) over the box where its rate spans
``[s/m, q]`` and every other model spans what it can still take — its point if it is settled and was
stopped early, its exact rate if all k were drawn, ``[s/k, (s + k - m)/k]`` if it is still to come
(``[0, 1]`` for a model not sampled yet). ``relevant_models`` is sound, so this over-counts, never
under-counts. An error of 0 is the exact rule's stop.

How pair errors combine. ``ε`` is a budget per *problem*: the chance that any of its labels differs
from the labels all k samples of every pair would give. Models are scored one after another (the
``order``); when a pair stops it spends its error from what the pairs settled before it left
(``spent`` recomputes that from the samples alone, so a resumed run decides alike). Why the sum
bounds the problem's error: replace the stopped pairs' points by their k-sample rates one at a time,
the last stopped first. The step for pair j changes j's rate from its point to its q with the pairs
stopped before j still at their points and the pairs after j at their k-sample rates — inside the
boxes j's check used. So each step changes a label only on an event whose probability j's check
bounded, and the union bound gives ``P(labels differ) <= sum of the spent errors <= ε``, under the
model: the prior is right for every model and a pair's samples are independent given its ``p``.
Rates of one problem are correlated across models in reality (a hard problem is hard for all); the
check conditions only on the pair's own samples, so that is the model's assumption, checked by
simulation against correlated pools (``tests/scoring/test_bayes_stop.py``, ``scripts/scale_scoring.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .adaptive import Stats, rate_bounds

MIN_SAMPLES = 1
"""A pair needs at least this many samples before the statistical rule may stop it."""


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def predictive(prior: Any, s: int, m: int, r: int) -> list[float]:
    """``P(X = x)`` for ``x = 0..r``: successes among ``r`` more samples after ``s`` of ``m``, under
    ``prior`` (anything with ``a, b, zero, one``: a zero-one-inflated Beta)."""
    if not 0 <= s <= m or r < 0:
        raise ValueError(f"need 0 <= s <= m and r >= 0, got s={s}, m={m}, r={r}")
    a, b, zero, one = float(prior.a), float(prior.b), float(prior.zero), float(prior.one)
    w_beta = max(0.0, 1.0 - zero - one)
    # posterior weights of the three components (the binomial coefficient is common to all)
    log_w = {"beta": (math.log(w_beta) + _log_beta(a + s, b + m - s) - _log_beta(a, b)) if w_beta > 0 else -math.inf,
             "zero": math.log(zero) if zero > 0 and s == 0 else -math.inf,
             "one": math.log(one) if one > 0 and s == m else -math.inf}
    top = max(log_w.values())
    if top == -math.inf:
        raise ValueError(f"the prior gives {s} of {m} probability 0")
    w = {key: math.exp(v - top) for key, v in log_w.items()}
    total = sum(w.values())
    out = [0.0] * (r + 1)
    if w["beta"]:
        a1, b1 = a + s, b + m - s
        base = _log_beta(a1, b1)
        for x in range(r + 1):
            log_c = math.lgamma(r + 1) - math.lgamma(x + 1) - math.lgamma(r - x + 1)
            out[x] += w["beta"] / total * math.exp(log_c + _log_beta(a1 + x, b1 + r - x) - base)
    out[0] += w["zero"] / total
    out[r] += w["one"] / total
    return out


def _box(stats: Stats, models: Iterable[str], k: int, settled: set[str]) -> dict[str, tuple[float, float]]:
    """What each model's rate can still be: a settled pair stopped early sits at its point estimate."""
    box = {}
    for name in models:
        s, m = stats.get(name, (0, 0))
        box[name] = (s / m, s / m) if name in settled and 0 < m < k else rate_bounds(s, m, k)
    return box


def stop_error(rules: Any, stats: Stats, models: Sequence[str], k: int, problem_id: str, domain: str,
               model: str, prior: Any, settled: Iterable[str] = ()) -> float:
    """The probability (under ``prior``) that stopping ``model`` now, at ``s/m``, labels its problem
    otherwise than all k samples would (see the module docstring). ``settled``: the other models
    whose sampling is over. 1.0 before ``MIN_SAMPLES`` samples. ``prior``: a zero-one-inflated Beta
    for this pair alone, or anything with ``predict(stats, model, k)`` (a joint prior: ``stats`` then
    holds what every model drew of the problem when this one is scored)."""
    from ..levels.rules import relevant_models

    s, m = stats.get(model, (0, 0))
    if m >= k:
        return 0.0
    if m < MIN_SAMPLES:
        return 1.0
    base = _box(stats, models, k, set(settled) - {model})
    point, err = s / m, 0.0
    # a joint prior (``joint_stop.JointPrior``) conditions on every model's samples of the problem
    probs = prior.predict(stats, model, k) if hasattr(prior, "predict") else predictive(prior, s, m, k - m)
    for x, px in enumerate(probs):
        if px <= 0.0:
            continue
        q = (s + x) / k
        base[model] = (min(point, q), max(point, q))
        if model in relevant_models(rules, base, problem_id, domain):
            err += px
    return min(err, 1.0)


def _view(stats: Stats, order: Sequence[str], upto: int) -> dict[str, tuple[int, int]]:
    """The samples as they stood when ``order[upto]`` was scored: later models not sampled yet."""
    return {name: (stats.get(name, (0, 0)) if i <= upto else (0, 0)) for i, name in enumerate(order)}


def spent(rules: Any, stats: Stats, order: Sequence[str], k: int, problem_id: str, domain: str,
          current: str, prior: Any) -> float:
    """Error already spent on this problem by the pairs settled before ``current`` (the models before
    it in scoring ``order``), each at the state it stopped in."""
    total = 0.0
    for i, name in enumerate(order):
        if name == current:
            break
        s, m = stats.get(name, (0, 0))
        if 0 < m < k:
            total += stop_error(rules, _view(stats, order, i), order, k, problem_id, domain, name, prior,
                                settled=order[:i])
    return total


def may_stop(rules: Any, stats: Stats, order: Sequence[str], k: int, problem_id: str, domain: str,
             model: str, prior: Any, error: float) -> bool:
    """Whether the statistical rule stops ``model`` (the one being scored; ``order`` is the scoring
    order, models before it settled, after it not sampled yet) on this problem now: its error fits in
    what the problem's budget ``error`` has left."""
    pos = list(order).index(model)
    err = stop_error(rules, _view(stats, order, pos), order, k, problem_id, domain, model, prior, settled=order[:pos])
    if err == 0.0:
        return True
    if err > error:
        return False
    return err <= error - spent(rules, stats, order, k, problem_id, domain, model, prior) + 1e-15


def point_rates(stats: Mapping[str, tuple[int, int]], k: int) -> dict[str, tuple[float, float]]:
    """The box the labels of a statistically stopped run use: a pair stopped early at ``s/m``, a
    full pair at its rate, an unsampled pair anywhere in ``[0, 1]``."""
    return _box(stats, stats, k, set(stats))


def count_probs(prior: Any, n: int) -> list[float]:
    """``P(j successes of n)`` for ``j = 0..n`` under ``prior`` (before any sample)."""
    return predictive(prior, 0, 0, n)


def fit_prior(histogram: Sequence[float]) -> tuple[float, float, float, float]:
    """``(a, b, zero, one)`` of the zero-one-inflated Beta whose ``count_probs(n)`` is closest (in
    KL divergence) to ``histogram`` (the share of problems with j successes of n = len - 1 samples,
    e.g. a published pass-rate histogram). A coarse grid then a local refinement; deterministic."""
    from types import SimpleNamespace

    total = float(sum(histogram))
    h = [v / total for v in histogram]
    n = len(h) - 1

    def loss(a: float, b: float, zero: float, one: float) -> float:
        if a <= 0 or b <= 0 or zero < 0 or one < 0 or zero + one >= 1:
            return math.inf
        q = count_probs(SimpleNamespace(a=a, b=b, zero=zero, one=one), n)
        return sum(hj * math.log(hj / max(qj, 1e-300)) for hj, qj in zip(h, q) if hj > 0)

    grid = [0.05 * 1.5 ** i for i in range(14)]
    ends = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    best = min(((loss(a, b, z, o), a, b, z, o) for a in grid for b in grid for z in ends for o in ends))
    _, *x = best
    step = [0.5, 0.5, 0.05, 0.05]
    for _ in range(60):  # coordinate search, halving the step when no move helps
        moved = False
        for i in range(4):
            for sign in (1, -1):
                y = list(x)
                y[i] = y[i] * (1 + sign * step[i]) if i < 2 else y[i] + sign * step[i]
                if loss(*y) < loss(*x):
                    x, moved = y, True
        if not moved:
            step = [v / 2 for v in step]
    return tuple(round(v, 4) for v in x)  # type: ignore[return-value]
