"""The one typed recipe: dataclasses with a documented default per field; YAML in and out.

A recipe describes the whole pipeline: problem sources, reference models and k, level rules,
training stages and evaluation. ``load_recipe("recipe.yaml")`` validates every key (an unknown or
mistyped key is an error naming its path, e.g. ``train.stages[1].beta``) and
``dump_recipe(recipe, path)`` writes the resolved recipe back, so every run folder records exactly
what ran. Built-in recipes live in ``stagerl/recipes/`` (``demo``, ``paper``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from .config_online import OnlineConfig, RelevelConfig  # StageConfig.online, StageConfig.relevel
from .valid import ENGINES, ORDERS, SANDBOX_MODES, ConfigError, _at_least, _need, _unique, from_dict


@dataclass
class ModelRef:
    """A model reachable through one of the generation engines."""

    name: str
    """Short name used in tables, level rules and plots (e.g. ``r1-distill-qwen-7b``)."""
    model: str = ""
    """What the engine loads: an embedded alias (``smollm2-135m``), a local folder, a hub id, or
    the served model name for ``openai``. Defaults to ``name``."""
    engine: str = "transformers"
    """``transformers`` (in-process), ``openai`` (any OpenAI-compatible server) or ``vllm``."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine options, e.g. ``{base_url: http://host:8000/v1, concurrency: 64}`` for ``openai``
    or ``{batch_size: 32}`` for ``transformers``."""
    temperature: float | None = None
    """Per-model sampling temperature; ``None`` uses the scoring/eval default."""
    max_tokens: int | None = None
    """Per-model cap on generated tokens (long reasoners need more); ``None`` uses
    ``sampling.max_tokens``. Part of the model's stored settings."""

    def __post_init__(self) -> None:
        _need(isinstance(self.name, str) and bool(self.name.strip()), "name", "must be a non-empty string")
        if not self.model:
            self.model = self.name
        _need(self.engine in ENGINES, "engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        _at_least(self, 0, "temperature")
        _at_least(self, 1, "max_tokens")


@dataclass
class PromptConfig:
    """How problems are put to every model (scoring, training and evaluation alike)."""

    system: str | None = None
    """Optional system message."""
    fewshot: bool = False
    """Show one worked exchange of the problem's domain first (``stagerl.data.prompts.FEWSHOT``);
    helps small models keep the answer format (``\\boxed{}``, one ```python block)."""

    def messages(self, problem: Any) -> list[dict]:
        from .data.prompts import to_messages

        return to_messages(problem, system=self.system, fewshot=self.fewshot)


@dataclass
class SamplingConfig:
    """Sampling settings shared by scoring and evaluation (paper: T=0.6, top_p=0.95)."""

    temperature: float = 0.6
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling threshold."""
    max_tokens: int = 16384
    """Maximum generated tokens per sample; longer samples are cut and marked ``length``."""
    seed: int = 0
    """Base seed; engines derive per-call / per-sample seeds from it."""

    def __post_init__(self) -> None:
        _at_least(self, 0, "temperature")
        _need(isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1, "top_p",
              f"must be in (0, 1], got {self.top_p!r}")
        _at_least(self, 1, "max_tokens")


@dataclass
class ScoringConfig:
    """Difficulty scoring: k samples per (problem, reference model)."""

    models: list[ModelRef] = field(default_factory=list)
    """Reference models, an ordered ladder from weakest to strongest."""
    k: int = 16
    """Samples per (problem, model) under the fixed protocol (paper: 16)."""
    adaptive: bool = True
    """Sample in rounds and stop a pair once its level verdicts are decided; ``False`` keeps the
    paper's fixed protocol (all k samples for every pair)."""
    round_size: int = 4
    """Samples per (problem, model) per round in adaptive mode."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampling settings for the reference models."""
    reward_workers: int | None = None
    """Deprecated: grading workers are ``rewards.workers`` (one section for scoring, training and
    evaluation); setting this is an error that says so."""
    call_size: int = 64
    """Samples per engine call. A call's samples are graded and stored together, so this bounds
    the work a crash can lose and sets how often progress updates; raise it for large GPU batches
    or many served replicas."""
    order: str = "strongest-first"
    """Ladder order: ``strongest-first`` (default: one success settles the keep filter, a problem
    the strongest never solves skips every other model; 0.49 of the fixed protocol's tokens vs 0.75
    weakest-first in ``benchmarks/scoring.py``) or ``weakest-first``."""

    def __post_init__(self) -> None:
        _need(self.reward_workers is None, "reward_workers",
              "deprecated: grading settings live in the one `rewards:` section used by scoring, training and "
              f"evaluation; write `rewards: {{workers: {self.reward_workers}}}` instead")
        _at_least(self, 1, "k", "round_size", "call_size")
        _need(self.order in ORDERS, "order", f"must be one of {', '.join(ORDERS)}, got {self.order!r}")
        _unique("models", [m.name for m in self.models])


@dataclass
class RewardsConfig:
    """Grading, used alike by scoring, training and evaluation."""

    workers: int | None = None
    """Processes for grading (math verifier pool, code sandbox slots); ``None`` = one per CPU core."""
    math_timeout: float = 2.0
    """Seconds Math-Verify may spend on one answer before it scores 0."""
    sandbox: str = "bwrap"
    """Isolation of model-written code: ``bwrap`` (bubblewrap; grading refuses to run code when it
    is unusable) or ``unsafe-limits`` (rlimits and a wall clock only: NOT isolated from the host;
    recorded in the run folder and shown in the report)."""
    code_timeout: float = 6.0
    """Wall-clock seconds per code test (LiveCodeBench: 6)."""
    code_memory_mb: int = 2048
    """Address-space cap of a program under test, in MiB."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "workers", "code_memory_mb")
        _at_least(self, 0.01, "math_timeout", "code_timeout")
        _need(self.sandbox in SANDBOX_MODES, "sandbox", f"{self.sandbox!r} is not a sandbox mode; use 'bwrap' (isolated; "
              "refuses to run code when bubblewrap cannot) or 'unsafe-limits' (NOT isolated; see docs/sandbox.md)")


@dataclass
class LevelsConfig:
    """Difficulty levels: rules over pass rates."""

    rules: Union[str, dict] = "paper"
    """A preset name (``paper``, ``demo``), a YAML path, or the rules inline."""
    bind: dict[str, str] = field(default_factory=dict)
    """Model aliases of the rules bound to scoring model names, e.g. ``{small: r1-distill-1.5b}``."""


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
    """How many of the latest resumable checkpoints a stage keeps (older ones are deleted)."""
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


@dataclass
class TrainConfig:
    """Staged GRPO training of the policy."""

    policy: str = "smollm2-135m"
    """Policy model: embedded alias, local folder or hub id."""
    stages: list[StageConfig] = field(default_factory=list)
    """Stages in order; each starts from the previous stage's checkpoint."""

    def __post_init__(self) -> None:
        _unique("stages", [s.name for s in self.stages])


@dataclass
class BenchmarkConfig:
    """One evaluation benchmark."""

    name: str
    """Name in results and plots."""
    source: Union[str, dict] = ""
    """Problem source (``builtin:aime24``, a file path, ``hf:org/name`` or a dict); default
    ``builtin:<name>``."""
    k: int = 16
    """Samples per problem; pass@1 is averaged over them (paper: 16 math, 4 code)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` problems (for quick checks)."""

    def __post_init__(self) -> None:
        if not self.source:
            self.source = f"builtin:{self.name}"
        _at_least(self, 1, "k", "limit")


@dataclass
class EvalConfig:
    """Evaluation of checkpoints: pass@1 averaged over k samples."""

    benchmarks: list[BenchmarkConfig] = field(default_factory=list)
    """Benchmarks to run."""
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_tokens=32768))
    """Sampling settings (paper: T=0.6, top_p=0.95)."""
    engine: str = "transformers"
    """Engine used to sample from checkpoints."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine options."""
    call_size: int = 4096
    """Samples per engine call (a call is graded and stored together); large, so the engine batches
    freely. The ``vllm`` engine always gets a whole benchmark in one call."""
    max_tokens_by_checkpoint: dict[str, int] = field(default_factory=dict)
    """Per-checkpoint ``max_tokens`` overriding ``sampling.max_tokens`` (e.g. ``{2_stage2: 24576}``:
    a long reasoner needs more room than its base)."""

    def __post_init__(self) -> None:
        _need(self.engine in ENGINES, "engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        _unique("benchmarks", [b.name for b in self.benchmarks])
        _at_least(self, 1, "call_size")
        bad = {k: v for k, v in self.max_tokens_by_checkpoint.items() if not isinstance(v, int) or v < 1}
        _need(not bad, "max_tokens_by_checkpoint", f"values must be ints >= 1, got {bad}")


@dataclass
class Recipe:
    """The whole pipeline, as one file."""

    name: str = "run"
    """Run name: the run folder is ``<runs_dir>/<name>``."""
    runs_dir: str = "runs"
    """Parent folder of run folders."""
    data: list[Union[str, dict]] = field(default_factory=list)
    """Training problem sources: ``builtin:<name>``, file paths, ``hf:<name>`` or dicts (see
    ``stagerl.data.load_source``)."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    levels: LevelsConfig = field(default_factory=LevelsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


# --------------------------------------------------------------------------- YAML in and out


def load_recipe(spec: str | Path | dict) -> Recipe:
    """Load a recipe from a YAML path, a built-in recipe name (``demo``, ``paper``) or a dict."""
    if isinstance(spec, dict):
        return from_dict(Recipe, spec)
    path = Path(spec)
    if not path.exists():
        builtin = resources.files("stagerl") / "recipes" / f"{spec}.yaml"
        if not builtin.is_file():
            raise ConfigError(f"no recipe file {spec!r} and no built-in recipe of that name "
                              f"(built-in: {', '.join(builtin_recipes())})")
        text, where = builtin.read_text(), f"built-in recipe {spec!r}"
    else:
        text, where = path.read_text(), str(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from None
    try:
        return from_dict(Recipe, data)
    except ConfigError as e:  # one line per problem, each named by file and key path
        raise ConfigError("\n".join(f"{where}: {line}" for line in str(e).splitlines())) from None


def builtin_recipes() -> list[str]:
    folder = resources.files("stagerl") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def to_dict(obj: Any) -> Any:
    """A plain dict/list tree of a config object (what ``dump_recipe`` writes)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_recipe(recipe: Recipe, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(recipe), sort_keys=False))
    return path
