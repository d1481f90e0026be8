"""The joint statistical stopping rule (``scoring.stop: {rule: joint, error: ε}``): the statistical
rule of ``bayes_stop`` with a prior *across the model ladder*, fitted by empirical Bayes to a
calibration share of the run itself.

The model (stated). Problems are exchangeable: each is an independent draw from one population.
A problem belongs to one of ``C`` latent classes (class ``c`` with probability ``π_c``); in class
``c`` model ``m`` passes each sample independently with probability ``p_cm``. Given the class the
models are independent, so what the strong models did says something about the weak ones through
the class (a problem R1 always solves is likely in a class the 7B solves too). This is a finite
mixture approximation of an arbitrary joint distribution of the ladder's pass rates (the
nonparametric maximum-likelihood estimate of such a mixing distribution is itself discrete).

The fit (empirical Bayes). A share ``calibration`` of the problems (chosen by a seeded hash of the
problem id, so independent of its samples) is scored first, every model, with the *exact* rule:
its labels are the k-sample labels, and its samples are exactly those the exact rule needs, i.e.
whenever a pair could still change a label its sampling went on, so the calibration data show how
often "0 of 4" later turns into a success, and so on. ``π`` and ``p`` are fitted to the calibration
problems' samples by EM (the exact rule's stopping depends only on samples already seen, so the
binomial likelihood of what was drawn is the likelihood: the stopping is ignorable), with
Jeffreys pseudo-counts on each ``p_cm`` and one pseudo-problem per class on ``π``.

The fit's uncertainty. The calibration share is finite, so the rule does not trust one fit: it
fits ``draws`` Bayesian-bootstrap replicates (the calibration problems re-weighted with
Dirichlet(1, ..., 1) weights, a standard approximation of the posterior over the population) and
uses the average of their predictives, the posterior predictive under that approximation.

The rest of the problems are scored with the statistical rule of ``bayes_stop`` (budget per
problem, pairs spend it in scoring order, union bound), except that a pair's predictive of its
samples not drawn yet conditions on *all* the problem's samples so far, every model's: the class
posterior is ``π_c`` times the binomial likelihood of each model's (s, m), and the predictive of
the ``r`` samples left is the class-weighted mixture of ``Binomial(r, p_cm)``. What ``ε`` bounds:
for a problem outside the calibration share, the probability that any of its labels differs from
the k-sample labels, under the model (exchangeable problems, the latent-class joint law with the
bootstrap posterior over its parameters, independent samples given a pair's pass rate).
Calibration problems' labels are the k-sample labels.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Stats = Mapping[str, tuple[int, int]]


def in_calibration(problem_id: str, share: float, seed: int = 0) -> bool:
    """Whether a problem belongs to the calibration share (a seeded hash of its id, independent of
    its samples and of the other problems)."""
    h = hashlib.sha256(f"stagerl-calibration/{seed}/{problem_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64 < share


@dataclass
class LatentClassFit:
    """One fit: class weights ``weights`` (C,) and pass rates ``rates`` (C, M) over ``models``."""

    models: list[str]
    weights: np.ndarray
    rates: np.ndarray

    def log_lik(self, stats: Stats) -> np.ndarray:
        """log P(the problem's samples so far | class), per class."""
        out = np.zeros(len(self.weights))
        for j, name in enumerate(self.models):
            s, m = stats.get(name, (0, 0))
            if m:
                out += s * np.log(self.rates[:, j]) + (m - s) * np.log1p(-self.rates[:, j])
        return out

    def predictive(self, stats: Stats, model: str, r: int) -> np.ndarray:
        """``P(X = x)``, x = 0..r: successes of ``model`` among ``r`` more samples, given every
        model's samples of the problem so far."""
        log_w = np.log(self.weights) + self.log_lik(stats)
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        p = self.rates[:, self.models.index(model)]
        x = np.arange(r + 1)
        log_c = np.array([math.lgamma(r + 1) - math.lgamma(v + 1) - math.lgamma(r - v + 1) for v in x])
        log_binom = log_c[None, :] + x[None, :] * np.log(p)[:, None] + (r - x)[None, :] * np.log1p(-p)[:, None]
        return w @ np.exp(log_binom)


def fit_classes(records: Sequence[Stats], models: Sequence[str], classes: int, *, weights: Sequence[float] | None = None,
                iters: int = 300, tol: float = 1e-7) -> LatentClassFit:
    """EM fit of the latent-class model to ``records`` (one ``{model: (successes, samples)}`` per
    problem; a model may be missing or have fewer than k samples), each problem weighted by
    ``weights`` (default 1). Jeffreys pseudo-counts (1/2, 1/2) on every ``p_cm``, one pseudo-problem
    per class on ``π``. Deterministic: classes start on an even grid of rates shared by all models,
    ordered from hardest to easiest."""
    models = list(models)
    n, c = len(records), int(classes)
    if n == 0:
        raise ValueError("no calibration problems to fit the joint prior to")
    s = np.array([[rec.get(m, (0, 0))[0] for m in models] for rec in records], dtype=float)
    t = np.array([[rec.get(m, (0, 0))[1] for m in models] for rec in records], dtype=float)
    w_prob = np.ones(n) if weights is None else np.asarray(weights, dtype=float) * n / float(sum(weights))
    rates = np.tile(((np.arange(c) + 0.5) / c)[:, None], (1, len(models)))
    pi = np.full(c, 1.0 / c)
    last = -math.inf
    for _ in range(iters):
        log_r = np.log(pi)[None, :] + s @ np.log(rates).T + (t - s) @ np.log1p(-rates).T  # (n, C)
        top = log_r.max(axis=1, keepdims=True)
        resp = np.exp(log_r - top)
        norm = resp.sum(axis=1, keepdims=True)
        ll = float(w_prob @ (np.log(norm[:, 0]) + top[:, 0]))
        resp = resp / norm * w_prob[:, None]
        pi = (resp.sum(axis=0) + 1.0) / (w_prob.sum() + c)
        rates = (resp.T @ s + 0.5) / (resp.T @ t + 1.0)
        if ll - last < tol * max(1.0, abs(ll)):
            break
        last = ll
    return LatentClassFit(models, pi, rates)


@dataclass
class JointPrior:
    """The joint prior the rule uses: several bootstrap fits, their predictives averaged."""

    fits: list[LatentClassFit]

    def predict(self, stats: Stats, model: str, k: int) -> list[float]:
        """``P(X = x)`` for the ``k - m`` samples of ``model`` not drawn yet (the interface
        ``bayes_stop.stop_error`` asks a joint prior for)."""
        r = k - stats.get(model, (0, 0))[1]
        out = sum(f.predictive(stats, model, r) for f in self.fits) / len(self.fits)
        return [float(v) for v in out]


def fit_joint_prior(records: Sequence[Stats], models: Sequence[str], *, classes: int = 12, draws: int = 8,
                    seed: int = 0) -> JointPrior:
    """The joint prior from the calibration problems' samples: ``draws`` Bayesian-bootstrap fits
    (``draws == 1``: the plain fit), each with ``classes`` latent classes; seeded, deterministic."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if draws == 1:
        return JointPrior([fit_classes(records, models, classes)])
    rng = random.Random(f"stagerl-joint/{seed}")
    fits = []
    for _ in range(draws):
        w = [rng.expovariate(1.0) for _ in records]  # Dirichlet(1, ..., 1) up to scale
        fits.append(fit_classes(records, models, classes, weights=w))
    return JointPrior(fits)


__all__ = ["JointPrior", "LatentClassFit", "fit_classes", "fit_joint_prior", "in_calibration"]
