"""Real GRPO with TRL: a tiny random Llama (non-slow) and SmolLM2-135M (slow), graded by the real math reward."""

import json
import math
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stagerl.config import PlateauConfig, RewardsConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.report.render import read_stages
from stagerl.train import train_stages
from stagerl.train.reward import batch_metrics, make_reward


PROBLEMS = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1))
            for i in range(3)]


def test_reward_function_grades_conversational_completions():
    reward = make_reward(PROBLEMS, RewardsConfig(workers=1), num_generations=1)
    logged: dict[str, float] = {}
    completions = [[{"role": "assistant", "content": "so \\boxed{1}"}], [{"role": "assistant", "content": "\\boxed{4}"}],
                   [{"role": "assistant", "content": "no box: 5"}]]
    scores = reward(completions=completions, problem_index=[0, 1, 2], completion_ids=[[5, 6], [7], [8, 9, 10]],
                    log_metric=logged.__setitem__)
    assert scores == [1.0, 0.0, 0.0]
    assert logged == {"reward_math": pytest.approx(1 / 3), "signal": 0.0, "tokens": 6.0}


def test_batch_metrics_weigh_every_completion_and_cut_groups_as_trl():
    # 3 groups of 2 (consecutive, as TRL cuts the gathered batch): mixed, all-equal, mixed
    domains = ["math", "math", "code", "code", "math", "math"]
    scores = [1.0, 0.0, 0.5, 0.5, 0.0, 1.0]
    got = batch_metrics(domains, scores, [3, 4, 5, 6, 7, 8], num_generations=2)
    assert got == {"reward_math": 0.5, "reward_code": 0.5, "signal": pytest.approx(2 / 3), "tokens": 33.0}
    # per-sample mean, not a mean of per-part means: 3 math of 1.0 and 1 of 0.0 -> 0.75 (means of halves: 0.5/1.0)
    assert batch_metrics(["math"] * 4, [1.0, 1.0, 1.0, 0.0], [1] * 4, 4)["reward_math"] == 0.75


def tiny_stage(**kw) -> StageConfig:
    base = dict(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                max_completion_length=8, max_steps=4, math_code_ratio=2.1, seed=0)
    return StageConfig(**{**base, **kw})


def weights(path: str) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_tiny_grpo_run_stops_at_plateau_saves_and_resumes(tiny_model_dir, tmp_path):
    # min_delta nothing can reach, window 1, patience 1: step 1 sets the best, step 2 is the plateau
    stage = tiny_stage(plateau=PlateauConfig(window=1, patience=1, min_delta=1e9))
    [info] = train_stages(tiny_model_dir, {"L1": PROBLEMS}, [stage], tmp_path)
    out = tmp_path / "stages" / "1_s1"

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    for x in lines:
        for key in ("reward", "reward_std", "kl", "entropy", "completion_length", "clipped_ratio",
                    "learning_rate", "seconds"):
            assert isinstance(x[key], float) and math.isfinite(x[key]), (key, x)
        assert 0.0 <= x["reward"] <= 1.0 and x["completion_length"] <= 8

    saved = json.loads((out / "stage.json").read_text())
    assert saved["reason"] == "plateau at step 2" and saved["steps"] == 2 == info["steps"]
    assert saved["config"]["name"] == "s1" and saved["config"]["levels"] == ["L1"]
    assert saved["seconds"] > 0 and saved["best"] is not None

    ckpt = saved["checkpoint"]
    assert Path(ckpt) == (out / "checkpoint").resolve()
    AutoTokenizer.from_pretrained(ckpt)
    before, after = weights(tiny_model_dir), weights(ckpt)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # the report reads what we wrote
    [rep] = read_stages(tmp_path)
    assert rep["name"] == "s1" and rep["levels"] == ["L1"] and len(rep["metrics"]) == 2

    # re-run: the finished stage is skipped, nothing is rewritten
    mtime, t0 = (out / "metrics.jsonl").stat().st_mtime_ns, time.time()
    [again] = train_stages(tiny_model_dir, {"L1": PROBLEMS}, [stage], tmp_path)
    assert time.time() - t0 < 5 and again["reason"] == saved["reason"]
    assert (out / "metrics.jsonl").stat().st_mtime_ns == mtime


def test_missing_level_fails_before_any_training(tiny_model_dir, tmp_path):
    stages = [tiny_stage(), tiny_stage(name="s2", levels=["L3"])]
    with pytest.raises(ValueError, match="'L3' does not exist"):
        train_stages(tiny_model_dir, {"L1": PROBLEMS}, stages, tmp_path)
    assert not (tmp_path / "stages").exists()


@pytest.mark.slow
def test_smollm2_two_steps(smollm2_dir, tmp_path):
    stage = tiny_stage(learning_rate=1e-5, max_completion_length=24, max_steps=2, plateau=None)
    [info] = train_stages(smollm2_dir, {"L1": PROBLEMS}, [stage], tmp_path)
    assert info["reason"] == "max_steps" and info["steps"] == 2
    lines = (tmp_path / "stages" / "1_s1" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(math.isfinite(json.loads(x)["entropy"]) for x in lines)
    before, after = weights(smollm2_dir), weights(info["checkpoint"])
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_stage_without_checkpoint_or_stage_json_is_not_finished(tmp_path):
    from stagerl.train import finished

    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "stage.json").write_text(json.dumps({"reason": "max_steps"}))
    assert finished(tmp_path) is None                      # stage.json but no saved model
    (tmp_path / "checkpoint" / "config.json").write_text("{}")
    assert finished(tmp_path)["checkpoint"] == str((tmp_path / "checkpoint").resolve())
    (tmp_path / "stage.json").unlink()
    assert finished(tmp_path) is None                      # crashed before stage.json: train again
