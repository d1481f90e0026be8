"""scripts/scoring_bound.py: the hindsight bound of early stops of all-alike pairs, on a small real store."""

from __future__ import annotations

import math
import sys

import pytest

from stagerl.store import SampleStore

from .repo_files import load

K = 16


@pytest.fixture(scope="module")
def bound():
    return load("scripts/scoring_bound.py")


def _rows(pid: str, model: str, solved: list[bool], tokens: int) -> list[dict]:
    return [{"problem_id": pid, "model": model, "idx": i, "domain": "math", "text": "x", "tokens": tokens,
             "finish": "stop", "reward": float(s)} for i, s in enumerate(solved)]


@pytest.fixture()
def run(tmp_path):
    """Three problems: ``never`` (cold 0 of 16: dropped), ``late`` (cold fails 14 times, then solves twice;
    hot partial), ``easy`` (cold always, hot partial). The adaptive store holds what the exact rule drew."""
    pairs = {("never", "cold"): ([False] * K, 10, K), ("never", "hot"): ([False] * K, 7, 0),
             ("late", "cold"): ([False] * 14 + [True, True], 20, K), ("late", "hot"): ([True, False] * 8, 5, 4),
             ("easy", "cold"): ([True] * K, 3, K), ("easy", "hot"): ([False, True] * 8, 4, 2)}
    with SampleStore(tmp_path / "fixed.sqlite") as fixed, SampleStore(tmp_path / "adaptive-strongest-first.sqlite") as ad:
        for (pid, model), (solved, tokens, drawn) in pairs.items():
            fixed.add(_rows(pid, model, solved, tokens))
            ad.add(_rows(pid, model, solved, tokens)[:drawn])
    return tmp_path


def test_thresholds_at_k_are_the_exact_rule(bound, run):
    rules = bound.bind(bound.load_rules(bound.RULES), bound.BIND)
    full, drawn, dom = bound.load(run, K)
    tokens, same = bound.evaluate(rules, full, drawn, dom, K, (K, K, K, K))
    assert same == 3
    assert tokens == 16 * 10 + 16 * 20 + 4 * 5 + 16 * 3 + 2 * 4  # what the exact rule drew


def test_an_early_stop_before_a_late_success_changes_the_label_and_saves_its_draws(bound, run):
    rules = bound.bind(bound.load_rules(bound.RULES), bound.BIND)
    full, drawn, dom = bound.load(run, K)
    tokens, same = bound.evaluate(rules, full, drawn, dom, K, (13, K, K, K))
    # never: 13 cold draws; late: stopped at 0 of 13, so dropped (hot not drawn): its label differs
    assert same == 2
    assert tokens == 13 * 10 + 13 * 20 + 16 * 3 + 2 * 4
    # the always-solved pair stopped at 12 of 12 keeps easy's labels (hot was partial either way)
    assert bound.evaluate(rules, full, drawn, dom, K, (K, 12, K, K)) == (16 * 10 + 16 * 20 + 4 * 5 + 12 * 3 + 2 * 4, 3)


def test_late_changes_and_the_interval(bound, run):
    full, drawn, _ = bound.load(run, K)
    pids = {p for p, _ in drawn}
    assert bound.late_changes(full, pids, "cold", 13, False) == (2, 1)
    assert bound.late_changes(full, pids, "cold", 15, False) == (1, 0)
    assert bound.late_changes(full, pids, "cold", 8, True) == (1, 0)
    n = 40
    lo, hi = bound.clopper_pearson(0, n)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-9)
    lo, hi = bound.clopper_pearson(n, n)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / n), abs=1e-9)
    lo, hi = bound.clopper_pearson(2, 133)
    assert round(lo, 3) == 0.002 and round(hi, 3) == 0.053  # the figure docs/benchmarks.md quotes ([0.2%, 5.3%])
    assert math.isclose(sum(bound.binom_cdf(x, 10, 0.3) - bound.binom_cdf(x - 1, 10, 0.3) for x in range(11)), 1.0)


def test_main_prints_the_cheapest_combination(bound, run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["scoring_bound.py", "--run", str(run), "--k", str(K)])
    bound.main()
    out = capsys.readouterr().out
    assert "3 problems, k=16" in out
    line = next(x for x in out.splitlines() if x.startswith("cheapest with >= 99%"))
    assert "3/3 identical" in line
    # the cheapest stops cold's zeros at 15 (late's first success is its 15th draw) and its ones at 2
    ratio = float(line.split(": ")[1].split(" of fixed")[0])
    fixed = 16 * (10 + 7 + 20 + 5 + 3 + 4)
    assert ratio == round((15 * 10 + 16 * 20 + 4 * 5 + 2 * 3 + 2 * 4) / fixed, 3)
