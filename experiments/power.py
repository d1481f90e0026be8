"""Power of the toy experiments' comparisons (issue #24): the minimum detectable difference (MDD).

A paired comparison of two checkpoints on the same ``n`` held-out problems tests the mean of the
per-problem differences ``d_i`` (each problem's pass rate under arm a minus under arm b). With a
two-sided test at level ``alpha`` and power ``power``, the smallest true difference it detects is

    MDD = (z_{1 - alpha/2} + z_{power}) * sd(d) / sqrt(n)        (2.80 * se at 0.05 / 0.8)

``mdd_paired`` computes it from the per-problem differences, ``mdd_from_ci`` from a reported paired 95%
interval (se = width / (2 * 1.96), as the bootstrap interval of ``stagerl.evaluate.stats`` is close to
normal at these sizes), and ``problems_needed`` inverts it to size a held-out set.
``seed_spread`` summarises one statistic over seeds (between-run spread) for the tables, and
``t_quantile`` gives the t interval of a mean over a few seeds.
"""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist

Z = NormalDist()


def z_sum(alpha: float = 0.05, power: float = 0.8) -> float:
    """``z_{1-alpha/2} + z_{power}`` (2.8016 for 0.05 / 0.8)."""
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"need 0 < alpha < 1 and 0 < power < 1, got alpha={alpha}, power={power}")
    return Z.inv_cdf(1 - alpha / 2) + Z.inv_cdf(power)


def mdd(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """MDD of a paired mean difference with per-problem sd ``sd`` over ``n`` problems."""
    if n < 2 or sd < 0:
        raise ValueError(f"need n >= 2 problems and sd >= 0, got n={n}, sd={sd}")
    return z_sum(alpha, power) * sd / math.sqrt(n)


def mdd_paired(diffs: list[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """MDD from the per-problem differences themselves (their sample sd, ddof 1)."""
    return mdd(statistics.stdev(diffs) if len(diffs) > 1 else 0.0, len(diffs), alpha, power)


def mdd_from_ci(ci95: list[float] | tuple[float, float], alpha: float = 0.05, power: float = 0.8) -> float:
    """MDD from a reported paired 95% interval ``[lo, hi]``."""
    lo, hi = ci95
    if hi < lo:
        raise ValueError(f"ci95 [{lo}, {hi}]: upper end below lower end")
    return z_sum(alpha, power) * (hi - lo) / (2 * Z.inv_cdf(0.975))


def problems_needed(sd: float, target: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Held-out problems for an MDD of at most ``target`` when the per-problem difference sd is ``sd``."""
    if target <= 0:
        raise ValueError(f"target MDD must be positive, got {target}")
    return max(2, math.ceil((z_sum(alpha, power) * sd / target) ** 2))


def sampling_sd(rates: list[float], k: int) -> float:
    """sd of the per-problem difference between two evaluations of the SAME policy with ``k`` samples
    each (pure sampling noise: var = 2 p(1-p)/k averaged over problems). A floor for planning: arms
    that really differ add the spread of their per-problem effects on top."""
    if k < 1 or not rates:
        raise ValueError("need k >= 1 and at least one rate")
    return math.sqrt(2 * statistics.fmean(p * (1 - p) for p in rates) / k)


def seed_spread(values: list[float]) -> dict:
    """``{"seeds", "mean", "sd", "min", "max"}`` of one statistic across seeds (sd None for one seed)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"seeds": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {"seeds": len(vals), "mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals)}


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (0.5 < q < 1) of Student's t with ``df`` degrees of freedom (4.303 for 0.975
    and 2), by bisection on its CDF integrated with Simpson's rule (no SciPy in the environment)."""
    if not (0.5 < q < 1) or df < 1:
        raise ValueError(f"need 0.5 < q < 1 and df >= 1, got q={q}, df={df}")
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float, steps: int = 2000) -> float:  # 0.5 + integral of the density over [0, x]
        f = [math.exp(logc - (df + 1) / 2 * math.log1p((x * i / steps) ** 2 / df)) for i in range(steps + 1)]
        return 0.5 + x / steps / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))

    lo, hi = 0.0, 1.0
    while cdf(hi) < q:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2
