"""``stagerl check`` builds each stage's real ``trl.GRPOConfig``, without a model, to find what TRL rejects.

The key-name check in ``checks.py`` reads ``GRPOConfig``'s fields from the source; this goes one
step further: it builds the config the stage would train with (``grpo.grpo_fields``), so a value
``GRPOConfig.__post_init__`` (TRL's or Transformers') refuses, or a keyword it does not take, is
an error with its key path (``train.stages[1].trl.vllm_importance_sampling_mode``) in seconds.

Settings whose check depends on the machine rather than on TRL (``MACHINE``: bf16/fp16/tf32 need
a GPU that supports them, ``deepspeed``/``fsdp`` need those packages) are left out of the build, so a
GPU recipe checks on a laptop; a ``deepspeed`` config file that does not exist is still an error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

MACHINE = ("bf16", "fp16", "tf32", "deepspeed", "fsdp", "fsdp_config")
"""``stage.trl`` keys whose validation needs the training machine (GPU, DeepSpeed): not built here."""

_STAGE_FIELDS = {  # GRPOConfig field -> the stage field it comes from (grpo.grpo_fields)
    "learning_rate": "learning_rate", "num_generations": "num_generations", "beta": "beta",
    "entropy_coef": "entropy_coef", "max_completion_length": "max_completion_length",
    "mask_truncated_completions": "mask_truncated_completions", "temperature": "temperature",
    "max_steps": "max_steps", "seed": "seed", "loss_type": "loss_type",
    "use_bias_correction_kl": "kl_bias_correction", "vllm_importance_sampling_correction": "vllm_is_correction",
    "save_steps": "checkpoint_every", "save_total_limit": "keep_checkpoints",
    "per_device_train_batch_size": "prompts_per_step", "gradient_accumulation_steps": "prompts_per_step",
}


def _build(fields: dict[str, Any]) -> str | None:
    """The error ``GRPOConfig(**fields)`` raises, as text; None if it builds."""
    import warnings

    from trl import GRPOConfig

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GRPOConfig(**fields)
    except Exception as e:  # noqa: BLE001 - any refusal is the user's to see, with its key path
        return f"{type(e).__name__}: {e}".strip()
    return None


def _where(fields: dict[str, Any], trl_keys: list[str], message: str) -> str:
    """The key path (under the stage) most likely at fault: a ``trl`` key without which the config
    builds, else the first field the message names, else the stage's ``trl`` section."""
    for key in trl_keys:
        if _build({k: v for k, v in fields.items() if k != key}) is None:
            return f"trl.{key}"
    named = sorted((message.find(f), f) for f in fields if f in message)
    for _, name in named:
        if name in trl_keys:
            return f"trl.{name}"
        if name in _STAGE_FIELDS:
            return _STAGE_FIELDS[name]
    return "trl"


def _choices(stage: Any) -> list[tuple[str, str]]:
    """``trl`` values outside the choices TRL declares (field metadata) or accepts only at training time."""
    import dataclasses

    from trl import GRPOConfig

    from .trl_contract import IS_MODES

    choices = {f.name: list(f.metadata["choices"]) for f in dataclasses.fields(GRPOConfig) if "choices" in f.metadata}
    choices["vllm_importance_sampling_mode"] = list(IS_MODES)
    return [(f"trl.{key}", f"{value!r} is not one of {', '.join(map(str, choices[key]))}")
            for key, value in stage.trl.items() if key in choices and value not in choices[key]]


def grpo_config_issues(stage: Any, world: int) -> list[tuple[str, str]]:
    """``(key path under the stage, message)`` for each thing the installed TRL refuses in ``stage``."""
    import trl

    from .grpo import ZERO3, TrainConfigError, grpo_fields

    out: list[tuple[str, str]] = []
    deepspeed = stage.trl.get("deepspeed")
    if isinstance(deepspeed, str) and deepspeed != "zero3" and not Path(deepspeed).is_file():
        out.append(("trl.deepspeed", f"DeepSpeed config {deepspeed!r} does not exist (or use `zero3`: {ZERO3})"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fields = grpo_fields(stage, tmp, world=world, accelerator=False)
    except (TrainConfigError, ValueError, TypeError):
        return out  # the batch split and key checks of checks.py report these
    out += _choices(stage)
    for key in MACHINE:
        fields.pop(key, None)
    fields.update(use_cpu=True, report_to="none")
    error = _build(fields)
    if error is not None:
        keys = [k for k in stage.trl if k not in MACHINE]
        out.append((_where(fields, keys, error), f"trl.GRPOConfig (TRL {trl.__version__}) refuses it: {error}"))
    return out
