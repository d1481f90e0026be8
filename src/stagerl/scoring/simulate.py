"""Scoring simulated: the real stopping rules on Bernoulli samples of known pass rates.

``simulate(rules, rates, k, ...)`` runs what ``stagerl.scoring.run`` runs for each problem —
models one after another in ``order``, rounds of ``round_size`` samples, the exact rule
(``needs_samples``) and, with ``stop.rule == "bayes"``, the statistical one (``bayes_stop.may_stop``)
— on samples drawn from given pass rates instead of a model. A stopped pair's samples are completed
to k after the run (it saw a prefix of them), so the labels all k samples give are known and the
labels of the stopped run can be compared with them. Used by ``scripts/scale_scoring.py``,
``benchmarks/scoring.py`` (its simulated pool) and the simulation check in
``tests/scoring/test_bayes_stop.py``.

Pools: ``published_pool`` draws each model's pass rate from a zero-one-inflated Beta fitted to a
published pass-rate histogram (``PUBLISHED``), either independently per model (the statistical
rule's own assumption) or comonotone (one latent difficulty per problem, each model's rate its
quantile of its own distribution: a problem hard for one model is hard for all).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .adaptive import needs_samples
from .bayes_stop import count_probs, fit_prior, may_stop, point_rates

SWS_URL = "https://subtext.edge.nugit.net/image/5c52d526cf236e65b847bea91e28e6f8441b4d720cc12dc8f50d70ffcc10855f"
PUBLISHED = {  # percent of problems with j = 0..8 correct of 8 samples, per model
    "sws-3b": [32.2, 11.0, 6.9, 5.6, 5.0, 4.9, 5.3, 7.1, 22.0],
    "sws-7b": [23.3, 9.9, 7.1, 6.0, 5.6, 5.6, 6.1, 7.9, 28.6],
    "sws-32b": [18.8, 9.2, 6.9, 5.8, 5.5, 5.4, 6.2, 8.2, 33.8],
}
"""The "Synthetic Problems Difficulty" pie charts of SwS (Liang et al. 2025, "SwS: Self-aware
Weakness-driven Problem Synthesis in Reinforcement Learning for LLM Reasoning", arXiv:2506.08989):
the share of their RL problem pool at each difficulty level 0-8 for the SwS-3B, -7B and -32B models,
read as the number of correct answers among 8 samples. Taken from the figure's transcription at
``SWS_URL`` (the figure itself, not its numbers, was not seen here)."""


@dataclass
class SimResult:
    samples: int          # samples drawn
    fixed_samples: int    # k per pair
    problems: int
    same: int             # problems whose labels equal the k-sample labels
    spent: float          # sum over problems of the error the statistical rule spent
    per_model: dict       # model -> samples drawn

    @property
    def ratio(self) -> float:
        return self.samples / self.fixed_samples

    @property
    def share_same(self) -> float:
        return self.same / self.problems


def prior_of(histogram: Sequence[float]) -> SimpleNamespace:
    a, b, zero, one = fit_prior(histogram)
    return SimpleNamespace(a=a, b=b, zero=zero, one=one)


def _quantiles(prior: Any, grid: int = 4000) -> tuple[list[float], list[float]]:
    """The prior's CDF (its point mass at 0 first) on a grid of pass rates, and the grid."""
    import math

    a, b, zero, one = prior.a, prior.b, prior.zero, prior.one
    xs = [(i + 0.5) / grid for i in range(grid)]
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    dens = [math.exp((a - 1) * math.log(x) + (b - 1) * math.log(1 - x) - log_norm) / grid for x in xs]
    scale = (1 - zero - one) / sum(dens)
    cdf, acc = [], zero
    for d in dens:
        acc += d * scale
        cdf.append(acc)
    return [zero, *cdf], xs


def _rate_at(u: float, table: tuple[list[float], list[float]]) -> float:
    import bisect

    cdf, xs = table
    if u < cdf[0]:
        return 0.0
    i = bisect.bisect_left(cdf, u, 1)
    return 1.0 if i > len(xs) else xs[i - 1]


def published_pool(models: Mapping[str, str], n: int, seed: int = 0, coupling: str = "comonotone",
                   spread: float = 0.05) -> list[dict[str, float]]:
    """``n`` problems' pass rates, ``{model: rate}``, each model's rate following the published
    histogram ``PUBLISHED[models[model]]``. ``comonotone``: one latent quantile per problem (jittered
    by ``spread`` per model) shared by all models; ``independent``: one per model."""
    if coupling not in ("comonotone", "independent"):
        raise ValueError(f"coupling must be 'comonotone' or 'independent', got {coupling!r}")
    rng = random.Random(seed)
    tables = {m: _quantiles(prior_of(PUBLISHED[h])) for m, h in models.items()}
    out = []
    for _ in range(n):
        u = rng.random()
        row = {}
        for m in models:
            v = rng.random() if coupling == "independent" else min(max(u + rng.gauss(0, spread), 0.0), 1.0 - 1e-12)
            row[m] = _rate_at(v, tables[m])
        out.append(row)
    return out


def simulate(rules: Any, rates: Sequence[Mapping[str, float]], k: int, *, order: Sequence[str],
             round_size: int = 4, stop: Any = None, domain: str | Sequence[str] = "math",
             seed: int = 0, rng: random.Random | None = None) -> SimResult:
    """Score problems with pass rates ``rates`` (``{model: p}`` each, every model of ``order``) and
    compare their labels with the k-sample labels. ``stop``: ``None`` or ``rule == "exact"`` for the
    exact rule, ``rule == "bayes"`` with ``error`` and ``prior`` (``a, b, zero, one``), or
    ``rule == "joint"`` with ``error``, ``calibration``, ``classes``, ``draws`` and ``seed``
    (``joint_stop``: the calibration problems are scored first with the exact rule, the joint prior
    is fitted to their samples, then the rest are scored with it, as ``stagerl.scoring.run`` does).
    ``domain``: one for all problems or one per problem. Samples are drawn from ``rng`` (default
    ``Random(seed)``) as the run asks for them, round by round; the samples a stopped pair never drew
    (needed only for the k-sample labels) come from a second generator."""
    from ..levels.rules import decide
    from .bayes_stop import spent

    rng = rng or random.Random(seed)
    fill = random.Random(f"{seed}-fill")
    rule = "exact" if stop is None else getattr(stop, "rule", "exact")
    order = list(order)
    per_model = {m: 0 for m in order}
    domains = [domain] * len(rates) if isinstance(domain, str) else list(domain)

    def score_one(n: int, prior: Any) -> tuple[dict, dict]:
        pid, probs = f"sim-{n}", rates[n]
        draws: dict[str, list[bool]] = {m: [] for m in order}
        stats = {m: (0, 0) for m in order}
        for m in order:
            while stats[m][1] < k:
                if m not in needs_samples(rules, stats, order, k, pid, domains[n]):
                    break
                if prior is not None and may_stop(rules, stats, order, k, pid, domains[n], m, prior, stop.error):
                    break
                got = stats[m][1]
                take = min(round_size, k - got)
                new = [rng.random() < probs[m] for _ in range(take)]
                draws[m] += new
                stats[m] = (stats[m][0] + sum(new), got + take)
                per_model[m] += take
        return stats, draws

    scored: dict[int, tuple[dict, dict, Any]] = {}
    if rule == "joint":
        from .joint_stop import fit_joint_prior, in_calibration

        cal = [n for n in range(len(rates)) if in_calibration(f"sim-{n}", stop.calibration, stop.seed)]
        for n in cal:
            scored[n] = (*score_one(n, None), None)
        prior = fit_joint_prior([scored[n][0] for n in cal], order, classes=stop.classes, draws=stop.draws,
                                seed=stop.seed)
        for n in range(len(rates)):
            if n not in scored:
                scored[n] = (*score_one(n, prior), prior)
    else:
        prior = stop.prior if rule == "bayes" else None
        for n in range(len(rates)):
            scored[n] = (*score_one(n, prior), prior)
    same = 0
    spent_total = 0.0
    for n in range(len(rates)):
        pid, (stats, draws, prior) = f"sim-{n}", scored[n]
        for m in order:
            draws[m] += [fill.random() < rates[n][m] for _ in range(k - len(draws[m]))]
        full = {m: (float(sum(draws[m])) / k,) * 2 for m in order}
        want = decide(rules, full, pid, domains[n])
        got_labels = decide(rules, point_rates(stats, k), pid, domains[n])
        if None in got_labels.values():
            raise AssertionError(f"{pid}: labels left open by the stopping rule: {got_labels} {stats}")
        same += got_labels == want
        if prior is not None:
            spent_total += spent(rules, stats, order + ["\0end"], k, pid, domains[n], "\0end", prior)
    drawn = sum(per_model.values())
    return SimResult(drawn, k * len(order) * len(rates), len(rates), same, spent_total, per_model)


def stop_of(error: float, prior: Any) -> SimpleNamespace:
    """A ``stop`` for ``simulate``: the statistical rule with budget ``error`` and ``prior``."""
    return SimpleNamespace(rule="bayes", error=error, prior=prior)


def joint_stop_of(error: float, calibration: float = 0.1, classes: int = 12, draws: int = 8,
                  seed: int = 0) -> SimpleNamespace:
    """A ``stop`` for ``simulate``: the joint rule (``joint_stop``) with budget ``error``."""
    return SimpleNamespace(rule="joint", error=error, calibration=calibration, classes=classes, draws=draws, seed=seed)


__all__ = ["PUBLISHED", "SWS_URL", "SimResult", "published_pool", "simulate", "prior_of", "stop_of", "joint_stop_of", "count_probs"]
