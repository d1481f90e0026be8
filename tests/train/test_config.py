"""StageConfig -> trl.GRPOConfig: the paper's values land on the right TRL fields; batches and errors."""

import re

import pytest
import torch
from trl.trainer.utils import RepeatSampler

from stagerl.config import StageConfig, load_recipe
from stagerl.curriculum import math_per_batch
from stagerl.data.problem import Problem
from stagerl.train import TrainConfigError, grpo_config, stage_dataset


@pytest.fixture()
def paper_stages() -> list[StageConfig]:
    stages = load_recipe("paper").train.stages
    for s in stages:
        s.trl = {}   # bf16/vLLM need a GPU; the mapping of our own fields is what is tested here
    return stages


def test_paper_stage_values_map_to_grpo_fields(paper_stages, tmp_path):
    s1, s2 = paper_stages
    c1, c2 = grpo_config(s1, tmp_path), grpo_config(s2, tmp_path)
    assert c1.learning_rate == 1e-6 and c1.num_generations == 16 and c1.beta == 0.001
    assert c1.entropy_coef == 0.001 and c2.entropy_coef == 0.0
    assert c1.max_completion_length == 16384 and c2.max_completion_length == 24576
    assert c1.mask_truncated_completions is False and c2.mask_truncated_completions is True
    # one optimizer step = 128 prompts x 16 completions, generated once and used once (on-policy)
    assert c1.per_device_train_batch_size * c1.gradient_accumulation_steps == 128 * 16
    assert c1.generation_batch_size == 128 * 16 and c1.steps_per_generation == c1.gradient_accumulation_steps
    assert c1.num_iterations == 1
    assert c1.max_steps == s1.max_steps and c1.seed == s1.seed and c1.temperature == s1.temperature
    assert c1.logging_steps == 1 and c1.report_to == ["tensorboard"]
    # resumable checkpoints every checkpoint_every steps in the stage folder; the last keep_checkpoints are kept by
    # our rotation once a new one is complete (resume_state.rotate), not by Transformers' inside its save
    assert str(c1.save_strategy.value) == "steps" and c1.save_steps == s1.checkpoint_every == 10
    assert c1.save_total_limit is None and c1.output_dir == str(tmp_path / "checkpoints")
    assert c1.save_only_model is False and c1.ignore_data_skip is False
    # the loss is chosen by named stage fields, not TRL's defaults by accident
    assert c1.loss_type == "dapo" == s1.loss_type and c1.scale_rewards == "group"
    assert c1.use_bias_correction_kl is True and c1.vllm_importance_sampling_correction is True
    assert c1.shuffle_dataset is False and c1.remove_unused_columns is False
    assert c1.lr_scheduler_type.value == "constant"
    if not torch.cuda.is_available():
        assert c1.bf16 is False and c1.gradient_checkpointing is False


def test_trl_dict_overrides_and_extends(tmp_path):
    stage = StageConfig(prompts_per_step=128, num_generations=16,
                        trl={"gradient_accumulation_steps": 64, "top_p": 0.9, "epsilon_high": 0.28})
    c = grpo_config(stage, tmp_path)
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps) == (32, 64)
    assert c.generation_batch_size == 2048 and c.top_p == 0.9 and c.epsilon_high == 0.28
    c = grpo_config(StageConfig(prompts_per_step=128, num_generations=16, trl={"per_device_train_batch_size": 8}),
                    tmp_path)
    assert (c.per_device_train_batch_size, c.gradient_accumulation_steps) == (8, 256)


def test_unknown_trl_key_is_named(tmp_path):
    with pytest.raises(TrainConfigError, match=r"stage 'stage1': trl\.use_vlm .*did you mean use_vllm"):
        grpo_config(StageConfig(trl={"use_vlm": True}), tmp_path)


def test_indivisible_batch_is_explained(tmp_path):
    with pytest.raises(TrainConfigError, match="24 completions per step"):
        grpo_config(StageConfig(prompts_per_step=3, num_generations=8, trl={"gradient_accumulation_steps": 5}),
                    tmp_path)


def test_trl_sampler_batches_honour_the_mix(tmp_path):
    """TRL's own sampler, fed our dataset and config, yields one mixed batch per optimizer step."""
    problems = [Problem(id=f"m{i}", domain="math", prompt=f"{i}?", answer=str(i)) for i in range(9)] + [
        Problem(id=f"c{i}", domain="code", prompt=f"p{i}", tests={"inputs": [""], "outputs": ["1"]}) for i in range(4)]
    stage = StageConfig(prompts_per_step=6, num_generations=4, math_code_ratio=2.1, max_steps=7, seed=1)
    args = grpo_config(stage, tmp_path)
    dataset, pool = stage_dataset(problems, stage)
    assert len(dataset) == 6 * 7
    assert dataset[0]["prompt"][-1]["role"] == "user" and "\\boxed{}" in " ".join(
        r["prompt"][-1]["content"] for r in dataset if r["domain"] == "math")
    sampler = RepeatSampler(dataset, mini_repeat_count=args.num_generations,
                            batch_size=args.generation_batch_size // args.num_generations,
                            repeat_count=args.num_iterations * args.steps_per_generation,
                            shuffle=args.shuffle_dataset, seed=args.seed)
    indices = list(sampler)
    per_step = args.generation_batch_size * args.steps_per_generation
    assert len(indices) == 7 * per_step
    for step, n_math in enumerate(math_per_batch(6, 2.1, 7)):
        rows = [dataset[i] for i in indices[step * per_step:(step + 1) * per_step]]
        domains = [pool[r["problem_index"]].domain for r in rows]
        assert domains.count("math") == n_math * 4 and domains.count("code") == (6 - n_math) * 4


@pytest.mark.parametrize("key,why", [
    ("learning_rate", "stage field 'learning_rate'"), ("shuffle_dataset", "math:code ratio"),
    ("num_iterations", "on-policy"), ("steps_per_generation", "one optimizer step"),
    ("generation_batch_size", "prompts_per_step × num_generations"), ("logging_steps", "one row per optimizer step"),
    ("save_strategy", "checkpoint_every"), ("output_dir", "its own folder"), ("max_steps", "'max_steps'"),
    ("loss_type", "'loss_type'"), ("use_bias_correction_kl", "kl_bias_correction"),
    ("ignore_data_skip", "data order continues"), ("save_only_model", "optimizer"),
])
def test_trl_keys_that_break_promises_are_refused_with_the_reason(tmp_path, key, why):
    with pytest.raises(TrainConfigError, match=rf"stage 'stage1': trl\.{key} is not allowed: .*{re.escape(why)}"):
        grpo_config(StageConfig(trl={key: 1}), tmp_path)


def test_loss_fields_map_and_are_recorded(tmp_path):
    from stagerl.train.grpo import loss_record

    c = grpo_config(StageConfig(loss_type="grpo", kl_bias_correction=False, beta=0.01), tmp_path)
    assert c.loss_type == "grpo" and c.use_bias_correction_kl is False
    rec = loss_record(c)
    assert rec["loss_type"] == "grpo" and rec["kl_bias_correction"] is False and rec["beta"] == 0.01
    assert rec["vllm_is_correction"] is False and rec["vllm_is_mode"] is None   # no vLLM here: not applied
    assert loss_record(grpo_config(StageConfig(beta=0.0), tmp_path))["kl_bias_correction"] is False
    with pytest.raises(TrainConfigError, match="loss_type 'ppo' is not one of dapo, grpo"):
        grpo_config(StageConfig(loss_type="ppo"), tmp_path)
    with pytest.raises(TrainConfigError, match="checkpoint_every must be >= 1"):
        grpo_config(StageConfig(checkpoint_every=0), tmp_path)
