"""scripts/sim_online_filter.py: the offline model of online filtering's decisions used to choose its
settings (docs/benchmarks.md, issue 21 part 1)."""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys

import pytest

from repo_files import ROOT, load  # tests/ is on the path: conftest.py


@pytest.fixture(scope="module")
def sim():
    return load("scripts/sim_online_filter.py")


def pool_args(**kw) -> argparse.Namespace:
    base = dict(zero=0.5, one=0.08, zero_max=0.0, problems=40, steps=20, prompts=2, G=4, seed_k=8)
    return argparse.Namespace(**{**base, **kw})


def test_filtering_off_is_the_anchor_draw_for_draw(sim):
    # no skip (threshold 1), no extra rounds: the same prompts meet the same sampling noise
    off = sim.parse("skip_threshold=1.0@max_extra_rounds=0")
    for seed in range(5):
        assert sim.one_run(seed, pool_args(), 0.02, off) == sim.one_run(seed, pool_args(), 0.02, None)


def test_skipping_a_pool_of_never_solved_problems_saves(sim):
    runs = 20
    anchor = [sim.one_run(s, pool_args(), 0.0, None) for s in range(runs)]
    ours = [sim.one_run(s, pool_args(), 0.0, sim.parse("")) for s in range(runs)]
    a_cost = sum(g for g, _ in anchor) / sum(u for _, u in anchor)
    o_cost = sum(g for g, _ in ours) / sum(u for _, u in ours)
    assert o_cost < 0.8 * a_cost
    # dynamic sampling fills more slots with signal than plain GRPO's share
    assert sum(u for _, u in ours) > 2 * sum(u for _, u in anchor)


def test_unknown_setting_is_named(sim):
    with pytest.raises(SystemExit, match="seed_dacay"):
        sim.parse("seed_dacay=0.9")


def test_a_setting_that_is_not_key_value_stops_before_any_run():
    """group_signal.py's arm names ('dynamic+skip@...') are not simulation settings: the script says so
    and names the part, before it simulates anything (no anchor line printed)."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "sim_online_filter.py"), "--runs", "1",
                           "--settings", "dynamic+skip@seed_decay=0.97"], capture_output=True, text=True)
    assert done.returncode != 0 and "'dynamic+skip' is not key=value" in done.stderr
    assert "anchor share" not in done.stdout and "Traceback" not in done.stderr


def test_pool_from_measured_rates(sim, tmp_path):
    # --rates: the pool's problems are drawn from the given pass rates (here only 0 and 1: never any signal)
    args = pool_args(rates=[0.0, 1.0], problems=30)
    p = sim.pool(random.Random(0), args)
    assert len(p) == 30 and set(p) == {0.0, 1.0}
    generated, useful = sim.one_run(0, args, 0.0, None)
    assert (generated, useful) == (20 * 2, 0)
    bad = tmp_path / "rates.json"
    bad.write_text("[0.5, 1.5]")
    out = subprocess.run([sys.executable, str(sim.__file__), "--rates", str(bad), "--runs", "1"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "rates.json: need a non-empty JSON list" in out.stderr


def test_pool_from_the_fitted_truth(sim, tmp_path):
    # --truth fitted: 8-sample rates are estimates; the pool is drawn from the distribution fitted to them,
    # so a problem scored 0 of 8 may be one solved now and then, and rates between the measured ones occur
    rates = tmp_path / "rates.json"
    rates.write_text("[0.0, 0.0, 0.0, 0.5, 0.5, 1.0]")
    out = subprocess.run([sys.executable, str(sim.__file__), "--rates", str(rates), "--truth", "fitted", "--runs", "2",
                          "--problems", "20", "--steps", "3", "--drift", "0", "--zero-max", "0", "--settings", ""],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    shares = dict(x.rsplit(" ", 1) for x in out.stdout.splitlines()[0].removeprefix("fitted pool: ").split(", "))
    assert float(shares["< 0.05"]) > 0.3 and float(shares["> 0.95"]) > 0.05
    assert sum(float(v) for v in shares.values()) == pytest.approx(1.0, abs=0.02)
    from stagerl.train.online_prior import pool_grid

    fitted = [(p, math.exp(w)) for p, w in pool_grid([(8 * x, 8) for x in (0.0, 0.0, 0.0, 0.5, 0.5, 1.0)])]
    drawn = sim.pool(random.Random(0), pool_args(rates=[0.0, 0.5, 1.0], fitted=fitted, problems=400))
    assert len(drawn) == 400 and len(set(drawn) - {0.0, 0.5, 1.0}) > 50
    assert 0 < sum(0.0 < p < 0.1 for p in drawn)  # some "never solved" problems are solved now and then


def test_oracle_skips_by_the_true_pass_rate(sim):
    # the bound: skipping by the true rates, only the problems at 0.5 are generated (each all-equal 1/8 of
    # the time), while the seeded rule also spends groups on problems its 8 samples misplaced
    args = pool_args(rates=[0.0, 1.0, 0.5, 0.02, 0.98], problems=60)
    gen, useful = map(sum, zip(*(sim.one_run(s, args, 0.0, sim.parse(""), oracle=0.7) for s in range(10))))
    assert useful / gen > 0.8
    rule_gen, rule_useful = map(sum, zip(*(sim.one_run(s, args, 0.0, sim.parse("")) for s in range(10))))
    assert rule_useful / rule_gen < useful / gen
