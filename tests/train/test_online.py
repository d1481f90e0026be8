"""Online filtering on TRL's real trainer with a tiny real Llama: dynamic sampling drops all-equal
groups and refills them (same domain), within the round bound; predictive skipping skips and explores."""

import dataclasses
import json
import math
from collections import Counter

import pytest

from stagerl.config import ConfigError, OnlineConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.data.prompts import to_messages
from stagerl.train import train_stages
from stagerl.train.callbacks import StageMetricsCallback
from stagerl.train.grpo import grpo_config, stage_dataset
from stagerl.train.online import OnlineGRPOTrainer, pool_rows
from stagerl.train.online_prior import PassRateEstimator, has_signal

from parity import ParityReward  # tests/train is on the path: conftest.py


def problem(pid: str, domain: str) -> Problem:
    if domain == "math":
        return Problem(id=pid, domain="math", prompt=f"Problem {pid}: what is 2 + 2?", answer="4")
    return Problem(id=pid, domain="code", prompt=f"Task {pid}: print 4.", tests={"inputs": [""], "outputs": ["4\n"]})


def make_trainer(model_dir, tmp_path, pool, online, steps=2, prompts=4, G=4, reward=None):
    stage = StageConfig(name="s", levels=["L"], learning_rate=1e-3, num_generations=G, prompts_per_step=prompts,
                        max_completion_length=6, max_steps=steps, plateau=None, math_code_ratio=1.0, seed=0,
                        beta=0.0, online=online)
    dataset, pool = stage_dataset(pool, stage)
    callback = StageMetricsCallback(tmp_path / "metrics.jsonl")
    reward = reward or ParityReward()
    trainer = OnlineGRPOTrainer(model=model_dir, reward_funcs=[reward], args=grpo_config(stage, tmp_path),
                                train_dataset=dataset, callbacks=[callback], online=online,
                                pool_rows=pool_rows(pool, to_messages))
    return trainer, reward, callback


def slot_batch(trainer, pool, ids, G):
    rows = {r["problem_id"]: r for r in pool_rows(pool, to_messages)}
    return [dict(rows[i]) for i in ids for _ in range(G)]


def decoded_problems(trainer, out, pool, G):
    """The problem of each group in a returned batch, read back from its prompt tokens."""
    texts = trainer.processing_class.batch_decode(out["prompt_ids"][::G], skip_special_tokens=True)
    return [next(p for p in pool if p.prompt in t) for t in texts]


def test_estimator_and_signal():
    est = PassRateEstimator(prior=0.5, decay=1.0)
    assert est.p_all_equal("x", 4) == pytest.approx(2 * (3.5 * 2.5 * 1.5 * 0.5) / 24)  # Jeffreys, unseen: 0.547
    est.update("x", [0.0] * 4)
    after_one = est.p_all_equal("x", 4)
    est.update("x", [0.0] * 4)
    assert 0.7 < after_one < est.p_all_equal("x", 4) < 1 and est.mean("x") < 0.1
    est.update("y", [1.0, 0.0, 1.0, 0.0])
    assert est.p_all_equal("y", 4) < 0.4
    forget = PassRateEstimator(prior=0.5, decay=0.5)
    for _ in range(6):
        forget.update("z", [0.0] * 4)
    forget.update("z", [1.0] * 4)
    assert forget.mean("z") > 0.3  # the policy improved: old failures fade
    assert has_signal([0, 1, 0, 0]) and not has_signal([0.25] * 4) and not has_signal([0.25, 0.25 + 1e-9])
    with pytest.raises(ConfigError, match="explore"):
        OnlineConfig(explore=1.5)


def test_dynamic_sampling_drops_all_equal_groups_and_refills_same_domain(tiny_model_dir, tmp_path):
    pool = [problem("hard-m1", "math"), problem("hard-m2", "math"), problem("ok-m1", "math"),
            problem("ok-m2", "math"), problem("hard-c1", "code"), problem("ok-c1", "code"), problem("ok-c2", "code")]
    online = OnlineConfig(dynamic_sampling=True, max_extra_rounds=6)
    trainer, reward, _ = make_trainer(tiny_model_dir, tmp_path, pool, online)
    trainer.model.train()
    G = 4
    slots = ["hard-m1", "hard-c1", "ok-m1", "ok-c2"]
    out = trainer._generate_and_score_completions(slot_batch(trainer, pool, slots, G))
    got = decoded_problems(trainer, out, pool, G)
    # same math:code mix, no always-0 problem kept, every group carries signal
    assert sorted(p.domain for p in got) == ["code", "code", "math", "math"]
    assert not any(p.id.startswith("hard") for p in got)
    adv = out["advantages"].view(-1, G)
    assert bool((adv.abs().sum(dim=1) > 0).all())
    assert out["num_items_in_batch"].item() == out["completion_mask"].sum().item()
    assert out["prompt_ids"].shape[0] == out["completion_ids"].shape[0] == len(slots) * G
    # the hard slots' groups were generated, then dropped and refilled in extra rounds
    assert reward.calls[0] == [pid for pid in slots for _ in range(G)]
    assert {"hard-m1", "hard-c1"} <= set(reward.empty_groups(0, G)) and len(reward.calls) >= 2
    domain = {p.id: p.domain for p in pool}
    for r in range(1, len(reward.calls)):  # each extra round regenerates exactly the empty slots, same domains
        empty = reward.empty_groups(r - 1, G)
        assert sorted(domain[i] for i in reward.calls[r][::G]) == sorted(domain[i] for i in empty)
    assert not reward.empty_groups(len(reward.calls) - 1, G)  # all filled within the bound
    metrics = trainer._metrics["train"]
    generated = sum(len(c) for c in reward.calls) // G
    assert metrics["groups_generated"][-1] == generated
    assert metrics["groups_dropped"][-1] == generated - len(slots)
    assert metrics["groups_signal"][-1] == 4 and metrics["groups_filled"][-1] == 0
    assert metrics["extra_rounds"][-1] == len(reward.calls) - 1
    assert len(metrics["reward"]) == 1  # TRL's metrics collapsed to one value for the step


def test_extra_rounds_are_bounded_and_unfillable_slots_keep_a_group(tiny_model_dir, tmp_path):
    pool = [problem("hard-m1", "math"), problem("hard-m2", "math"), problem("ok-c1", "code"), problem("ok-c2", "code")]
    trainer, reward, _ = make_trainer(tiny_model_dir, tmp_path, pool, OnlineConfig(max_extra_rounds=2))
    trainer.model.train()
    G = 4
    out = trainer._generate_and_score_completions(slot_batch(trainer, pool, ["hard-m1", "hard-m2", "ok-c1", "ok-c2"], G))
    assert len(reward.calls) == 3  # round 0 + max_extra_rounds, then it stops
    math_refills = [pid for call in reward.calls[1:] for pid in call[::G] if pid.startswith("hard-m")]
    assert len(math_refills) == 2 * 2  # both math slots, every extra round, refilled with math
    got = decoded_problems(trainer, out, pool, G)
    assert sorted(p.domain for p in got) == ["code", "code", "math", "math"]
    m = trainer._metrics["train"]
    generated = sum(len(c) for c in reward.calls) // G
    assert (m["groups_generated"][-1], m["groups_dropped"][-1], m["extra_rounds"][-1]) == (generated, generated - 4, 2)
    assert m["groups_filled"][-1] == len(reward.empty_groups(2, G)) >= 2  # kept zero-signal groups
    assert m["groups_signal"][-1] == 4 - m["groups_filled"][-1]


def test_predictive_skipping_skips_and_explores(tiny_model_dir, tmp_path):
    pool = [problem("hard-m1", "math"), problem("ok-m1", "math"), problem("ok-m2", "math")]
    online = OnlineConfig(dynamic_sampling=False, predictive_skip=True, skip_threshold=0.7, explore=0.0)
    trainer, reward, _ = make_trainer(tiny_model_dir, tmp_path, pool, online)
    trainer.model.train()
    G = 4
    hard = 0  # pool index of hard-m1
    trainer.estimator.update(hard, [0.0] * G)
    trainer.estimator.update(hard, [0.0] * G)
    batch = slot_batch(trainer, pool, ["hard-m1", "ok-m1"], G)
    trainer._generate_and_score_completions(batch)
    assert "hard-m1" not in reward.calls[-1] and len(reward.calls[-1]) == 2 * G
    assert trainer._metrics["train"]["groups_skipped"][-1] >= 1
    # exploration: a problem due to be skipped is still generated at about the explore rate
    trainer.online.explore = 0.3
    row = {"problem_index": hard, "domain": "math"}
    assert not trainer._skip({"problem_index": 2, "domain": "math"})  # never seen: never skipped
    let_through = sum(not trainer._skip(row) for _ in range(2000)) / 2000
    assert 0.25 < let_through < 0.35
    trainer.online.explore = 1.0
    trainer._generate_and_score_completions(batch)
    assert reward.calls[-1][:G] == ["hard-m1"] * G and trainer._metrics["train"]["groups_skipped"][-1] == 0


@pytest.mark.parametrize("refills", [False, True], ids=["own_prompt_only", "refills_too"])
def test_exploration_draw_in_refill_scans(tiny_model_dir, tmp_path, refills):
    """explore_refills off (default): a refill scans past skipped problems without drawing, so the
    held-out check is paid per slot, not per problem scanned; on: every scanned problem draws."""
    pool = [problem(f"hard-m{i}", "math") for i in range(6)] + [problem("ok-m1", "math")]
    online = OnlineConfig(dynamic_sampling=False, predictive_skip=True, explore=1.0, explore_refills=refills)
    trainer, _, _ = make_trainer(tiny_model_dir, tmp_path, pool, online)
    for i in range(6):
        trainer.estimator.update(i, [0.0] * 4)
        trainer.estimator.update(i, [0.0] * 4)
    stats = Counter()
    picked = [trainer._fresh("math", stats)["problem_id"] for _ in range(7)]
    if refills:  # explore = 1: each scanned problem is let through, none is skipped
        assert sorted(picked) == sorted(p.id for p in pool) and trainer._flags.count(True) == 6
        assert stats["groups_skipped"] == 0
    else:  # a refill scans on to the one problem not predicted all-equal (or, after a pool's length of
        # skips, takes the next one anyway), and no scanned problem is let through by the draw
        assert picked[0] == "ok-m1" and picked.count("ok-m1") >= 4 and not any(trainer._flags)
        assert stats["groups_skipped"] >= 6
    # a slot's own prompt due to be skipped still draws (explore = 1: let through)
    trainer._flags = []
    assert trainer._admit(dict(trainer._pool["math"][0]), Counter())["problem_id"] == "hard-m0"
    assert trainer._flags == [True]


def test_online_stage_through_train_stages_writes_group_counts(tiny_model_dir, tmp_path):
    # real math reward: the random tiny model never answers, so every group is all-equal (0)
    problems = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1))
                for i in range(4)]
    stage = StageConfig(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                        max_completion_length=6, max_steps=2, plateau=None, math_code_ratio=None, seed=0, beta=0.0,
                        online=OnlineConfig(max_extra_rounds=1, predictive_skip=True))
    [info] = train_stages(tiny_model_dir, {"L1": problems}, [stage], tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "stages" / "1_s1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and info["steps"] == 2
    for r in rows:
        assert r["groups_generated"] == 4 and r["groups_dropped"] == 2 and r["groups_filled"] == 2
        assert r["groups_signal"] == 0 and r["extra_rounds"] == 1 and "groups_skipped" in r
        assert math.isfinite(r["reward"])
    assert info["config"]["online"]["max_extra_rounds"] == 1
    from stagerl.report import build_report

    build_report(tmp_path)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Online filtering in s1: 8 groups generated, 4 dropped" in md
    seeded, explored, explored_signal = (int(sum(r[k] for r in rows)) for k in (
        "groups_skipped_seeded", "groups_explored", "groups_explored_signal"))
    assert f"({seeded} of them on an estimate seeded" in md
    assert f"{explored} would-be skips generated anyway, {explored_signal} of them carried signal" in md
    assert info["loss"]["beta"] == 0 and "s1 trained with beta = 0: no reference model" in md


def test_recipe_keys_for_online_and_relevel():
    from stagerl.config import load_recipe, to_dict

    stage = {"name": "s2", "levels": ["L3"], "online": {"predictive_skip": True, "max_extra_rounds": 2},
             "relevel": {"band": "(0,0.9]", "levels": ["L2", "L3"]}}
    recipe = load_recipe({"train": {"stages": [stage, {"name": "s1"}]}})
    s2, s1 = recipe.train.stages
    assert s2.online.predictive_skip and s2.online.dynamic_sampling and s2.online.max_extra_rounds == 2
    assert s2.relevel.band == "(0,0.9]" and s2.relevel.levels == ["L2", "L3"]
    assert s1.online is None and s1.relevel is None  # off by default: the paper's behaviour
    assert to_dict(s2)["online"]["skip_threshold"] == 0.7
    with pytest.raises(ConfigError, match=r"train\.stages\[0\]\.online\.skip: unknown key"):
        load_recipe({"train": {"stages": [{"online": {"skip": True}}]}})
    with pytest.raises(ConfigError, match="enable dynamic_sampling or predictive_skip"):
        OnlineConfig(dynamic_sampling=False)


def test_skip_per_sample_scales_the_threshold_with_the_group_size(tiny_model_dir, tmp_path):
    """``skip_per_sample`` skips when P(all-equal group of G) > skip_per_sample ** G, in the trainer's own rule."""
    assert OnlineConfig(skip_per_sample=0.75).threshold(8) == pytest.approx(0.75 ** 8)
    assert OnlineConfig(skip_threshold=0.4).threshold(16) == 0.4  # unset: the fixed threshold, whatever G
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="skip_per_sample"):
            OnlineConfig(skip_per_sample=bad)
    pool = [problem("hard-m1", "math"), problem("ok-m1", "math")]
    decisions = {}
    for G in (2, 4):
        online = OnlineConfig(dynamic_sampling=False, predictive_skip=True, explore=0.0, skip_threshold=1.0,
                              skip_per_sample=0.5)  # replaced below once the estimate is known
        trainer, _, _ = make_trainer(tiny_model_dir, tmp_path / str(G), pool, online, G=G)
        trainer.estimator.update(0, [0.0] * G)
        p_all = trainer.estimator.p_all_equal(0, G)
        assert 0 < p_all < 1
        for margin in (+0.02, -0.02):
            tau = p_all ** (1 / G) + margin  # just above / below the per-sample chance of an all-equal group
            trainer.online = dataclasses.replace(online, skip_per_sample=tau)
            decisions[G, margin] = trainer._skip({"problem_index": 0})
    # skip_threshold=1.0 would never skip: the per-sample threshold decides, on both sides, at both G
    assert decisions == {(2, 0.02): False, (2, -0.02): True, (4, 0.02): False, (4, -0.02): True}
