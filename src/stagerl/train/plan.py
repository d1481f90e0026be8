"""What one optimizer step of a stage asks of each device, computed from the recipe alone (no model, no GPU).

``stage_plan(stage, world_size)`` splits the step's ``prompts_per_step × num_generations``
completions exactly as ``grpo.grpo_config`` will (``valid.batch_split``), and says how many
sequences each device holds in one forward/backward pass, how many passes make a step, and the
most tokens a step and a pass can carry (completion tokens at ``max_completion_length``; prompts
add theirs). ``python -m stagerl.train.plan RECIPE N`` prints it, so an impossible plan (the paper's 2048 completions of
16k tokens as 256 sequences per GPU in one pass) is seen before launch.
"""

from __future__ import annotations

from typing import Any

from ..config import StageConfig
from ..valid import batch_split

PASS_TOKENS_WARN = 32768
"""Completion tokens per device per pass above which ``stage_plan`` warns: with a ~150k-token
vocabulary (Qwen/R1-Distill) the fp32 logits of 32k tokens alone take 32768 × 151936 × 4 B ≈ 20 GB."""


def stage_plan(stage: StageConfig, world_size: int = 1) -> dict[str, Any]:
    """The per-step, per-device batch plan of ``stage`` on ``world_size`` processes.

    Raises ``valid.ConfigError`` when the step's completions cannot be split over the processes.
    """
    split = batch_split(stage, dict(stage.trl), world_size)
    per_device, passes = split["per_device_train_batch_size"], split["gradient_accumulation_steps"]
    completions = stage.prompts_per_step * stage.num_generations
    pass_tokens = per_device * stage.max_completion_length
    plan: dict[str, Any] = {
        "stage": stage.name,
        "processes": world_size,
        "prompts_per_step": stage.prompts_per_step,
        "completions_per_step": completions,
        "sequences_per_device_per_pass": per_device,
        "passes_per_step": passes,
        "completions_per_device_per_step": per_device * passes,
        "generation_rounds_per_step": 1,
        "max_completion_tokens_per_step": completions * stage.max_completion_length,
        "max_completion_tokens_per_device_pass": pass_tokens,
        "warnings": [],
    }
    if pass_tokens > PASS_TOKENS_WARN:
        plan["warnings"].append(
            f"{per_device} sequences × {stage.max_completion_length} tokens = {pass_tokens} completion tokens per "
            f"device in one pass (> {PASS_TOKENS_WARN}); raise trl.gradient_accumulation_steps or lower "
            "trl.per_device_train_batch_size")
    return plan


def format_plan(plan: dict[str, Any]) -> str:
    """Two lines a person reads before launching."""
    text = (f"stage {plan['stage']}: {plan['completions_per_step']} completions per step "
            f"({plan['prompts_per_step']} prompts) over {plan['processes']} process(es): "
            f"{plan['sequences_per_device_per_pass']} sequences per device per pass × {plan['passes_per_step']} "
            f"passes per step\n  at most {plan['max_completion_tokens_per_step']:,} completion tokens per step, "
            f"{plan['max_completion_tokens_per_device_pass']:,} per device per pass")
    return text + "".join(f"\n  WARNING: {w}" for w in plan["warnings"])


def recipe_plans(recipe: str, world_size: int) -> str:
    """Every stage's plan of a recipe (a YAML path or built-in name), as text."""
    from ..config import load_recipe

    return "\n".join(format_plan(stage_plan(s, world_size)) for s in load_recipe(recipe).train.stages)


if __name__ == "__main__":  # python -m stagerl.train.plan RECIPE WORLD_SIZE
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m stagerl.train.plan RECIPE WORLD_SIZE")
    print(recipe_plans(sys.argv[1], int(sys.argv[2])))
