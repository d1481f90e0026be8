"""Honest statistics for small benchmarks: intervals for pass@1 and paired checkpoint comparisons.

Every function takes per-problem counts: ``n`` samples drawn and ``c`` of them correct.

* **Interval of pass@1 (averaged over k).** A two-stage percentile bootstrap: each of ``B``
  resamples draws the problems with replacement, then each drawn problem's ``n`` samples with
  replacement (for 0/1 outcomes that is ``c* ~ Binomial(n, c/n)``), and takes the mean of
  ``c*/n``. It covers both sources of noise: which problems the benchmark holds (30 on AIME, so
  one problem is 3.3 points) and which k samples the model happened to draw. The analytical
  standard error across problems (lighteval's ``stderr``: sd of the per-problem rates / sqrt(P))
  is reported beside it; it ignores the within-problem noise.
* **Paired difference of two checkpoints** on the problems both answered: the mean of the
  per-problem differences of pass@1, its interval by the same two-stage bootstrap applied to both
  checkpoints with one shared problem draw (so problem difficulty cancels), and a two-sided
  p-value by a sign-flip permutation test of the per-problem differences (under "no difference"
  each difference is as likely negative as positive): ``(1 + #{|mean d*| >= |mean d|}) / (1 + R)``.

* **Paired difference of mean rewards** (``paired_reward_difference``), for partial credit (code:
  the share of tests passed): the same paired bootstrap and sign-flip test on per-problem mean
  rewards, with each drawn problem's samples redrawn from its own rewards (not as 0/1 outcomes).

All resampling is seeded (``seed``), so the same files give the same intervals.
"""

from __future__ import annotations

import numpy as np

from .passk import pass_at_k

BOOTSTRAP = 2000
PERMUTATIONS = 10000
CI_METHOD = (f"95% percentile bootstrap over problems, then over samples within each problem "
             f"({BOOTSTRAP} resamples, seeded)")
PAIRED_METHOD = (f"mean of per-problem pass@1 differences on the shared problems; 95% paired bootstrap "
                 f"over problems then samples ({BOOTSTRAP} resamples); two-sided p-value by sign-flip "
                 f"permutation of the differences ({PERMUTATIONS} flips)")


def _arrays(counts: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    if not counts:
        raise ValueError("no problems to average over")
    n = np.array([int(a) for a, _ in counts], dtype=np.int64)
    c = np.array([int(b) for _, b in counts], dtype=np.int64)
    if (n < 1).any() or (c < 0).any() or (c > n).any():
        i = int(np.flatnonzero((n < 1) | (c < 0) | (c > n))[0])
        raise ValueError(f"problem {i}: need 1 <= n and 0 <= c <= n, got n={n[i]}, c={c[i]}")
    return n, c


def _resample(n: np.ndarray, c: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-problem rates of the problems ``rows`` (B × P) with their samples redrawn."""
    return rng.binomial(n[rows], c[rows] / n[rows]) / n[rows]


def pass1_interval(counts: list[tuple[int, int]], seed: int = 0, resamples: int = BOOTSTRAP) -> dict:
    """``{"pass@1", "ci95": [lo, hi], "stderr", "problems"}`` of per-problem ``(n, c)`` counts."""
    n, c = _arrays(counts)
    rates = c / n
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(n), size=(resamples, len(n)))
    means = _resample(n, c, rows, rng).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    stderr = float(rates.std(ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0
    return {"pass@1": float(rates.mean()), "ci95": [float(lo), float(hi)], "stderr": stderr, "problems": int(len(n))}


def pass_at_ks(counts: list[tuple[int, int]]) -> dict[str, dict]:
    """Unbiased pass@k' for every k' up to the smallest n: ``{"1": {"value", "stderr"}, ...}``
    (stderr across problems, as lighteval reports it)."""
    n, c = _arrays(counts)
    out = {}
    for k in range(1, int(n.min()) + 1):
        vals = np.array([pass_at_k(int(a), int(b), k) for a, b in zip(n, c)])
        se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else 0.0
        out[str(k)] = {"value": float(vals.mean()), "stderr": se}
    return out


def paired_difference(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]], seed: int = 0,
                      resamples: int = BOOTSTRAP, permutations: int = PERMUTATIONS) -> dict:
    """Checkpoint ``a`` minus checkpoint ``b`` on the problems both hold (``{problem_id: (n, c)}``).

    Returns ``{"problems", "a", "b", "diff", "ci95": [lo, hi], "p_value", "wins", "losses", "ties"}``
    (``a``/``b``: each one's pass@1 on the shared problems; wins: problems where a's rate is higher).
    Raises ``ValueError`` when they share no problem."""
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two checkpoints share no problem id: nothing to pair")
    na, ca = _arrays([a[i] for i in ids])
    nb, cb = _arrays([b[i] for i in ids])
    d = ca / na - cb / nb
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(ids), size=(resamples, len(ids)))
    boot = (_resample(na, ca, rows, rng) - _resample(nb, cb, rows, rng)).mean(axis=1)
    return _paired(d, boot, rng, permutations, float((ca / na).mean()), float((cb / nb).mean()))


def _paired(d: np.ndarray, boot: np.ndarray, rng: np.random.Generator, permutations: int, a: float, b: float) -> dict:
    """The paired result from per-problem differences ``d`` and bootstrap means ``boot``: percentile
    interval, sign-flip p-value (drawn from ``rng`` after the bootstrap), wins / losses / ties."""
    lo, hi = np.percentile(boot, [2.5, 97.5])
    signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, len(d)))
    null = np.abs((signs * d).mean(axis=1))
    observed = abs(float(d.mean()))
    p = (1 + int((null >= observed - 1e-12).sum())) / (1 + permutations)
    return {"problems": len(d), "a": a, "b": b, "diff": float(d.mean()), "ci95": [float(lo), float(hi)],
            "p_value": float(p), "wins": int((d > 1e-12).sum()), "losses": int((d < -1e-12).sum()),
            "ties": int((np.abs(d) <= 1e-12).sum())}


def _reward_means(rewards: list[list[float]], rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-problem mean rewards of the problems ``rows`` (B × P), each problem's samples redrawn."""
    out = np.empty(rows.shape)
    for i, r in enumerate(rewards):
        r = np.asarray(r, dtype=float)
        hit = rows == i
        draws = r[rng.integers(0, len(r), size=(int(hit.sum()), len(r)))]
        out[hit] = draws.mean(axis=1)
    return out


def paired_reward_difference(a: dict[str, list[float]], b: dict[str, list[float]], seed: int = 0,
                             resamples: int = BOOTSTRAP, permutations: int = PERMUTATIONS) -> dict:
    """Mean reward of ``a`` minus ``b`` on the problems both hold (``{problem_id: [reward, ...]}``).
    Returns the keys of :func:`paired_difference`, ``a``/``b`` being mean rewards."""
    ids = sorted(i for i in set(a) & set(b) if a[i] and b[i])
    if not ids:
        raise ValueError("the two checkpoints share no problem id with rewards: nothing to pair")
    ra, rb = [[float(x) for x in a[i]] for i in ids], [[float(x) for x in b[i]] for i in ids]
    ma, mb = np.array([np.mean(r) for r in ra]), np.array([np.mean(r) for r in rb])
    d = ma - mb
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(ids), size=(resamples, len(ids)))
    boot = (_reward_means(ra, rows, rng) - _reward_means(rb, rows, rng)).mean(axis=1)
    return _paired(d, boot, rng, permutations, float(ma.mean()), float(mb.mean()))
