"""The joint statistical stopping rule (scoring.stop.rule: joint): its calibration share, its fit,
its predictive across the ladder, its claimed budget checked by simulation (a pool of its own model
and a misspecified one), and a real scoring run that uses it."""

from __future__ import annotations

import random

import pytest

from stagerl.config import ConfigError, ModelRef, SamplingConfig, ScoringConfig, StopConfig, load_recipe
from stagerl.data.problem import Problem
from stagerl.levels.rules import bind, decide, load_rules
from stagerl.scoring import score
from stagerl.scoring.bayes_stop import predictive, stop_error
from stagerl.scoring.joint_stop import fit_classes, fit_joint_prior, in_calibration
from stagerl.scoring.simulate import joint_stop_of, published_pool, simulate
from stagerl.store import SampleStore
from scripted import Script

PAPER = ["small", "medium", "large", "strongest"]
# a population of the model's own form: classes with pass rates per model (weakest first), some exactly 0 or 1
CLASSES = [(0.25, (0.0, 0.0, 0.0, 0.0)), (0.30, (1.0, 1.0, 1.0, 1.0)), (0.15, (0.0, 0.6, 1.0, 1.0)),
           (0.15, (0.3, 0.7, 0.9, 1.0)), (0.15, (0.0, 0.0, 0.2, 0.5))]


def _paper():
    return bind(load_rules("paper"), {"policy": "small", **{m: m for m in PAPER}})


def _class_pool(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        u, acc = rng.random(), 0.0
        for w, rates in CLASSES:
            acc += w
            if u < acc:
                break
        out.append(dict(zip(PAPER, rates)))
    return out


def test_the_calibration_share_is_a_seeded_hash_of_the_id():
    ids = [f"p{i}" for i in range(4000)]
    picked = [i for i in ids if in_calibration(i, 0.1)]
    assert abs(len(picked) - 400) < 3 * (4000 * 0.1 * 0.9) ** 0.5
    assert picked == [i for i in ids if in_calibration(i, 0.1)]  # deterministic
    assert picked != [i for i in ids if in_calibration(i, 0.1, seed=1)]
    assert all(in_calibration(i, 1.0) for i in ids[:50])


def test_the_fit_recovers_a_two_class_population_from_censored_samples():
    rng = random.Random(0)
    records = []
    for _ in range(600):
        rates = (0.05, 0.2) if rng.random() < 0.3 else (0.9, 0.99)
        m_b = rng.choice([4, 8, 16])  # b stopped early at random (ignorable: not from its samples)
        records.append({"a": (sum(rng.random() < rates[0] for _ in range(16)), 16),
                        "b": (sum(rng.random() < rates[1] for _ in range(m_b)), m_b)})
    fit = fit_classes(records, ["a", "b"], 2)
    hard = int(fit.rates[:, 0].argmin())
    assert fit.weights[hard] == pytest.approx(0.3, abs=0.05)
    assert fit.rates[hard] == pytest.approx([0.05, 0.2], abs=0.04)
    assert fit.rates[1 - hard] == pytest.approx([0.9, 0.99], abs=0.03)


def test_the_predictive_conditions_on_the_other_models_samples():
    """What the strong model did moves the weak model's predictive; an independent prior cannot."""
    rng = random.Random(1)
    records = []
    for _ in range(400):
        p = 1.0 if rng.random() < 0.5 else 0.0  # a problem both models always or never solve
        records.append({"weak": (int(16 * p), 16), "strong": (int(16 * p), 16)})
    prior = fit_joint_prior(records, ["weak", "strong"], classes=4, draws=3)
    solved = prior.predict({"strong": (16, 16), "weak": (2, 2)}, "weak", 16)
    failed = prior.predict({"strong": (0, 16), "weak": (0, 2)}, "weak", 16)
    assert sum(solved) == pytest.approx(1.0) and len(solved) == 15
    assert solved[-1] > 0.99 and failed[0] > 0.99
    alone = prior.predict({"weak": (2, 2)}, "weak", 16)  # the same pair without the strong model's samples
    assert alone[-1] > 0.99  # its own samples agree with the population: all-or-nothing
    rules = load_rules({"models": {"weak": "weak", "strong": "strong"}, "levels": {"L1": "weak in (0,1)"}})
    err = stop_error(rules, {"strong": (16, 16), "weak": (2, 2)}, ["strong", "weak"], 16, "p", "math", "weak",
                     prior, settled=["strong"])
    assert err == pytest.approx(1 - solved[-1])
    # the independent published prior after 2 of 2: far from sure
    assert 1 - predictive(StopConfig().prior, 2, 2, 14)[14] > 0.3


def test_simulation_under_the_rules_own_model_stays_within_the_budget():
    """A pool of the model's own form (latent classes, some rates exactly 0 or 1): at a 2% budget the
    joint rule stops pairs the exact rule cannot, and the share of problems whose labels differ from
    the k-sample labels is within the budget."""
    pool = _class_pool(700, seed=2)
    order = PAPER[::-1]
    exact = simulate(_paper(), pool, 16, order=order, seed=4)
    joint = simulate(_paper(), pool, 16, order=order, seed=4, stop=joint_stop_of(0.02, calibration=0.15, classes=8,
                                                                                  draws=2))
    assert exact.same == exact.problems
    assert joint.samples < 0.9 * exact.samples
    assert 1 - joint.share_same <= 0.02
    assert joint.spent / joint.problems <= 0.02


def test_simulation_on_a_misspecified_pool_stays_within_the_budget():
    """The published SwS histograms with one latent difficulty and continuous rates (no class of the
    model is exact): at a 10% budget the labels that differ stay within it."""
    pool = published_pool({"small": "sws-3b", "medium": "sws-7b", "large": "sws-32b", "strongest": "sws-32b"},
                          600, seed=3)
    joint = simulate(_paper(), pool, 16, order=PAPER[::-1], seed=5, stop=joint_stop_of(0.1, classes=8, draws=2))
    exact = simulate(_paper(), pool, 16, order=PAPER[::-1], seed=5)
    assert joint.samples < exact.samples
    assert 0 < 1 - joint.share_same <= 0.1
    assert joint.spent / joint.problems <= 0.1


def test_a_scoring_run_with_the_joint_rule(tmp_path):
    """Calibration problems first with the exact rule, then the rest with the fitted prior: a
    population where a problem is always or never solved, so the rest stop after their first round."""
    ids = [f"q{i}" for i in range(80)]
    script = {pid: ("1" if i % 2 else "0") * 8 for i, pid in enumerate(ids)}
    problems = [Problem(id=pid, domain="math", prompt=f"Problem {pid}?", answer="7") for pid in ids]
    rules = load_rules({"models": {"policy": "m"}, "levels": {"L1": "policy in (0,1)"}})
    stop = StopConfig(rule="joint", error=0.05, calibration=0.5, classes=2, draws=2)
    cfg = ScoringConfig(models=[ModelRef(name="m")], k=8, round_size=2, sampling=SamplingConfig(max_tokens=8), stop=stop)
    store = SampleStore(tmp_path / "s.sqlite")
    table = score(problems, store, cfg, rules=rules, progress=False, out_dir=tmp_path / "out",
                  engine_factory=lambda ref: Script(script, problems)).set_index("problem_id")
    assert store.get_meta("scoring")["stop"]["rule"] == "joint"
    cal = {pid for pid in ids if in_calibration(pid, 0.5)}
    assert 20 < len(cal) < 60
    drawn = table["samples"].to_dict()
    assert all(drawn[pid] == 8 for pid in cal)  # the exact rule: all-alike pairs go to k
    assert all(drawn[pid] == 2 for pid in ids if pid not in cal)  # the fitted prior: sure after one round
    labels = {pid: decide(rules, {"m": (lo, hi)}, pid, "math")["L1"]
              for pid, lo, hi in zip(table.index, table["rate_lo"], table["rate_hi"])}
    assert labels == {pid: False for pid in ids}  # the k-sample labels


def test_the_joint_fields_are_checked():
    recipe = load_recipe({"scoring": {"stop": {"rule": "joint", "error": 0.01}}})
    stop = recipe.scoring.stop
    assert (stop.rule, stop.calibration, stop.classes, stop.draws) == ("joint", 0.1, 12, 8)
    with pytest.raises(ConfigError, match=r"scoring\.stop\.calibration"):
        load_recipe({"scoring": {"stop": {"rule": "joint", "calibration": 0}}})
    with pytest.raises(ConfigError, match=r"classes"):
        load_recipe({"scoring": {"stop": {"rule": "joint", "classes": 0}}})
