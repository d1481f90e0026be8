"""experiments/power.py: the minimum detectable difference every comparison in docs/results.md states."""

from __future__ import annotations

import random

import pytest

from repo_files import load  # tests/ is on the path: conftest.py

power = load("experiments/power.py")


def test_mdd_matches_the_textbook_formula_and_inverts():
    assert power.z_sum() == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert power.mdd(0.26, 40) == pytest.approx(2.801585 * 0.26 / 40 ** 0.5, rel=1e-5)
    n = power.problems_needed(0.26, 0.05)
    assert power.mdd(0.26, n) <= 0.05 < power.mdd(0.26, n - 1)
    assert power.mdd_paired([0.25, -0.25] * 20) == pytest.approx(power.mdd(power.statistics.stdev([0.25, -0.25] * 20), 40))
    # from a 95% interval: se = width / 3.92, so a [-0.05, 0.30] interval gives 2.80 * 0.35 / 3.92
    assert power.mdd_from_ci([-0.05, 0.30]) == pytest.approx(0.2502, abs=1e-3)
    with pytest.raises(ValueError):
        power.mdd(0.2, 1)
    with pytest.raises(ValueError):
        power.mdd_from_ci([0.3, 0.1])


def test_mdd_is_the_difference_a_paired_test_detects_80_percent_of_the_time():
    """Simulation: a true shift of exactly the MDD is found (|mean/se| > 1.96) in about 80% of experiments."""
    rng = random.Random(0)
    sd, n = 0.3, 60
    shift = power.mdd(sd, n)
    hits = 0
    for _ in range(2000):
        d = [rng.gauss(shift, sd) for _ in range(n)]
        se = power.statistics.stdev(d) / n ** 0.5
        hits += abs(power.statistics.fmean(d)) / se > 1.96
    assert 0.75 < hits / 2000 < 0.85


def test_sampling_sd_and_seed_spread():
    assert power.sampling_sd([0.5], k=4) == pytest.approx((2 * 0.25 / 4) ** 0.5)
    assert power.sampling_sd([0.0, 1.0], k=4) == 0.0
    s = power.seed_spread([0.4, 0.5, None, 0.6])
    assert s["seeds"] == 3 and s["mean"] == pytest.approx(0.5) and s["sd"] == pytest.approx(0.1)
    assert power.seed_spread([0.4])["sd"] is None and power.seed_spread([])["mean"] is None
