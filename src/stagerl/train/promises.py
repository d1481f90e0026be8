"""What the adapter promises about a stage, checked without importing torch or TRL (``stagerl check`` uses it).

``RESERVED`` names the ``stage.trl`` keys the adapter refuses and why: those it sets from stage
fields, and those whose change would break the mixed batches, the on-policy loop, one metrics row
per step or resuming. ``LOSS_TYPES`` are the ``loss_type`` values TRL 1.16 implements.
"""

from __future__ import annotations

from typing import Any

LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo")
"""``loss_type`` values TRL 1.16 implements (``trl.GRPOConfig.loss_type``)."""

_STAGE_FIELD = "set by the stage field {field!r}"
RESERVED: dict[str, str] = {
    **{k: _STAGE_FIELD.format(field=k) for k in (
        "learning_rate", "num_generations", "beta", "entropy_coef", "max_completion_length",
        "mask_truncated_completions", "temperature", "max_steps", "seed", "loss_type", "report_to")},
    "use_bias_correction_kl": _STAGE_FIELD.format(field="kl_bias_correction"),
    "vllm_importance_sampling_correction": _STAGE_FIELD.format(field="vllm_is_correction"),
    "save_steps": _STAGE_FIELD.format(field="checkpoint_every"),
    "save_total_limit": _STAGE_FIELD.format(field="keep_checkpoints"),
    "save_strategy": "the stage saves a resumable checkpoint every `checkpoint_every` steps",
    "save_only_model": "a resumable checkpoint needs the optimizer, scheduler and RNG states",
    "resume_from_checkpoint": "rerunning the same command resumes from the stage's latest checkpoint",
    "ignore_data_skip": "a resumed stage must skip the batches it consumed so the data order continues",
    "output_dir": "a stage writes into its own folder, stages/<i>_<name>/",
    "shuffle_dataset": "the dataset is pre-ordered so every step keeps the math:code ratio; shuffling breaks the mix",
    "num_iterations": "the recipe is on-policy: each generation round is used for exactly one optimizer step",
    "steps_per_generation": "one generation round feeds exactly one optimizer step (on-policy, one chunk per step)",
    "generation_batch_size": "one generation round is prompts_per_step × num_generations completions",
    "num_train_epochs": "max_steps bounds the stage (the dataset holds exactly max_steps batches)",
    "logging_steps": "metrics.jsonl holds one row per optimizer step",
    "logging_strategy": "metrics.jsonl holds one row per optimizer step",
    "remove_unused_columns": "the reward function needs the dataset's problem_index column",
}
"""``stage.trl`` keys the adapter refuses, with the reason."""


def promise_issues(stage: Any) -> list[tuple[str, str]]:
    """``(key, message)`` for each setting of ``stage`` the adapter refuses (reserved ``trl`` keys,
    an unknown ``loss_type``, non-positive checkpoint settings)."""
    out = [(f"trl.{key}", f"is not allowed: {RESERVED[key]}") for key in stage.trl if key in RESERVED]
    if stage.loss_type not in LOSS_TYPES:
        out.append(("loss_type", f"{stage.loss_type!r} is not one of {', '.join(LOSS_TYPES)}"))
    for name in ("checkpoint_every", "keep_checkpoints", "max_steps"):
        if getattr(stage, name) < 1:
            out.append((name, f"must be >= 1, got {getattr(stage, name)}"))
    return out
