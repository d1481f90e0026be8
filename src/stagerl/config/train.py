"""The training sections of the recipe: ``train`` (policy, stages), each stage's plateau rule and dev set.

Kept beside ``config.py`` (which imports and re-exports them) so each file stays short; import them
from ``stagerl.config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from .online import OnlineConfig, RelevelConfig  # StageConfig.online, StageConfig.relevel
from ..valid import _at_least, _need, _unique


@dataclass
class PlateauConfig:
    """When a stage's training score stops improving, the stage ends."""

    metric: str = "reward"
    """Logged metric watched (TRL's mean reward by default; ``dev_score``: the held-out dev score, which
    needs the stage's ``eval_every`` and ``dev``; rows without the metric are skipped)."""
    window: int = 10
    """Values averaged per point of the smoothed curve (steps; dev evaluations for ``dev_score``)."""
    patience: int = 3
    """Consecutive windows without improvement before the plateau is declared."""
    min_delta: float = 0.005
    """Smallest improvement of the smoothed metric that counts."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "window", "patience")
        _at_least(self, 0, "min_delta")


@dataclass
class DevConfig:
    """A held-out dev set, evaluated with the live policy during a stage (see ``StageConfig.eval_every``)."""

    holdout: int | None = None
    """Hold out this many of the stage's own problems (drawn by the stage's seed, in proportion to
    the domains; removed from training)."""
    source: Union[str, dict, None] = None
    """Or a problem source evaluated as given (``builtin:math500``, a file path, ``hf:...``, a dict)."""
    limit: int | None = None
    """Use only the first ``limit`` problems of ``source``."""
    temperature: float = 0.6
    """Sampling temperature of dev samples (paper's evaluation: 0.6)."""
    top_p: float = 0.95
    """Nucleus threshold of dev samples."""
    max_tokens: int | None = None
    """Tokens per dev sample; ``None``: the stage's ``max_completion_length``."""

    def __post_init__(self) -> None:
        _need((self.holdout is None) != (self.source is None), "holdout",
              "give exactly one of holdout (problems held out of the stage's levels) or source (a benchmark "
              "such as builtin:math500)")
        _at_least(self, 1, "holdout", "limit", "max_tokens")
        _need(self.limit is None or self.source is not None, "limit", "only applies to a dev source, not to holdout")


@dataclass
class StageConfig:
    """One GRPO stage (paper: stage 1 on L2 until plateau, stage 2 on L3 with longer outputs)."""

    name: str = "stage1"
    """Name of the stage folder under ``stages/``."""
    levels: list[str] = field(default_factory=lambda: ["L2"])
    """Levels whose problems this stage trains on (their union)."""
    learning_rate: float = 1e-6
    """Adam learning rate (paper: 1e-6)."""
    num_generations: int = 16
    """Samples per prompt: the GRPO group size (paper: 16)."""
    prompts_per_step: int = 128
    """Prompts per optimizer step (paper batch: 128)."""
    beta: float = 0.001
    """KL coefficient against the reference model (paper: 0.001)."""
    entropy_coef: float = 0.001
    """Entropy bonus (paper: 0.001 in stage 1, 0 in stage 2)."""
    max_completion_length: int = 16384
    """Maximum generated tokens per sample (paper: 16k stage 1, 24k stage 2)."""
    mask_truncated_completions: bool = False
    """Exclude truncated samples from the loss (paper: stage 2)."""
    temperature: float = 1.0
    """Sampling temperature of the policy during training."""
    max_steps: int = 1000
    """Upper bound on optimizer steps; the plateau rule usually ends a stage first."""
    plateau: PlateauConfig | None = field(default_factory=PlateauConfig)
    """Plateau rule that ends the stage; ``None`` runs ``max_steps``."""
    math_code_ratio: float | None = 2.1
    """Math:code prompts per batch (paper: ~2.1:1); ``None`` keeps the data's own mix."""
    seed: int = 0
    """Seed of data order and sampling."""
    checkpoint_every: int = 50
    """Save a resumable TRL checkpoint (model, optimizer, scheduler, RNG, trainer state) every this
    many optimizer steps; rerunning the same command resumes a killed stage from the latest one."""
    keep_checkpoints: int = 2
    """How many of the latest resumable checkpoints a stage keeps (older ones go once a newer one is complete)."""
    loss_type: str = "dapo"
    """TRL's GRPO loss aggregation: ``dapo`` (token-level, normalized by the active tokens of the
    whole accumulated batch: no length bias), ``grpo`` (per-sequence mean, length-biased),
    ``dr_grpo``, ``bnpo``, ... (see ``trl.GRPOConfig.loss_type``). The paper names GRPO but not its
    aggregation; we choose token-level (see ``stagerl.train.grpo``)."""
    kl_bias_correction: bool = True
    """Weight the KL term by the importance ratio (TRL ``use_bias_correction_kl``: the unbiased
    reverse-KL gradient, DeepSeek-V3.2); ``False`` is the original GRPO k3 penalty. Only when ``beta > 0``."""
    vllm_is_correction: bool = True
    """Correct the vLLM-vs-trainer log-probability mismatch by importance sampling (TRL
    ``vllm_importance_sampling_correction``); only used with ``trl: {use_vllm: true}``."""
    trl: dict[str, Any] = field(default_factory=dict)
    """Extra ``trl.GRPOConfig`` fields passed through as given (e.g. ``bf16``, ``use_vllm``,
    ``gradient_accumulation_steps``, ``deepspeed``). Keys the adapter sets from stage fields or
    relies on (``learning_rate``, ``shuffle_dataset``, ``num_iterations``, ...) are rejected."""
    online: OnlineConfig | None = None
    """Online filtering during the stage (dynamic sampling, predictive skipping); ``None``: off."""
    relevel: RelevelConfig | None = None
    """Re-score the stage's candidates with the current policy before it starts; ``None``: off."""
    eval_every: int | None = None
    """Evaluate the live policy on ``dev`` at step 0 and every this many optimizer steps; the score
    (mean pass@1 over ``dev_k`` samples) is ``dev_score`` in metrics.jsonl. ``0``/``None``: off."""
    dev: DevConfig | None = None
    """The dev set of ``eval_every``: ``{holdout: N}`` or ``{source: builtin:math500, limit: N}``."""
    dev_k: int = 4
    """Dev samples per problem."""
    keep_best: bool = False
    """End the stage with the policy of its best dev score (step 0 included), not its last: the stage's
    ``checkpoint/`` (and the next stage's start) is that policy; needs ``eval_every`` (see ``train/best.py``)."""
    report_to: Union[str, list[str]] = field(default_factory=lambda: ["tensorboard"])
    """Loggers besides metrics.jsonl: ``tensorboard`` (event files in the stage's ``tb/``), ``wandb``
    (needs ``pip install wandb``), any other ``transformers`` integration, or ``none``."""


    def __post_init__(self) -> None:
        _need(isinstance(self.name, str) and bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name)), "name",
              f"a stage name is letters, digits, _ . - (it names a folder), got {self.name!r}")
        _need(bool(self.levels), "levels", "must list at least one level")
        _need(self.num_generations >= 2, "num_generations",
              f"must be >= 2 (GRPO compares the samples of a group), got {self.num_generations!r}")
        _at_least(self, 1, "prompts_per_step", "max_completion_length", "max_steps")
        _at_least(self, 0, "beta", "entropy_coef")
        for key in ("learning_rate", "temperature", "math_code_ratio"):  # math_code_ratio may be None
            v = getattr(self, key)
            _need(v is None and key == "math_code_ratio" or v is not None and v > 0, key, f"must be > 0, got {v!r}")
        self.report_to = [] if self.report_to in ("none", [], ["none"]) else (
            [self.report_to] if isinstance(self.report_to, str) else list(self.report_to))
        _at_least(self, 0, "eval_every")
        _at_least(self, 1, "dev_k")
        _need(not self.eval_every or self.dev is not None, "eval_every",
              f"eval_every = {self.eval_every} needs a dev set (dev: {{holdout: N}} or dev: {{source: builtin:math500, "
              "limit: N}})")
        _need(self.plateau is None or self.plateau.metric != "dev_score" or bool(self.eval_every), "plateau.metric",
              "dev_score needs eval_every > 0 and a dev set")
        _need(not self.keep_best or bool(self.eval_every), "keep_best",
              "keeps the policy of the best dev score: it needs eval_every > 0 and a dev set")


@dataclass
class TrainConfig:
    """Staged GRPO training of the policy."""

    policy: str = "smollm2-135m"
    """Policy model: embedded alias, local folder or hub id."""
    stages: list[StageConfig] = field(default_factory=list)
    """Stages in order; each starts from the previous stage's checkpoint."""

    def __post_init__(self) -> None:
        _unique("stages", [s.name for s in self.stages])
