"""The TRL adapter: a ``StageConfig`` becomes a ``trl.GRPOConfig``; a stage is one ``GRPOTrainer.train()``.

TRL does the training; this module only maps our recipe onto it, feeds it the stage's problems in
mixed-domain order, grades completions with ``stagerl.rewards`` and writes the run folder::

    stages/<i>_<name>/metrics.jsonl   one line per optimizer step (see ``callbacks.py``)
    stages/<i>_<name>/stage.json      why the stage ended, steps, best score, config, seconds
    stages/<i>_<name>/checkpoint/     the trained policy and its tokenizer (``from_pretrained``-able)
    stages/<i>_<name>/tb/             TensorBoard event files (``observe.py``); dev.sqlite: dev samples (``dev_eval.py``)

**Batches.** In TRL, batch sizes count *completions*: one optimizer step consumes
``per_device_train_batch_size × num_processes × gradient_accumulation_steps`` completions, i.e.
that number / ``num_generations`` prompts. ``grpo_config`` solves for the per-device batch so that
one step sees exactly ``prompts_per_step × num_generations`` completions (give
``gradient_accumulation_steps`` or ``per_device_train_batch_size`` in ``stage.trl`` to choose the
split). ``steps_per_generation`` stays at TRL's default (= gradient accumulation), so one
generation round feeds exactly one optimizer step, and ``num_iterations = 1``: fully on-policy.

**Mixing.** TRL's ``RepeatSampler`` cuts the dataset into consecutive chunks of
``generation_batch_size / num_generations`` = ``prompts_per_step`` prompts — one chunk per step —
and repeats each prompt ``num_generations`` times. We set ``shuffle_dataset=False`` and write the
dataset as ``mixed_order(...)`` (``prompts_per_step × max_steps`` rows, already shuffled by
``stage.seed``), so chunk ``b`` *is* mixed batch ``b``: every step holds math:code at the ratio.
With several processes the chunk is split across them, but the global batch keeps the mix.

**Scaling.** The same code runs under ``accelerate launch`` (multi-GPU, DeepSpeed ZeRO): e.g.
``accelerate launch --config_file zero3.yaml -m stagerl.cli train recipe.yaml`` with TRL's configs
in ``trl/accelerate_configs/`` (``zero2.yaml``, ``zero3.yaml``, ``multi_gpu.yaml``), or pass
``deepspeed: path/to/ds_config.json`` in ``stage.trl``. Fast generation with vLLM is a TRL field
too: ``trl: {use_vllm: true, vllm_mode: colocate}`` (or ``vllm_mode: server`` with
``trl vllm-serve``), plus ``bf16: true`` and ``gradient_checkpointing: true`` on GPUs. With many
GPUs set ``gradient_accumulation_steps`` so the per-device batch fits (paper: 128 × 16 = 2048
completions per step, e.g. 8 GPUs × 4 completions × 64 accumulation steps).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import trl
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from ..config import RewardsConfig, StageConfig, to_dict
from ..valid import ConfigError, batch_split
from ..curriculum import mixed_order, smooth, stage_dir, stage_problems
from ..data.problem import Problem
from ..rewards import sandbox_record
from ..rundir import stage_finished, write_json
from .callbacks import StageMetricsCallback
from .online import trainer_for
from .relevel import candidates, relevel_stage
from .dev_eval import split_dev
from .ledger import add_ledger, plan_warnings
from .observe import observe, report_to
from .reward import make_reward

from ..data.prompts import to_messages


class TrainConfigError(ValueError):
    """A stage's settings cannot be mapped onto TRL (unknown ``trl`` key, indivisible batch, ...)."""


def _has_accelerator() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def _batch_fields(stage: StageConfig, extra: dict[str, Any], world: int | None = None) -> dict[str, int]:
    """Per-device batch and accumulation so one optimizer step holds prompts_per_step × G completions
    on ``world`` processes (default: ``$WORLD_SIZE`` or 1); see ``valid.batch_split``."""
    try:
        return batch_split(stage, extra, int(world or os.environ.get("WORLD_SIZE", "1")))
    except ConfigError as e:
        raise TrainConfigError(str(e)) from None


def grpo_config(stage: StageConfig, out_dir: str | Path) -> GRPOConfig:
    """The ``trl.GRPOConfig`` of ``stage``, writing under ``out_dir``.

    Maps lr, group size, KL, entropy, lengths, truncation masking, temperature, steps and seed;
    sizes the batch (see the module docstring); on-policy (``num_iterations=1``); constant
    learning rate; logs every step to the stage's ``report_to`` (TensorBoard by default); saves only
    at the end (by ``train_stage``). On a machine without a GPU, bf16 and gradient checkpointing are off. ``stage.trl`` entries override
    or extend any field; a key that is not a ``GRPOConfig`` field raises ``TrainConfigError``.
    """
    extra = dict(stage.trl)
    valid = {f.name for f in dataclasses.fields(GRPOConfig)}
    for key in extra:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TrainConfigError(f"stage {stage.name!r}: trl.{key} is not a field of trl.GRPOConfig "
                                   f"(TRL {trl.__version__}){hint}")
    fields: dict[str, Any] = {
        "output_dir": str(out_dir),
        "learning_rate": stage.learning_rate,
        "lr_scheduler_type": "constant",
        "num_generations": stage.num_generations,
        "beta": stage.beta,
        "entropy_coef": stage.entropy_coef,
        "max_completion_length": stage.max_completion_length,
        "mask_truncated_completions": stage.mask_truncated_completions,
        "temperature": stage.temperature,
        "max_steps": stage.max_steps,
        "seed": stage.seed,
        "num_iterations": 1,
        "shuffle_dataset": False,
        "remove_unused_columns": False,
        "logging_steps": 1,
        "report_to": report_to(stage),
        "save_strategy": "no",
        "disable_tqdm": False,
        **_batch_fields(stage, extra),
    }
    if not _has_accelerator():
        fields.update(bf16=False, fp16=False, dataloader_pin_memory=False)
        if not {"gradient_checkpointing", "activation_checkpointing"} & set(extra):
            # activation_checkpointing is the Transformers 5 name; None on the old alias avoids its warning
            fields.update(activation_checkpointing=False, gradient_checkpointing=None)
    fields.update(extra)
    return GRPOConfig(**fields)


def stage_dataset(problems: list[Problem], stage: StageConfig,
                  messages: Callable[[Problem], list[dict]] = to_messages) -> tuple[Dataset, list[Problem]]:
    """Rows in training order: ``prompt`` (chat messages), ``problem_index`` into the returned pool,
    ``problem_id`` and ``domain``; ``prompts_per_step × max_steps`` rows, mixed per batch."""
    order = mixed_order(problems, stage.prompts_per_step, stage.math_code_ratio, stage.seed, stage.max_steps)
    index = {p.id: i for i, p in enumerate(problems)}
    rows = [{"prompt": messages(p), "problem_index": index[p.id], "problem_id": p.id, "domain": p.domain}
            for p in order]
    return Dataset.from_list(rows), list(problems)


def train_stage(policy: str | Path, problems: list[Problem], stage: StageConfig, out_dir: str | Path,
                rewards: RewardsConfig | None = None, messages: Callable[[Problem], list[dict]] = to_messages) -> dict:
    """Train ``policy`` (a checkpoint folder or hub id) on ``problems`` for one stage; return stage.json.

    Ends at the plateau (``stage.plateau``) or after ``stage.max_steps``; saves the model and
    tokenizer to ``out_dir/checkpoint`` and writes ``out_dir/metrics.jsonl`` and ``out_dir/stage.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    args = grpo_config(stage, out_dir)
    problems, dev_problems = split_dev(problems, stage)
    dataset, pool = stage_dataset(problems, stage, messages)
    plan_warnings(dataset["domain"], pool, stage.max_steps, stage.prompts_per_step)
    callback = StageMetricsCallback(out_dir / "metrics.jsonl", stage.plateau)
    trainer_cls, online = trainer_for(stage, pool, messages)  # GRPOTrainer unless stage.online is set
    trainer = trainer_cls(model=str(policy), reward_funcs=[make_reward(pool, rewards, stage.num_generations)],
                          args=args, train_dataset=dataset, callbacks=[callback], **online)
    dev = observe(trainer, stage, out_dir, dev_problems, messages, rewards)
    trainer.train()
    checkpoint = out_dir / "checkpoint"
    trainer.save_model(str(checkpoint))
    steps = trainer.state.global_step
    if callback.plateau_step is not None:
        reason = f"plateau at step {callback.plateau_step}"
    elif steps >= stage.max_steps:
        reason = "max_steps"
    else:
        reason = f"stopped at step {steps}"
    metric = stage.plateau.metric if stage.plateau else "reward"
    values = [r[metric] for r in callback.rows if isinstance(r.get(metric), (int, float))]
    info = {
        "reason": reason,
        "steps": steps,
        "best": _best(values, stage.plateau.window if stage.plateau else 1),
        "metric": metric,
        "checkpoint": str(checkpoint.resolve()),
        "seconds": round(time.time() - t0, 1),
        "policy": str(policy),
        "problems": len(problems),
        "domains": {d: sum(p.domain == d for p in problems) for d in ("math", "code")},
        "trl_version": trl.__version__,
        "config": to_dict(stage),
        "sandbox": sandbox_record(),
    }
    add_ledger(info, out_dir, dataset["domain"], pool, stage.prompts_per_step, dev)
    if trainer.is_world_process_zero():
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(str(checkpoint))
        write_json(out_dir / "stage.json", info)  # written last: its presence marks the stage as done
    return info


def _best(values: list[float], window: int) -> float | None:
    """Best smoothed value of the watched metric (best raw value before the first full window)."""
    finite = [v for v in smooth(values, window) if v == v] or [v for v in values if v == v]
    return max(finite) if finite else None


def finished(out_dir: Path) -> dict | None:
    """The stage.json of a completed stage folder (with its checkpoint present), else None."""
    info_path, ckpt = out_dir / "stage.json", out_dir / "checkpoint" / "config.json"
    if stage_finished(out_dir):
        info = json.loads(info_path.read_text())
        info["checkpoint"] = str(ckpt.parent.resolve())
        return info
    return None


def train_stages(policy: str | Path, levels: dict[str, list[Problem]], stages: list[StageConfig],
                 run_dir: str | Path, rewards: RewardsConfig | None = None,
                 messages: Callable[[Problem], list[dict]] = to_messages) -> list[dict]:
    """Train through ``stages`` in order, each from the previous stage's checkpoint; return their stage.json.

    Every stage's levels are checked before any training starts. A stage whose folder already
    holds stage.json and a checkpoint is skipped (resume at stage granularity); an unfinished
    stage is trained again from its start.
    """
    problem_sets = [stage_problems(stage, levels) for stage in stages]
    [candidates(stage, levels) for stage in stages if stage.relevel is not None]  # relevel's levels exist
    for stage, problems in zip(stages, problem_sets):
        split_dev(problems, stage)  # a dev set that cannot be built fails here, before any training
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise TrainConfigError(f"stage names must be unique, got {names}")
    results: list[dict] = []
    current = str(policy)
    for i, (stage, problems) in enumerate(zip(stages, problem_sets), start=1):
        out = stage_dir(run_dir, i, stage)
        info = finished(out)
        if info is None:
            if stage.relevel is not None:  # keep only candidates in the band for the current policy
                problems = relevel_stage(current, stage, levels, run_dir, i, messages, rewards)
            info = train_stage(current, problems, stage, out, rewards=rewards, messages=messages)
        results.append(info)
        current = info["checkpoint"]
    return results
