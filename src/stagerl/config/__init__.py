"""The one typed recipe: dataclasses with a documented default per field; YAML in and out.

A recipe describes the whole pipeline: problem sources, reference models and k, level rules,
training stages and evaluation. ``load_recipe("recipe.yaml")`` validates every key (an unknown or
mistyped key is an error naming its path, e.g. ``train.stages[1].beta``) and
``dump_recipe(recipe, path)`` writes the resolved recipe back, so every run folder records exactly
what ran. Built-in recipes live in ``stagerl/recipes/`` (``demo``, ``paper``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from .online import OnlineConfig, RelevelConfig  # noqa: F401 (re-exported)
from .scoring import PriorConfig, StopConfig  # noqa: F401 (re-exported)
from .train import DevConfig, PlateauConfig, StageConfig, TrainConfig  # noqa: F401 (re-exported)
from ..valid import ENGINES, ORDERS, SANDBOX_MODES, ConfigError, _at_least, _need, _unique, from_dict


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
        from ..data.prompts import to_messages

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
    stop: StopConfig = field(default_factory=StopConfig)
    """Which rule stops a pair early in adaptive mode: ``{rule: exact}`` (default) or
    ``{rule: bayes, error: 0.01}`` (see ``stagerl.config.scoring``)."""

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
    table_columns: dict[str, str] = field(default_factory=dict)
    """Column names of a pass-rate table made elsewhere (``--table``), ours -> theirs: our column
    names (``problem_id``, ``domain``, ``model``, ``pass_rate``, ...) or, for a table with one
    column per model, ``<model name>: <its column>`` (see ``stagerl.levels.columns``)."""
    require_all: bool = False
    """Every problem of ``data`` must have a row in the pass-rate table (else an error; by default
    the missing ones are counted in a warning and are in no level)."""


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

    def __post_init__(self) -> None:
        from ..rundir import run_name_problem

        problem = run_name_problem(self.name)
        _need(problem is None, "name", problem or "")

    @property
    def run_dir(self) -> Path:
        """``<runs_dir>/<name>``; a name that would leave the runs folder (``../x``, set after loading,
        e.g. by ``--name``) is a ``ConfigError``."""
        from ..rundir import run_name_problem

        problem = run_name_problem(self.name)
        _need(problem is None, "name", problem or "")
        return Path(self.runs_dir) / self.name


# --------------------------------------------------------------------------- YAML in and out


def load_recipe(spec: str | Path | dict) -> Recipe:
    """Load a recipe from a YAML path, a built-in recipe name (``demo``, ``paper``) or a dict.

    In a recipe file, relative file paths (``data`` files, benchmark sources, a ``levels.rules``
    YAML file) are relative to the recipe file's folder. A key given twice, a file that is not
    UTF-8, an empty recipe or a folder is an error naming the file (and line)."""
    from ..yamlfile import YamlFileError, load_yaml, read_text

    if isinstance(spec, dict):
        return from_dict(Recipe, spec)
    path = Path(spec)
    try:
        if not path.exists():
            builtin = resources.files("stagerl") / "recipes" / f"{spec}.yaml"
            if not builtin.is_file():
                raise ConfigError(f"no recipe file {spec!r} and no built-in recipe of that name "
                                  f"(built-in: {', '.join(builtin_recipes())})")
            text, where = builtin.read_text(encoding="utf-8"), f"built-in recipe {spec!r}"
        else:
            text, where = read_text(path, "recipe file"), str(path)
        data = load_yaml(text, where)
    except YamlFileError as e:
        raise ConfigError(str(e)) from None
    if data is None:
        raise ConfigError(f"{where}: the recipe is empty; start from a built-in one (`stagerl recipe demo > "
                          f"{path.name if path.exists() else 'recipe.yaml'}`)")
    if path.exists() and isinstance(data, dict):
        data = _beside(data, path.parent)
    try:
        return from_dict(Recipe, data)
    except ConfigError as e:  # one line per problem, each named by file and key path
        raise ConfigError("\n".join(f"{where}: {line}" for line in str(e).splitlines())) from None


def _beside(data: dict, folder: Path) -> dict:
    """``data`` with the relative file paths of a recipe file joined to the file's ``folder``."""
    def fix(source: Any) -> Any:
        if isinstance(source, str) and not source.startswith(("builtin:", "hf:")):
            return _join_path(folder, source)
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            return {**source, "path": _join_path(folder, source["path"])}
        return source

    data = dict(data)
    if isinstance(data.get("data"), list):
        data["data"] = [fix(s) for s in data["data"]]
    ev = data.get("eval")
    if isinstance(ev, dict) and isinstance(ev.get("benchmarks"), list):
        data["eval"] = {**ev, "benchmarks": [{**b, "source": fix(b["source"])} if isinstance(b, dict) and "source" in b
                                             else b for b in ev["benchmarks"]]}
    lv = data.get("levels")
    if isinstance(lv, dict) and isinstance(lv.get("rules"), str) and lv["rules"].endswith((".yaml", ".yml")):
        data["levels"] = {**lv, "rules": _join_path(folder, lv["rules"])}
    return data


def _join_path(folder: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else folder.resolve() / p)


def builtin_recipes() -> list[str]:
    folder = resources.files("stagerl") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_recipe_text(name: str | None) -> str:
    """The YAML of built-in recipe ``name`` as shipped (comments included); with no name, the list."""
    if not name:
        return "built-in recipes: " + ", ".join(builtin_recipes()) + " (`stagerl recipe NAME` prints one)\n"
    path = resources.files("stagerl") / "recipes" / f"{name}.yaml"
    if "/" in name or not path.is_file():
        from ..valid import did_you_mean

        raise ConfigError(f"no built-in recipe {name!r}{did_you_mean(name, builtin_recipes())} "
                          f"(built-in: {', '.join(builtin_recipes())})")
    return path.read_text(encoding="utf-8")


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
