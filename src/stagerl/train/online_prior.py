"""Pass-rate estimates for predictive skipping (``PassRateEstimator``: the stage's own groups;
``SeededEstimator``: also what the run already knows of the policy) and ``has_signal``; no TRL here.

Without a seed a problem is never skipped on its first visit, though the run may hold samples of the
very policy the stage trains: the reference scoring's (``samples.sqlite``, when the policy is one of
the scored models) and the stage's own re-levelling (``policy-<stage folder>`` in the same store).

**Which samples.** A model name of the run's store counts as the policy when its recorded model
(meta ``model/<name>``, written by scoring and re-levelling) is the stage's starting policy, or the
policy an earlier stage of the run started from (found through the earlier stages' ``stage.json``:
``policy`` → ``checkpoint``). Its *lag* is the number of training steps between the policy that drew
the samples and the stage's starting policy (0 for the starting policy itself; the earlier stages'
``steps`` summed otherwise).

**The rule (``online.seed_decay``).** A problem's ``n`` stored samples of mean reward ``m`` (each
reward clipped to [0, 1]), measured ``L`` training steps before the current step (the lag plus the
stage's ``global_step``), add ``w = n · seed_decay**L`` pseudo-observations to the problem's Beta
posterior: ``a += w·m``, ``b += w·(1 − m)``, on top of the stage's own discounted evidence. So the
seed fades geometrically as the policy moves away from the one that was measured; ``seed_decay = 0``
turns seeding off. A problem with a seed can be skipped on its first visit; such a skip (the
problem has no group of its own yet in this stage) counts in ``groups_skipped_seeded``.

**Which sampler.** Only samples drawn at the trainer's temperature and top-p count (the store's meta
records both). Re-levelling samples at the stage's temperature and ``relevel.top_p`` (1.0 by default,
as TRL trains); scoring at its own (the paper's T=0.6, top-p 0.95), whose pass rates are not the
ones training will see, so a stage at T=1.0 takes no seeds from it and says so on stderr.

**Drift (``online.seed_drift``).** Fading alone says the seeds grow less sure, not that the policy
got better. With ``seed_drift`` each group of a problem with a partly solved seed (0 < m < 1) is a
residual: the logit ``l`` of the seeds' mean then (each seed's Beta(prior, prior) posterior mean) and
the group's ``s`` of ``n``. One logit shift ``δ`` is fitted to all residuals (``fit_drift``: the
maximum of the binomial likelihood ``σ(l + δ)``, residual j weighted ``seed_decay**(step − step_j)``,
with a N(0, 1) prior on δ), and every partly solved seed's mean moves with it (its smoothed mean
goes to ``σ(logit + δ)``, its raw mean by as much). A seed never or always solved is neither measured
nor moved: the drift of problems in reach says nothing of those out of reach or mastered.
``metrics.jsonl`` logs ``seed_shift`` per step.

**Sharpening (``online.seed_sharpen``, with ``seed_drift``).** GRPO does not only raise pass rates:
it makes the policy surer, so a problem it solved half the time drifts towards always or never, and
groups of the seeded problems come out all-equal more and more often although their mean rate hardly
moves (seen in a real 20-step stage: 17% of those groups all-equal in steps 1–5, 65% in steps
16–20). One shift cannot say that. With ``seed_sharpen`` the fit is a logistic regression of the groups
on their seeds' logits: ``σ(δ + β·l)``, the slope ``β`` with a N(1, 1) prior (1: no sharpening), and
every partly solved seed moves to ``σ(δ + β·l)``. ``metrics.jsonl`` also logs ``seed_slope``.
Measured (``benchmarks/group_signal.py``, three seeds, docs/benchmarks.md): no gain over the shift alone
that the seeds' spread can show; most of what the seeds miss is single problems, not the pool's trend.

**The pool's prior (``online.pooled_prior``).** Beta(prior, prior) treats every problem as if any pass
rate were as likely as in the Jeffreys prior, though the seeds show the pool's shape (most problems
of a scored pool sit near 0 or 1, and a problem solved 7 times of 8 is more likely one near 1 that
failed once than one at 0.8). With ``pooled_prior`` the prior of every problem is the pool's
distribution of pass rates, fitted to all seeds at once (``pool_grid``: a distribution on a grid
of pass rates, denser near 0 and 1, by maximum marginal likelihood of the seeds' counts with a
Jeffreys pseudo-pool of ``POOL_STRENGTH`` problems mixed in): empirical Bayes. Each problem's
evidence (its discounted groups and seeds) then weighs that prior, and the skip rule reads the
grid posterior (``p_all_equal``, ``mean``). Not measured on a model yet: the simulation ranks it
better for a policy that hardly moves and worse for one that learns fast (a surer prior is slower to
overturn).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any


EQUAL_TOL = 1e-6  # rewards of a group within this of each other are equal (float noise of partial credit)


def has_signal(rewards: list[float]) -> bool:
    """Whether a group's rewards differ (non-zero variance); NaN (unscorable) rewards are ignored."""
    vals = [r for r in rewards if r == r]
    return len(vals) > 1 and max(vals) - min(vals) > EQUAL_TOL


class PassRateEstimator:
    """Per-problem discounted Beta(a, b) posterior of the policy's pass rate."""

    def __init__(self, prior: float = 0.5, decay: float = 1.0) -> None:
        self.prior, self.decay = prior, decay
        self.ab: dict[Any, tuple[float, float]] = {}
        self.groups: Counter = Counter()

    def update(self, key: Any, rewards: list[float]) -> None:
        """Add one group's rewards (each in [0, 1]) after discounting older evidence."""
        vals = [min(1.0, max(0.0, r)) for r in rewards if r == r]
        a, b = self.ab.get(key, (self.prior, self.prior))
        a = self.prior + self.decay * (a - self.prior) + sum(vals)
        b = self.prior + self.decay * (b - self.prior) + len(vals) - sum(vals)
        self.ab[key] = (a, b)
        self.groups[key] += 1

    def _ab(self, key: Any) -> tuple[float, float]:
        return self.ab.get(key, (self.prior, self.prior))

    def known(self, key: Any) -> bool:
        """Whether the estimate holds any evidence on ``key`` (an unknown problem is never skipped)."""
        return bool(self.groups[key])

    def mean(self, key: Any) -> float:
        a, b = self._ab(key)
        return a / (a + b)

    def p_all_equal(self, key: Any, n: int) -> float:
        """Predicted probability that the next group of ``n`` is all failures or all successes."""
        a, b = self._ab(key)

        def log_beta(x: float, y: float) -> float:
            return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

        base = log_beta(a, b)
        return math.exp(log_beta(a, b + n) - base) + math.exp(log_beta(a + n, b) - base)


Seed = tuple[float, int, int]
"""(mean reward in [0, 1], samples, lag in training steps before the stage's start)."""


class SeededEstimator(PassRateEstimator):
    """``PassRateEstimator`` whose posterior also holds each problem's seeds, discounted to ``step``;
    with ``drift``, each seed's mean is moved by the logit shift (and, with ``sharpen``, the slope) the
    stage's own groups show (``fit_drift``)."""

    def __init__(self, prior: float = 0.5, decay: float = 1.0, seed_decay: float = 0.0,
                 seeds: dict[Any, list[Seed]] | None = None, drift: bool = False, pooled: bool = False,
                 sharpen: bool = False) -> None:
        super().__init__(prior, decay)
        self.seed_decay = seed_decay
        self.seeds: dict[Any, list[Seed]] = {}
        self.step = 0
        """The stage's current training step (set by the trainer before each step's decisions)."""
        self.drift = drift
        self.residuals: list[tuple[float, float, int, int]] = []
        """Per group of a seeded problem: (logit of its seeds' mean then, successes, samples, step)."""
        self.shift = 0.0
        """The fitted logit shift of the seeds (0 without ``drift``)."""
        self.sharpen = sharpen
        self.slope = 1.0
        """The fitted slope of the seeds' logits (1 without ``sharpen``)."""
        self.pooled = pooled
        self.grid: list[tuple[float, float]] | None = None
        """The pool's prior: (pass rate, log weight) per grid point, fitted to the seeds (None: Beta(prior, prior))."""
        self.set_seeds(seeds or {})

    def set_seeds(self, seeds: dict[Any, list[Seed]]) -> None:
        """Replace the seeds (and refit the pool's prior from them, with ``pooled``)."""
        self.seeds = {k: [tuple(s) for s in v] for k, v in seeds.items()}
        if self.pooled:
            self.grid = pool_grid([(n * m, n) for v in self.seeds.values() for m, n, _ in v])
            self._logs = [(math.log(p), math.log1p(-p)) for p, _ in self.grid]

    @classmethod
    def for_config(cls, online: Any, seeds: dict[Any, list[Seed]] | None) -> "SeededEstimator":
        """The estimator an ``OnlineConfig`` asks for, holding ``seeds``."""
        return cls(online.prior, online.decay, online.seed_decay, seeds, drift=online.seed_drift,
                   pooled=online.pooled_prior, sharpen=online.seed_sharpen)

    def seed_weight(self, key: Any) -> float:
        return sum(n * self.seed_decay ** (lag + self.step) for _, n, lag in self.seeds.get(key, ()))

    def _smoothed(self, m: float, n: int) -> float:
        return (n * m + self.prior) / (n + 2 * self.prior)

    def seed_logit(self, key: Any) -> float | None:
        """Logit of the partly solved seeds' mean now (each seed's Beta(prior, prior) posterior mean,
        weighted as in ``_ab``); None when the problem has no partly solved seed that weighs anything.
        A seed never or always solved is neither measured nor moved: what the partly solved problems'
        groups show of the policy's drift says nothing of problems out of its reach or mastered."""
        parts = [(n * self.seed_decay ** (lag + self.step), self._smoothed(m, n))
                 for m, n, lag in self.seeds.get(key, ()) if 0.0 < m < 1.0]
        total = sum(w for w, _ in parts)
        if self.seed_decay <= 0 or total <= 0:
            return None
        mean = sum(w * q for w, q in parts) / total
        return math.log(mean / (1.0 - mean))

    def update(self, key: Any, rewards: list[float]) -> None:
        vals = [min(1.0, max(0.0, r)) for r in rewards if r == r]
        logit = self.seed_logit(key) if self.drift and vals else None
        if logit is not None:
            self.residuals.append((logit, sum(vals), len(vals), self.step))
            self.shift, self.slope = fit_drift(self.residuals, self.step, self.seed_decay, slope=self.sharpen)
        super().update(key, rewards)

    def _ab(self, key: Any) -> tuple[float, float]:
        a, b = super()._ab(key)
        for m, n, lag in self.seeds.get(key, ()) if self.seed_decay > 0 else ():
            w = n * self.seed_decay ** (lag + self.step)
            if (self.shift or self.slope != 1.0) and 0.0 < m < 1.0:  # the smoothed mean moved, the raw one by as much
                q = self._smoothed(m, n)
                moved = 1.0 / (1.0 + math.exp(-self.slope * math.log(q / (1.0 - q)) - self.shift))
                m = min(1.0, max(0.0, m + moved - q))
            a, b = a + w * m, b + w * (1.0 - m)
        return a, b

    def _posterior(self, key: Any) -> list[tuple[float, float]]:
        """(pass rate, posterior weight) on the pool's grid, given the problem's evidence."""
        a, b = self._ab(key)
        a, b = max(0.0, a - self.prior), max(0.0, b - self.prior)  # the evidence, without Beta(prior, prior)
        logs = [w + a * lp + b * lq for (_, w), (lp, lq) in zip(self.grid, self._logs)]
        top = max(logs)
        ws = [math.exp(x - top) for x in logs]
        total = sum(ws)
        return [(p, w / total) for (p, _), w in zip(self.grid, ws)]

    def mean(self, key: Any) -> float:
        if self.grid is None:
            return super().mean(key)
        return sum(p * w for p, w in self._posterior(key))

    def p_all_equal(self, key: Any, n: int) -> float:
        if self.grid is None:
            return super().p_all_equal(key, n)
        return sum(w * (p ** n + (1.0 - p) ** n) for p, w in self._posterior(key))

    def known(self, key: Any) -> bool:
        return super().known(key) or (self.seed_decay > 0 and self.seed_weight(key) > 0)

    def state(self) -> dict[str, Any]:
        """The estimate as JSON-safe data (the trainer's ``online_state`` holds it)."""
        return {"estimator": [[k, a, b, self.groups[k]] for k, (a, b) in self.ab.items()],
                "seeds": [[k, [list(s) for s in v]] for k, v in self.seeds.items()],
                "drift": {"residuals": [list(r) for r in self.residuals], "shift": self.shift, "slope": self.slope}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` returned."""
        self.ab = {k: (a, b) for k, a, b, _ in state["estimator"]}
        self.groups = Counter({k: n for k, _, _, n in state["estimator"]})
        self.set_seeds({k: v for k, v in state.get("seeds", [])})  # the pool's prior is a function of the seeds
        drift = state.get("drift") or {}
        self.residuals = [tuple(r) for r in drift.get("residuals", [])]
        self.shift = float(drift.get("shift", 0.0))
        self.slope = float(drift.get("slope", 1.0))


def fit_drift(residuals: list[tuple[float, float, int, int]], step: int, discount: float, scale: float = 1.0,
              slope: bool = False) -> tuple[float, float]:
    """The logit shift δ (and, with ``slope``, the slope β) of the seeds that best explain the stage's
    groups of seeded problems: the maximum of Σ_j w_j [s_j log σ(δ + β l_j) + (n_j − s_j) log σ(−δ − β l_j)]
    − δ² / (2 scale²) − (β − 1)² / (2 scale²) (Newton; concave), l_j the logit of the problem's seeds'
    mean when group j was drawn, s_j of n_j its successes, w_j = discount ** (step − step_j) so that
    recent groups count most as the policy moves. The priors keep a few groups from moving every seed
    far; without ``slope`` β stays 1. Returns (δ, β)."""
    d, b = 0.0, 1.0
    for _ in range(100):
        g0, g1 = -d / scale ** 2, -(b - 1.0) / scale ** 2
        h00 = h11 = 1.0 / scale ** 2
        h01 = 0.0
        for logit, s, n, at in residuals:
            w = discount ** (step - at) if discount > 0 else float(at == step)
            p = 1.0 / (1.0 + math.exp(-(d + b * logit)))
            r, v = w * (s - n * p), w * n * p * (1.0 - p)
            g0, h00 = g0 + r, h00 + v
            g1, h01, h11 = g1 + r * logit, h01 + v * logit, h11 + v * logit * logit
        if slope:
            det = h00 * h11 - h01 * h01
            dd, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        else:
            dd, db = g0 / h00, 0.0
        d, b = d + dd, max(0.0, b + db)
        if abs(dd) + abs(db) < 1e-10:
            break
    return d, b


POOL_GRID = 200
"""Grid points of the pooled prior: quantiles of Beta(1/2, 1/2), so that uniform weights are Jeffreys' prior."""
POOL_STRENGTH = 2.0
"""Pseudo-problems drawn from Jeffreys' prior that the pooled fit mixes in (keeps every pass rate possible)."""


def pool_grid(counts: list[tuple[float, int]], points: int = POOL_GRID, strength: float = POOL_STRENGTH,
              iterations: int = 500) -> list[tuple[float, float]]:
    """The pool's distribution of pass rates that best explains ``counts`` ((successes, samples) per seed):
    weights on the pass rates ``sin²(π/2 · (g + ½)/points)`` maximizing Σ_seeds log Σ_g π_g Bin(s | n, p_g)
    plus a Dirichlet(1 + strength/points) penalty (EM), as (pass rate, log weight) pairs. With no counts the
    weights stay uniform: Jeffreys' Beta(½, ½)."""
    grid = [math.sin(math.pi / 2 * (g + 0.5) / points) ** 2 for g in range(points)]
    distinct = Counter((round(s, 6), n) for s, n in counts if n > 0)
    weights = [1.0 / points] * points
    lik = {}  # per distinct count: Bin(s | n, p_g) / its largest value over the grid
    for s, n in distinct:
        logs = [s * math.log(p) + (n - s) * math.log1p(-p) for p in grid]
        top = max(logs)
        lik[s, n] = [math.exp(x - top) for x in logs]
    total = sum(distinct.values())
    for _ in range(iterations if distinct else 0):
        acc = [strength / points] * points
        for key, many in distinct.items():
            row = [w * x for w, x in zip(weights, lik[key])]
            norm = sum(row)
            for g, x in enumerate(row):
                acc[g] += many * x / norm
        new = [x / (total + strength) for x in acc]
        moved = max(abs(x - y) for x, y in zip(new, weights))
        weights = new
        if moved < 1e-9:
            break
    return [(p, math.log(w)) for p, w in zip(grid, weights)]


def _policy_lags(stage_dir: Path, policy: str) -> dict[str, int]:
    """Each policy this run trained from up to ``stage_dir``'s start -> steps between it and ``policy``."""
    lags = {policy: 0}
    index = _stage_index(stage_dir) if stage_dir.parent.is_dir() else None
    earlier = sorted((p for p in stage_dir.parent.iterdir() if p.is_dir() and _stage_index(p) is not None
                      and _stage_index(p) < index), key=_stage_index, reverse=True) if index is not None else []
    for folder in earlier:
        path = folder / "stage.json"
        if not path.is_file():
            continue
        info = json.loads(path.read_text())
        if str(info.get("checkpoint")) in lags and info.get("policy") is not None:
            lags.setdefault(str(info["policy"]), lags[str(info["checkpoint"])] + int(info.get("steps") or 0))
    return lags


def _stage_index(folder: Path) -> int | None:
    m = re.match(r"(\d+)_", folder.name)
    return int(m.group(1)) if m else None


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def _other_sampler(meta: dict, sampler: tuple[float, float] | None) -> str | None:
    """Why samples recorded with ``meta`` do not measure the trainer's ``sampler`` (temperature, top-p), or
    None when they do (or when either side does not say)."""
    if sampler is None or meta.get("temperature") is None or meta.get("top_p") is None:
        return None
    got = (float(meta["temperature"]), float(meta["top_p"]))
    if all(abs(a - b) < 1e-9 for a, b in zip(got, sampler)):
        return None
    return f"drawn at temperature {got[0]:g}, top-p {got[1]:g}; the stage samples at {sampler[0]:g}, {sampler[1]:g}"


def policy_seeds(stage_dir: str | Path, policy: str | Path, pool: list[Any],
                 sampler: tuple[float, float] | None = None) -> dict[int, list[Seed]]:
    """Seeds of the pool's problems (key: pool index) from the run's ``samples.sqlite`` (the run folder
    is ``stage_dir``'s grandparent); empty when the store or the policy's samples are absent.
    ``sampler``: the trainer's (temperature, top-p). Samples of the policy recorded at another
    temperature or top-p measure another pass rate (scoring's T=0.6 solves more than training's T=1.0),
    so they are not seeds: a note on stderr names them."""
    from ..store import SampleStore

    stage_dir = Path(stage_dir)
    path = stage_dir.parent.parent / "samples.sqlite"
    if not path.is_file():
        return {}
    lags = _policy_lags(stage_dir, str(policy))
    index = {p.id: i for i, p in enumerate(pool)}
    seeds: dict[int, list[Seed]] = {}
    with SampleStore(path) as store:
        names = [m for (m,) in store.query("SELECT DISTINCT model FROM samples")]
        for name in sorted(names):
            meta = store.get_meta(f"model/{name}") or {}
            made_by = meta.get("model")
            lag = next((v for k, v in lags.items() if made_by is not None and _same(str(made_by), k)), None)
            if lag is None:
                continue
            why = _other_sampler(meta, sampler)
            if why:
                print(f"[stagerl] note: the stored samples of '{name}' are the policy's but not seeds of predictive "
                      f"skipping ({why})", file=sys.stderr, flush=True)
                continue
            for pid, rewards in sorted(store.indices(name).items()):
                vals = [min(1.0, max(0.0, r)) for r in rewards.values() if r == r]
                if pid in index and vals:
                    seeds.setdefault(index[pid], []).append((sum(vals) / len(vals), len(vals), lag))
    return seeds
