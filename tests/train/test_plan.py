"""The batch plan printed before launch: the paper preset fits 8 GPUs, the unsplit batch is flagged."""

import json
from pathlib import Path

import pytest

from stagerl.config import load_recipe
from stagerl.train.grpo import ZERO3
from stagerl.train.plan import format_plan, stage_plan


def test_paper_preset_plan_on_one_node_of_eight_gpus():
    s1, s2 = load_recipe("paper").train.stages
    p1, p2 = stage_plan(s1, 8), stage_plan(s2, 8)
    for p in (p1, p2):
        assert p["completions_per_step"] == 2048 and p["sequences_per_device_per_pass"] == 1
        assert p["passes_per_step"] == 256 and p["completions_per_device_per_step"] == 256
        assert p["warnings"] == []
    assert p1["max_completion_tokens_per_device_pass"] == 16384 and p2["max_completion_tokens_per_device_pass"] == 24576
    assert p1["max_completion_tokens_per_step"] == 2048 * 16384
    assert "1 sequences per device per pass × 256 passes per step" in format_plan(p1)
    for s in (s1, s2):  # vLLM colocated with sleep mode, ZeRO-3 from the shipped file
        assert s.trl["vllm_mode"] == "colocate" and s.trl["vllm_enable_sleep_mode"] is True
        assert s.trl["deepspeed"] == "zero3" and s.trl["vllm_max_model_length"] >= s.max_completion_length


def test_an_unsplit_step_is_flagged_and_an_impossible_one_refused():
    s1 = load_recipe("paper").train.stages[0]
    s1.trl = {}
    plan = stage_plan(s1, 8)   # the old preset: 256 sequences of 16k tokens per GPU in one pass
    assert plan["sequences_per_device_per_pass"] == 256 and plan["passes_per_step"] == 1
    assert "256 sequences × 16384 tokens = 4194304 completion tokens" in plan["warnings"][0]
    assert "WARNING" in format_plan(plan)
    with pytest.raises(ValueError, match="2048 completions per step cannot be split"):
        stage_plan(s1, 3)


def test_shipped_zero3_config():
    cfg = json.loads(Path(ZERO3).read_text())
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert cfg["train_micro_batch_size_per_gpu"] == "auto" and cfg["gradient_accumulation_steps"] == "auto"


def test_plan_text_of_every_stage():
    from stagerl.train.plan import recipe_plans

    out = recipe_plans("paper", 8)   # what `python -m stagerl.train.plan paper 8` prints
    assert out.count("1 sequences per device per pass × 256 passes per step") == 2
    assert "24,576 per device per pass" in out and "WARNING" not in out


def test_stagerl_check_shows_the_plan_and_refuses_broken_promises():
    from stagerl.checks import inspect_recipe, plan_lines
    from stagerl.config import load_recipe

    recipe = load_recipe("paper")
    found = inspect_recipe(recipe, world=8, command="train")
    text = "\n".join(plan_lines(recipe, found))
    assert "1 sequences per device per pass x 256 passes per step; at most 24,576 completion tokens" in text
    assert not [i for i in found.errors if "train.stages" in i.path]
    recipe.train.stages[0].trl.update(shuffle_dataset=True)
    recipe.train.stages[1].trl.pop("per_device_train_batch_size")
    found = inspect_recipe(recipe, world=8, command="train")
    paths = {i.path: i for i in found.issues}
    assert "math:code ratio" in paths["train.stages[0].trl.shuffle_dataset"].message
    assert paths["train.stages[1].trl"].severity == "warning" and "256 sequences" in paths["train.stages[1].trl"].message
