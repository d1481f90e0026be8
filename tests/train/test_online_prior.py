"""Predictive skipping seeded from the run's stored samples of the policy (issue 21, part 1): a problem the
store says is never solved (or always solved) is skipped on its first visit; the seed fades with the steps
since it was measured; a killed and resumed stage makes the same seeded decisions."""

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest

from stagerl.config import OnlineConfig
from stagerl.data.generated import demo_math
from stagerl.store import SampleStore
from stagerl.train.online_prior import SeededEstimator, fit_drift, policy_seeds, pool_grid

from test_online import make_trainer, problem, slot_batch  # tests/train is on the path: conftest.py
from test_resume_exact import STAGE, check_same_decisions, straight_and_resumed


def write_store(run_dir: Path, model_name: str, model: str, rewards: dict[str, list[float]], **sampling) -> None:
    """``rewards``: problem id -> stored rewards of ``model`` (as scoring writes them, with its meta;
    ``sampling``: the temperature and top_p it records, if any)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with SampleStore(run_dir / "samples.sqlite") as store:
        store.add({"problem_id": pid, "model": model_name, "idx": i, "domain": "math", "text": "x", "tokens": 1,
                   "finish": "stop", "reward": r} for pid, rs in rewards.items() for i, r in enumerate(rs))
        store.set_meta(f"model/{model_name}", {"model": model, **sampling})


def test_seeds_only_from_the_trainers_sampler(tmp_path, capsys):
    """Scoring's samples at T=0.6, top-p 0.95 are not seeds of a stage that samples at T=1.0, top-p 1.0;
    re-levelling's at the stage's own sampler are."""
    pool = [problem("a", "math"), problem("b", "math")]
    run = tmp_path / "run"
    write_store(run, "policy", "/models/p0", {"a": [1.0] * 8}, temperature=0.6, top_p=0.95)
    write_store(run, "policy-1_s1", "/models/p0", {"b": [0.0, 1.0] * 2}, temperature=1.0, top_p=1.0)
    stage = run / "stages" / "1_s1"
    assert policy_seeds(stage, "/models/p0", pool, sampler=(1.0, 1.0)) == {1: [(0.5, 4, 0)]}
    err = capsys.readouterr().err
    assert "'policy'" in err and "temperature 0.6, top-p 0.95" in err and "'policy-1_s1'" not in err
    assert policy_seeds(stage, "/models/p0", pool, sampler=(0.6, 0.95)) == {0: [(1.0, 8, 0)]}
    assert policy_seeds(stage, "/models/p0", pool) == {0: [(1.0, 8, 0)], 1: [(0.5, 4, 0)]}  # no sampler given


def test_seeds_from_the_store_and_earlier_stages(tmp_path):
    pool = [problem("a", "math"), problem("b", "math"), problem("c", "math")]
    run = tmp_path / "run"
    write_store(run, "policy", "/models/p0", {"a": [0.0] * 8, "b": [1.0, 1.0, 0.0, 1.0]})
    write_store(run, "other", "/models/q", {"c": [0.0] * 8})  # not the policy: no seed
    # stage 2 starts from stage 1's checkpoint, trained 5 steps from /models/p0
    (run / "stages" / "1_s1").mkdir(parents=True)
    (run / "stages" / "1_s1" / "stage.json").write_text(json.dumps(
        {"policy": "/models/p0", "checkpoint": "/ck/1", "steps": 5}))
    assert policy_seeds(run / "stages" / "2_s2", "/ck/1", pool) == {0: [(0.0, 8, 5)], 1: [(0.75, 4, 5)]}
    assert policy_seeds(run / "stages" / "1_s1", "/models/p0", pool) == {0: [(0.0, 8, 0)], 1: [(0.75, 4, 0)]}
    assert policy_seeds(tmp_path / "none" / "stages" / "1_s1", "/models/p0", pool) == {}
    # the stated rule: n samples measured L steps ago weigh n * seed_decay**L
    est = SeededEstimator(prior=0.5, decay=0.9, seed_decay=0.5, seeds={0: [(0.0, 8, 1)]})
    assert est.known(0) and not est.known(1) and est.seed_weight(0) == 4.0
    assert est.mean(0) == pytest.approx(0.5 / 5.0)
    first = est.p_all_equal(0, 4)
    est.step = 6
    assert est.seed_weight(0) == pytest.approx(8 * 0.5 ** 7) and est.p_all_equal(0, 4) < first
    assert not SeededEstimator(seed_decay=0.0, seeds={0: [(0.0, 8, 0)]}).known(0)


@pytest.mark.parametrize("stored", [0.0, 1.0], ids=["never_solved", "always_solved"])
def test_first_visit_skip_from_the_store(tiny_model_dir, tmp_path, stored):
    pool = [problem("hard-m1", "math"), problem("ok-m1", "math"), problem("ok-m2", "math")]
    run = tmp_path / "run"
    write_store(run, "tiny", str(tiny_model_dir), {"hard-m1": [stored] * 16, "ok-m1": [0.0, 1.0] * 8})
    seeds = policy_seeds(run / "stages" / "1_s", tiny_model_dir, pool)
    online = OnlineConfig(dynamic_sampling=False, predictive_skip=True, explore=0.0)
    trainer, reward, _ = make_trainer(tiny_model_dir, tmp_path, pool, online)
    trainer.estimator.seeds = seeds
    trainer.model.train()
    G = 4
    trainer._generate_and_score_completions(slot_batch(trainer, pool, ["hard-m1", "ok-m1"], G))
    assert not trainer.estimator.groups[0]  # hard-m1 was never generated in this stage: a first visit
    assert "hard-m1" not in reward.calls[-1] and len(reward.calls[-1]) == 2 * G
    m = trainer._metrics["train"]
    assert m["groups_skipped"][-1] == m["groups_skipped_seeded"][-1] == 1
    # the held-out check: every prompt due to be skipped is let through, counted, its signal recorded
    trainer.online.explore = 1.0
    trainer._generate_and_score_completions(slot_batch(trainer, pool, ["hard-m1", "ok-m1"], G))
    assert reward.calls[-1][:G] == ["hard-m1"] * G and m["groups_skipped"][-1] == 0
    assert m["groups_explored"][-1] == 1 and m["groups_explored_signal"][-1] == 0  # hard*: always 0
    # without seeds (seed_decay 0) the first visit is generated, as before
    trainer2, reward2, _ = make_trainer(tiny_model_dir, tmp_path / "b", pool,
                                        OnlineConfig(dynamic_sampling=False, predictive_skip=True, explore=0.0,
                                                     seed_decay=0.0), )
    trainer2.estimator.seeds = seeds
    trainer2.model.train()
    trainer2._generate_and_score_completions(slot_batch(trainer2, pool, ["hard-m1", "ok-m1"], G))
    assert reward2.calls[-1][:G] == ["hard-m1"] * G


@pytest.mark.parametrize("drift,pooled", [(False, False), (True, False), ("sharpen", False), (False, True)],
                         ids=["fade", "drift", "sharpen", "pooled"])
def test_saved_state_gives_the_same_seeded_decisions(tiny_model_dir, tmp_path, drift, pooled):
    """online_state carries the seeds (and the drift's residuals): a trainer built without them (the
    store gone) and restored from the JSON state admits, skips and explores exactly as the one that
    saved it."""
    pool = [problem(f"hard-m{i}", "math") for i in range(4)] + [problem(f"ok-m{i}", "math") for i in range(4)]
    seeds = {i: [(0.0, 16, 0)] for i in range(4)} | {4: [(0.5, 8, 0)]}
    online = OnlineConfig(dynamic_sampling=False, predictive_skip=True, explore=0.3, seed_drift=bool(drift),
                          seed_sharpen=drift == "sharpen", pooled_prior=pooled)
    a, reward_a, _ = make_trainer(tiny_model_dir, tmp_path / "a", pool, online)
    a.estimator.set_seeds(seeds)
    a.model.train()
    G = 4
    a._generate_and_score_completions(slot_batch(a, pool, ["hard-m0", "ok-m0"], G))
    state = json.loads(json.dumps(a.online_state()))
    b, _, _ = make_trainer(tiny_model_dir, tmp_path / "b", pool, online)
    b.load_online_state(state)
    for t in (a, b):
        t.state.global_step = 3
        t.estimator.step = 3
    ids = ["hard-m1", "hard-m2", "hard-m3", "ok-m1"]
    decide = [[t._admit(row, Counter())["problem_id"]
               for row in slot_batch(t, pool, ids, 1) * 5] for t in (a, b)]
    assert decide[0] == decide[1] and set(decide[0]) != set(ids)  # some seeded problems were skipped
    assert b.estimator.seeds == a.estimator.seeds == {k: [tuple(v[0])] for k, v in seeds.items()}
    # ok-m0 (seeded 4 of 8) drew a group: with drift it is a residual and the shift moved off 0
    fitted = bool(drift)
    assert len(a.estimator.residuals) == int(fitted) and (a.estimator.shift != 0.0) == fitted
    assert a._metrics["train"].get("seed_shift", []) == ([a.estimator.shift] if fitted else [])  # logged per step
    assert a._metrics["train"].get("seed_slope", []) == ([a.estimator.slope] if fitted else [])
    assert b.estimator.residuals == a.estimator.residuals and b.estimator.shift == a.estimator.shift
    assert b.estimator.slope == a.estimator.slope and b.estimator.sharpen == a.estimator.sharpen
    assert b.estimator.grid == a.estimator.grid and (a.estimator.grid is not None) == pooled


def u_shaped_pool(rng, n):
    """Pass rates of a scored pool: 60% near 1, 25% near 0, the rest anywhere."""
    return [rng.uniform(0.95, 1.0) if u < 0.6 else rng.uniform(0.0, 0.03) if u < 0.85 else rng.random()
            for u in (rng.random() for _ in range(n))]


def test_pool_grid_is_jeffreys_without_seeds_and_finds_the_pools_shape():
    """No counts: the grid prior gives Beta(½, ½)'s posterior. Counts from a U-shaped pool: the fitted
    mass near 1 and near 0 is the pool's (8 samples each cannot tell 0.97 from 1, so the bands are wide)."""
    flat, beta = SeededEstimator(0.5, 0.9, 0.97, {}, pooled=True), SeededEstimator(0.5, 0.9, 0.97, {})
    for est in (flat, beta):
        est.update("p", [1.0, 1.0, 0.0, 1.0])
    assert flat.mean("p") == pytest.approx(beta.mean("p"), abs=1e-3)
    assert flat.p_all_equal("p", 4) == pytest.approx(beta.p_all_equal("p", 4), abs=1e-3)
    rng = random.Random(0)
    truth = u_shaped_pool(rng, 3000)
    grid = pool_grid([(sum(rng.random() < p for _ in range(8)), 8) for p in truth])
    assert sum(math.exp(w) for _, w in grid) == pytest.approx(1.0)
    high = sum(math.exp(w) for p, w in grid if p > 0.9)
    low = sum(math.exp(w) for p, w in grid if p < 0.1)
    assert high == pytest.approx(sum(p > 0.9 for p in truth) / 3000, abs=0.04)
    assert low == pytest.approx(sum(p < 0.1 for p in truth) / 3000, abs=0.04)


def test_pooled_prior_predicts_groups_better_on_a_u_shaped_pool():
    """Seeds of 8 samples from a U-shaped pool, then one fresh group of 4 per problem: the pooled prior
    predicts whether a group is all-equal better than Jeffreys' (Brier score), mostly by trusting that a
    problem solved 7 or 8 times of 8 is one the policy nearly always solves; a problem solved 4 of 8
    keeps a middling estimate."""
    rng = random.Random(1)
    truth = u_shaped_pool(rng, 1500)
    seeds = {i: [(sum(rng.random() < p for _ in range(8)) / 8, 8, 0)] for i, p in enumerate(truth)}
    pooled, jeffreys = (SeededEstimator(0.5, 0.9, 1.0, seeds, pooled=x) for x in (True, False))
    brier = {"pooled": 0.0, "jeffreys": 0.0}
    for i, p in enumerate(truth):
        group = [rng.random() < p for _ in range(4)]
        equal = float(all(group) or not any(group))
        for name, est in (("pooled", pooled), ("jeffreys", jeffreys)):
            brier[name] += (est.p_all_equal(i, 4) - equal) ** 2 / len(truth)
    assert brier["pooled"] < brier["jeffreys"] - 0.005, brier
    seven = next(i for i, v in seeds.items() if v[0][0] == 7 / 8)
    assert pooled.mean(seven) > jeffreys.mean(seven) + 0.03
    assert pooled.p_all_equal(seven, 4) > jeffreys.p_all_equal(seven, 4)
    half = next(i for i, v in seeds.items() if v[0][0] == 0.5)
    assert 0.3 < pooled.mean(half) < 0.7 and pooled.p_all_equal(half, 4) < 0.5


def test_fit_drift_recovers_a_shift():
    """Groups drawn at σ(logit + 1) from seeds at logit: the fitted shift is near 1; none: 0; the
    discount makes old groups count less; the N(0, 1) prior pulls a lone group's shift toward 0."""
    rng = random.Random(0)
    records = []
    for j in range(400):
        logit = rng.uniform(-2.0, 2.0)
        p = 1.0 / (1.0 + math.exp(-(logit + 1.0)))
        records.append((logit, float(sum(rng.random() < p for _ in range(4))), 4, 0))
    assert fit_drift(records, 0, 0.97)[0] == pytest.approx(1.0, abs=0.2)
    assert fit_drift([], 5, 0.97) == (0.0, 1.0)
    lone = [(0.0, 4.0, 4, 0)]  # one all-correct group of a seed at 0.5
    assert 0.0 < fit_drift(lone, 0, 0.97)[0] < 1.5
    old_up, new_down = (0.0, 4.0, 4, 0), (0.0, 0.0, 4, 20)  # long ago all correct, now all wrong
    assert fit_drift([old_up, new_down], 20, 0.9)[0] < 0 < fit_drift([old_up, new_down], 20, 1.0)[0] + 1e-9


def test_fit_drift_recovers_a_sharpening():
    """Groups drawn at σ(0.5 + 2·logit): with the slope the fit finds both; without it the slope stays 1.
    Groups that follow their seeds exactly give a slope near 1 and no shift."""
    rng = random.Random(2)
    sharp, plain = [], []
    for _ in range(600):
        logit = rng.uniform(-2.0, 2.0)
        for rows, (d, b) in ((sharp, (0.5, 2.0)), (plain, (0.0, 1.0))):
            p = 1.0 / (1.0 + math.exp(-(d + b * logit)))
            rows.append((logit, float(sum(rng.random() < p for _ in range(4))), 4, 0))
    shift, slope = fit_drift(sharp, 0, 0.97, slope=True)
    assert shift == pytest.approx(0.5, abs=0.2) and slope == pytest.approx(2.0, abs=0.3)
    assert fit_drift(sharp, 0, 0.97)[1] == 1.0
    shift, slope = fit_drift(plain, 0, 0.97, slope=True)
    assert abs(shift) < 0.2 and slope == pytest.approx(1.0, abs=0.2)


def test_sharpening_moves_seeds_apart():
    """Seeded problems whose groups came out more extreme than their seeds (the easier all correct, the
    harder all wrong): with ``sharpen`` an unseen easy seed rises and an unseen hard one falls, both now
    likelier all-equal; with the shift alone they move the same way."""
    seeds = {i: [(0.25 if i % 2 else 0.75, 8, 0)] for i in range(12)} | {20: [(0.375, 8, 0)], 21: [(0.625, 8, 0)]}
    shift = SeededEstimator(0.5, 0.9, 0.97, seeds, drift=True)
    sharp = SeededEstimator(0.5, 0.9, 0.97, seeds, drift=True, sharpen=True)
    base = SeededEstimator(0.5, 0.9, 0.97, seeds)
    for est in (shift, sharp):
        for i in range(12):
            est.update(i, [0.0] * 4 if i % 2 else [1.0] * 4)
    assert sharp.slope > 1.5 and shift.slope == 1.0
    assert sharp.mean(20) < base.mean(20) < base.mean(21) < sharp.mean(21)
    assert sharp.p_all_equal(20, 4) > base.p_all_equal(20, 4) and sharp.p_all_equal(21, 4) > base.p_all_equal(21, 4)
    again = SeededEstimator(0.5, 0.9, 0.97, drift=True, sharpen=True)
    again.load_state(json.loads(json.dumps(sharp.state())))
    assert (again.shift, again.slope) == (sharp.shift, sharp.slope)
    assert again.p_all_equal(21, 4) == sharp.p_all_equal(21, 4)
    with pytest.raises(Exception, match="seed_sharpen needs online.seed_drift"):
        OnlineConfig(seed_sharpen=True)


def test_drift_moves_every_seed():
    """With drift, groups better than their seeds said raise the estimate of a seeded problem not seen
    yet (so an easy one is skipped sooner); without drift it only fades."""
    seeds = {i: [(0.5, 8, 0)] for i in range(10)} | {10: [(0.75, 8, 0)]}
    fade, drift = SeededEstimator(0.5, 0.9, 0.97, seeds), SeededEstimator(0.5, 0.9, 0.97, seeds, drift=True)
    for est in (fade, drift):
        for i in range(10):
            est.update(i, [1.0, 1.0, 1.0, 1.0 if i % 2 else 0.0])
    assert fade.shift == 0.0 and not fade.residuals and len(drift.residuals) == 10
    assert drift.shift > 0.5
    assert drift.mean(10) > fade.mean(10) and drift.p_all_equal(10, 4) > fade.p_all_equal(10, 4)
    # a problem without seeds is untouched by the shift
    for est in (fade, drift):
        est.update(20, [1.0, 0.0])
    assert drift.mean(20) == fade.mean(20)
    # the state round trip keeps the shift and its residuals
    again = SeededEstimator(0.5, 0.9, 0.97, drift=True)
    again.load_state(json.loads(json.dumps(drift.state())))
    assert again.shift == drift.shift and again.residuals == drift.residuals
    assert again.p_all_equal(10, 4) == drift.p_all_equal(10, 4)


@pytest.mark.slow
def test_killed_seeded_stage_makes_the_same_decisions_tiny(kit, make_run, tiny_model_dir):
    """test_resume_exact's SIGKILL reproduction with the run's store holding the policy's samples
    (the recipe's scoring model ``tiny`` is the policy): seeded first-visit skips, same decisions
    (about 2-4 min on 2 cores, hence slow; the fast check of the saved state is the test above)."""
    math = demo_math(n=10, seed=0)

    def seeded_run(*args, **kw):
        recipe, run_dir = make_run(*args, **kw)
        write_store(run_dir, "tiny", str(tiny_model_dir), {p.id: [0.0] * 8 for p in math[:6]})
        return recipe, run_dir

    a, b = straight_and_resumed(kit, seeded_run, tiny_model_dir)
    check_same_decisions(kit, a, b, Path(a["checkpoint"]).parents[2], Path(b["checkpoint"]).parents[2])
    assert a["online"]["groups_skipped_seeded"] > 0 and b["online"] == a["online"]
    rows = [r for r in map(json.loads, kit.metric_lines(Path(a["checkpoint"]).parents[2])) if "groups_generated" in r]
    assert rows[0]["step"] == 1 and rows[0]["groups_skipped_seeded"] > 0  # before any group of the stage
    assert STAGE["online"]["predictive_skip"]
