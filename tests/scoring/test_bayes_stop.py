"""The statistical stopping rule (scoring.stop.rule: bayes): its predictive, its error, its claimed
budget checked by simulation, and a real scoring run that uses it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from stagerl.config import ConfigError, ModelRef, PriorConfig, SamplingConfig, ScoringConfig, StopConfig, load_recipe
from stagerl.data.problem import Problem
from stagerl.levels.rules import bind, decide, load_rules
from stagerl.scoring import needs_samples, score
from stagerl.scoring.bayes_stop import fit_prior, may_stop, predictive, stop_error
from stagerl.scoring.simulate import PUBLISHED, published_pool, simulate, stop_of
from stagerl.store import SampleStore
from scripted import Script

L1 = load_rules({"models": {"policy": "m"}, "levels": {"L1": "policy in (0,1)"}})
PAPER = ["small", "medium", "large", "strongest"]


def prior(a=1.0, b=1.0, zero=0.0, one=0.0):
    return SimpleNamespace(a=a, b=b, zero=zero, one=one)


def test_predictive_is_the_beta_binomial_mixture():
    flat = predictive(prior(), 0, 0, 5)  # uniform prior: every count of 5 equally likely
    assert flat == pytest.approx([1 / 6] * 6)
    # Beta(1,1) after 2 of 3: Beta(3,2); P(X=x of 2) = C(2,x) B(3+x, 4-x) / B(3,2)
    beta = [math.comb(2, x) * math.exp(math.lgamma(3 + x) + math.lgamma(4 - x) - math.lgamma(7)
                                       - (math.lgamma(3) + math.lgamma(2) - math.lgamma(5))) for x in range(3)]
    assert predictive(prior(), 2, 3, 2) == pytest.approx(beta)
    # point mass at 0 (half the problems): after 0 of 4, P(p=0 | data) = .5 / (.5 + .5 * 1/5)
    mixed = predictive(prior(zero=0.5), 0, 4, 4)
    w0 = 0.5 / (0.5 + 0.5 / 5)
    assert mixed[0] == pytest.approx(w0 + (1 - w0) * 5 / 9)  # Beta(1,5): P(no success in 4) = 5/9
    assert sum(mixed) == pytest.approx(1.0)
    assert predictive(prior(zero=0.5), 1, 4, 4)[0] < 1  # one success rules the point mass out
    with pytest.raises(ValueError, match="probability 0"):
        predictive(prior(zero=0.5, one=0.5), 1, 4, 4)  # only p in {0, 1}: 1 of 4 is impossible


def test_zero_error_where_the_exact_rule_stops_and_positive_where_it_does_not():
    p = prior(zero=0.4, one=0.4)
    for s, m in [(1, 2), (3, 8), (0, 8), (8, 8)]:
        exact_stops = "m" not in needs_samples(L1, {"m": (s, m)}, ["m"], 8, "p", "math")
        err = stop_error(L1, {"m": (s, m)}, ["m"], 8, "p", "math", "m", p)
        assert (err == 0.0) == exact_stops, (s, m, err)
    # 0 of 4: stopping says "never solved" (L1 False); it is wrong exactly when a success follows
    err = stop_error(L1, {"m": (0, 4)}, ["m"], 8, "p", "math", "m", p)
    assert err == pytest.approx(1 - predictive(p, 0, 4, 4)[0])
    assert may_stop(L1, {"m": (0, 4)}, ["m"], 8, "p", "math", "m", p, error=err + 1e-9)
    assert not may_stop(L1, {"m": (0, 4)}, ["m"], 8, "p", "math", "m", p, error=err - 1e-9)
    assert stop_error(L1, {"m": (0, 0)}, ["m"], 8, "p", "math", "m", p) == 1.0  # no sample, no stop


def test_a_problems_budget_is_shared_by_its_pairs():
    rules = load_rules({"models": {"a": "a", "b": "b"}, "levels": {"L": {"all": ["a in [0,0]", "b in [0,0]"]}}})
    p = prior(zero=0.45, one=0.45)
    alone = stop_error(rules, {"a": (0, 4)}, ["a", "b"], 8, "p", "math", "a", p)
    assert 0 < alone < 0.1
    budget = alone * 1.5  # room for a's stop, not for b's too
    assert may_stop(rules, {"a": (0, 4)}, ["a", "b"], 8, "p", "math", "a", p, budget)
    b_err = stop_error(rules, {"a": (0, 4), "b": (0, 4)}, ["a", "b"], 8, "p", "math", "b", p, settled=["a"])
    assert 0 < b_err <= budget and b_err > budget - alone
    assert not may_stop(rules, {"a": (0, 4), "b": (0, 4)}, ["a", "b"], 8, "p", "math", "b", p, budget)


def test_the_default_prior_is_the_fit_to_the_published_histogram():
    fitted = fit_prior(PUBLISHED["sws-7b"])
    d = StopConfig().prior
    assert fitted == pytest.approx((d.a, d.b, d.zero, d.one), abs=1e-3)


def _paper():
    return bind(load_rules("paper"), {"policy": "small", "small": "small", "medium": "medium",
                                      "large": "large", "strongest": "strongest"})


@pytest.mark.parametrize("coupling", ["independent", "comonotone"])
def test_simulation_label_disagreement_is_within_the_budget(coupling):
    """Simulation check of the claim: over many simulated problems the share whose labels differ
    from the k-sample labels stays within the budget (pool: the published SwS histograms)."""
    error = 0.1
    pool = published_pool({"small": "sws-3b", "medium": "sws-7b", "large": "sws-32b", "strongest": "sws-32b"},
                          400, seed=3, coupling=coupling)
    stop = stop_of(error, SimpleNamespace(**dict(zip("a b zero one".split(), fit_prior(PUBLISHED["sws-7b"])))))
    order = PAPER[::-1]
    exact = simulate(_paper(), pool, 16, order=order, seed=5)
    bayes = simulate(_paper(), pool, 16, order=order, stop=stop, seed=5)
    assert exact.same == exact.problems  # the exact rule's labels are the k-sample labels
    assert bayes.samples < exact.samples  # the statistical rule stopped pairs the exact one could not
    differ = 1 - bayes.share_same
    assert 0 < differ <= error
    assert bayes.spent / bayes.problems <= error  # what the rule spent, per problem, fits its budget


def test_simulation_under_the_rules_own_model_matches_its_spent_error():
    """Pass rates drawn from the rule's own prior, independently: the observed disagreement is close
    to the error the rule spent (the union bound is tight when one pair spends the budget)."""
    import random

    p = prior(a=0.5, b=0.5, zero=0.3, one=0.3)
    rng = random.Random(0)
    pool = []
    for _ in range(1500):
        u = rng.random()
        pool.append({"m": 0.0 if u < 0.3 else 1.0 if u < 0.6 else rng.betavariate(0.5, 0.5)})
    res = simulate(L1, pool, 16, order=["m"], stop=stop_of(0.05, p), seed=1)
    differ, spent = 1 - res.share_same, res.spent / res.problems
    assert res.samples < simulate(L1, pool, 16, order=["m"], seed=1).samples and 0 < differ <= 0.05
    assert abs(differ - spent) < 3 * math.sqrt(spent / res.problems) + 0.005


def test_a_scoring_run_with_the_statistical_rule(tmp_path):
    from stagerl.levels.build import label_table

    script = {"none": "00000000", "late": "00000001", "all": "11111111", "mixed": "10110101"}
    problems = [Problem(id=pid, domain="math", prompt=f"Problem {pid}?", answer="7") for pid in script]
    stop = StopConfig(rule="bayes", error=0.2, prior=PriorConfig(a=1.0, b=1.0, zero=0.45, one=0.45))
    cfg = ScoringConfig(models=[ModelRef(name="m")], k=8, round_size=2, sampling=SamplingConfig(max_tokens=8),
                        stop=stop)
    store = SampleStore(tmp_path / "s.sqlite")
    table = score(problems, store, cfg, rules=L1, progress=False, out_dir=tmp_path / "out",
                  engine_factory=lambda ref: Script(script, problems)).set_index("problem_id")
    assert store.get_meta("scoring")["stop"]["rule"] == "bayes"
    drawn = table["samples"].to_dict()
    assert drawn["mixed"] == 2 and drawn["none"] < 8 and drawn["late"] < 8 and drawn["all"] < 8
    # a pair stopped by the statistical rule is labelled at its point estimate
    assert (table.loc["none", "rate_lo"], table.loc["none", "rate_hi"]) == (0.0, 0.0)
    labels = label_table(table.reset_index(), L1).set_index("problem_id")["L1"].to_dict()
    assert labels == {"none": False, "late": False, "all": False, "mixed": True}  # 'late' is the price
    full = {pid: decide(L1, {"m": (s.count("1") / 8,) * 2}, pid, "math")["L1"] for pid, s in script.items()}
    assert full["late"] is True and sum(labels[p] != full[p] for p in script) == 1


def test_the_stop_section_is_checked(tmp_path):
    recipe = load_recipe({"scoring": {"stop": {"rule": "bayes", "error": 0.01}}})
    assert recipe.scoring.stop.rule == "bayes" and recipe.scoring.stop.prior.one == pytest.approx(0.14)
    assert load_recipe({}).scoring.stop.rule == "exact"  # the exact rule stays the default
    with pytest.raises(ConfigError, match=r"scoring\.stop\.rule: must be one of exact, bayes"):
        load_recipe({"scoring": {"stop": {"rule": "guess"}}})
    with pytest.raises(ConfigError, match=r"scoring\.stop\.error"):
        load_recipe({"scoring": {"stop": {"rule": "bayes", "error": 1.5}}})
    with pytest.raises(ConfigError, match=r"scoring\.stop\.prior\.zero"):
        load_recipe({"scoring": {"stop": {"prior": {"zero": 0.6, "one": 0.6}}}})


def test_under_the_published_prior_no_all_alike_pair_is_one_percent_sure_before_k():
    """Why a 1% budget stops nothing the exact rule does not (docs/benchmarks.md): under the default
    prior (fitted to SwS-7B's histogram) a pair that failed 15 of 15 still succeeds on the 16th with
    more than 1% chance, and one that succeeded 15 of 15 still fails with more than 1%."""
    p = StopConfig().prior
    assert 1 - predictive(p, 0, 15, 1)[0] == pytest.approx(0.024, abs=0.001)
    assert 1 - predictive(p, 15, 15, 1)[1] == pytest.approx(0.013, abs=0.001)
    assert 1 - predictive(p, 0, 8, 8)[0] == pytest.approx(0.227, abs=0.002)  # after 0 of 8
    assert 1 - predictive(p, 8, 8, 8)[8] == pytest.approx(0.144, abs=0.002)  # after 8 of 8
