"""The staged plan of a recipe as verl commands (``stagerl export-plan RECIPE --format verl``).

One ``python -m verl.trainer.main_ppo`` command per stage (verl 0.9 config keys): the level files
written by ``stagerl levels --export DIR --format verl``, GRPO with the stage's samples, batch,
learning rate, response length, KL loss and entropy coefficient, and our rewards as verl's custom
reward function. What verl's config cannot express is listed under each stage, not dropped.
"""

from __future__ import annotations

from typing import Any

from ..config import Recipe

REWARD_MODULE = "pkg://stagerl.rewards.verl"  # verl imports it (stagerl installed beside verl)


def _stage_lines(recipe: Recipe, i: int, stage: Any, data_dir: str) -> list[str]:
    files = [f"{data_dir}/{name}.parquet" for name in stage.levels]
    train = files[0] if len(files) == 1 else "[" + ",".join(files) + "]"
    prev = recipe.train.stages[i - 1].name if i else None
    model = recipe.train.policy if not i else f"$CKPT/{prev}_hf"
    args = [
        "algorithm.adv_estimator=grpo",
        f"data.train_files={train}",
        f"data.train_batch_size={stage.prompts_per_step}",
        f"data.max_response_length={stage.max_completion_length}",
        f"actor_rollout_ref.model.path={model}",
        f"actor_rollout_ref.actor.optim.lr={stage.learning_rate:g}",
        f"actor_rollout_ref.rollout.n={stage.num_generations}",
        f"actor_rollout_ref.rollout.temperature={stage.temperature:g}",
        f"actor_rollout_ref.actor.use_kl_loss={'True' if stage.beta > 0 else 'False'}",
        f"actor_rollout_ref.actor.kl_loss_coef={stage.beta:g}",
        "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
        f"actor_rollout_ref.actor.entropy_coeff={stage.entropy_coef:g}",
        f"actor_rollout_ref.actor.loss_agg_mode={'token-mean' if stage.loss_type == 'dapo' else 'seq-mean-token-mean'}",
        "algorithm.use_kl_in_reward=False",
        f"reward.custom_reward_function.path={REWARD_MODULE}",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.total_training_steps={stage.max_steps}",
        f"trainer.save_freq={stage.checkpoint_every}",
        f"trainer.default_local_dir=$CKPT/{stage.name}",
    ]
    if stage.online is not None and stage.online.dynamic_sampling:
        args.append("algorithm.filter_groups.enable=True")
    cmd = "python -m verl.trainer.main_ppo \\\n    " + " \\\n    ".join(args)
    out = [f"## Stage {i + 1}: {stage.name} (levels {', '.join(stage.levels)})", "", "```bash"]
    if i:
        out += [f"# stage {i + 1} starts from stage {i}'s last checkpoint, merged to a Hugging Face folder:",
                f"python -m verl.model_merger merge --backend fsdp \\\n    --local_dir "
                f"$CKPT/{prev}/global_step_<last>/actor --target_dir $CKPT/{prev}_hf"]
    out += [cmd, "```", ""]
    gaps = []
    if stage.plateau is not None:
        p = stage.plateau
        gaps.append(f"the switch on a plateau (`{p.metric}`, window {p.window}, patience {p.patience}, "
                    f"min_delta {p.min_delta:g}): verl stops at `trainer.total_training_steps`; pick the step "
                    "from the stage's validation curve (or run it in stagerl) and start the next stage there")
    if stage.mask_truncated_completions:
        gaps.append("truncated samples out of the loss: verl's PPO config has no such switch; the DAPO "
                    "reward manager's overlong shaping (`reward.reward_kwargs.overlong_buffer_cfg`) penalises "
                    "long responses instead, which is not the same")
    if stage.math_code_ratio is not None and len(stage.levels) >= 1:
        gaps.append(f"math:code ratio {stage.math_code_ratio:g}:1 in each batch: verl draws rows from the "
                    "concatenated files; the ratio holds only on average")
    if stage.online is not None and stage.online.predictive_skip:
        gaps.append("predictive skipping (online pass-rate estimates): not in verl")
    if stage.relevel is not None:
        gaps.append("re-levelling during the stage: not in verl; re-run `stagerl levels` between stages")
    if stage.eval_every:
        gaps.append(f"dev evaluation every {stage.eval_every} steps on held-out problems: set "
                    f"`data.val_files` and `trainer.test_freq={stage.eval_every}` to a held-out file")
    if stage.keep_best:
        gaps.append("the policy of the best dev score (`keep_best`): verl hands on its last checkpoint; save "
                    "at every validation (`trainer.save_freq` = `trainer.test_freq`) and start the next stage "
                    "from the step of the best validation score")
    if gaps:
        out += ["Not expressible in verl's config:", ""] + [f"- {g}" for g in gaps] + [""]
    return out


def verl_plan(recipe: Recipe, data_dir: str = "$DATA") -> str:
    """The markdown page (``docs/verl.md``) with one verl command per stage of ``recipe``."""
    lines = [
        f"# The `{recipe.name}` recipe on verl",
        "",
        f"Generated by `stagerl export-plan {recipe.name} --format verl`; do not edit by hand.",
        "",
        "1. Write the levels as verl parquet: `stagerl levels RECIPE --export $DATA --format verl` "
        "(one `$DATA/<level>.parquet` per level: `data_source`, chat `prompt`, `ability`, "
        "`reward_model.ground_truth`, `extra_info` with our id, level and per-model pass rates).",
        "2. Install stagerl beside verl (its rewards load as `pkg://stagerl.rewards.verl`), set `$CKPT` "
        "to a checkpoint folder and add verl's own cluster settings "
        "(`trainer.n_gpus_per_node`, `actor_rollout_ref.rollout.name`, micro-batch sizes) as for any verl run.",
        "3. Run the stages in order.",
        "",
        "What is tested here (CPU, no GPU): the export's schema against the fields verl reads, always; "
        "with verl 0.9.1 installed, `tests/levels/test_export_verl.py` loads the files with verl's own "
        "`RLHFDataset` and scores responses through verl's custom-reward loader and naive reward manager, "
        "and `tests/test_verl_plan.py` checks every override below is a key of verl's PPO config. "
        "No verl training step has run here. verl is not a stagerl dependency: verl 0.9.1 declares "
        "`transformers<5.11` and `tensordict<=0.10`, older than stagerl's environment (it imported and "
        "ran the checks above with `pip install --no-deps verl` plus its small runtime dependencies).",
        "",
    ]
    for i, stage in enumerate(recipe.train.stages):
        lines += _stage_lines(recipe, i, stage, data_dir)
    return "\n".join(lines).rstrip() + "\n"
