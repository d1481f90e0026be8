"""The online-difficulty part of a stage's recipe: ``StageConfig.online`` and ``StageConfig.relevel``.

Both are off (``None``) by default: the paper's behaviour, levels fixed once from the initial
models. Kept beside ``config.py`` (which imports them) so that file stays short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args, get_type_hints


def _error(message: str) -> Exception:
    from ..valid import ConfigError

    return ConfigError(message)


@dataclass
class OnlineConfig:
    """Online filtering inside a stage (``train/online.py``); absent = TRL's plain GRPO (the paper)."""

    dynamic_sampling: bool = True
    """Drop groups whose rewards are all equal (no GRPO signal) and refill their slots with fresh
    prompts of the same domain from the stage's pool, so the math:code mix of the batch is kept."""
    max_extra_rounds: int = 3
    """Most extra generation rounds per step; slots still empty after them keep a zero-signal group."""
    predictive_skip: bool = False
    """Skip prompts whose estimated pass rate makes an all-equal group very likely (not generated)."""
    skip_threshold: float = 0.7
    """Skip a prompt when its predicted probability of an all-equal group exceeds this."""
    skip_per_sample: float | None = None
    """Scale the threshold with the group size G: skip when that probability exceeds ``skip_per_sample ** G``
    (it replaces ``skip_threshold``). A group of G is all-equal less often as G grows, so one fixed
    threshold skips nearly nothing at G = 16; 0.75 (0.32 at G = 4, 0.10 at 8, 0.01 at 16) was at or near
    the best threshold at G = 4, 8 and 16 in docs/benchmarks.md's simulations."""
    explore: float = 0.1
    """Probability that a prompt due to be skipped is generated anyway, so none is skipped for ever."""
    explore_refills: bool = False
    """Also draw ``explore`` for each problem a refill scans past (off: only a slot's own prompt draws, so
    the held-out check costs at most ``explore`` × the batch's slots; a refill scan that passes many
    skipped problems would otherwise let one through every ~1/explore of them)."""
    prior: float = 0.5
    """Beta(prior, prior) prior of each problem's pass rate (0.5: Jeffreys)."""
    decay: float = 0.9
    """Weight kept by older evidence at each new group of a problem (1 = never forget; < 1 follows
    the policy as it learns)."""
    seed_decay: float = 0.9
    """Seeding from the run's stored samples of the policy (scoring, re-levelling; ``train/online_prior.py``):
    n samples measured L training steps ago count as n * seed_decay**L observations (0 = no seeding)."""
    seed_drift: bool = False
    """Move the seeds along the policy: each group of a seeded problem is compared with what its seeds
    said, one logit shift is fitted to all of them (recent groups weighted by ``seed_decay`` per step),
    and every seed's mean moves by it (``train/online_prior.py``: ``fit_drift``). Off: seeds only fade."""
    seed_sharpen: bool = False
    """With ``seed_drift``: also fit how much surer the policy grew (a slope on the seeds' logits, 1 = none),
    so that partly solved seeds move towards 0 or 1 as GRPO sharpens the policy (``fit_drift``)."""
    pooled_prior: bool = False
    """Each problem's prior is the pool's distribution of pass rates fitted to the seeds (empirical Bayes,
    ``train/online_prior.py``: ``pool_grid``) instead of Beta(prior, prior); without seeds it is Jeffreys'."""
    seed: int = 0
    """Seed of refill order and exploration draws."""

    def threshold(self, G: int) -> float:
        """The skip threshold for groups of ``G``: ``skip_per_sample ** G`` when set, else ``skip_threshold``."""
        return self.skip_threshold if self.skip_per_sample is None else self.skip_per_sample ** G

    def __post_init__(self) -> None:
        if self.max_extra_rounds < 0:
            raise _error(f"online.max_extra_rounds must be >= 0, got {self.max_extra_rounds}")
        for name in ("skip_threshold", "explore"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise _error(f"online.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.skip_per_sample is not None and not 0.0 < self.skip_per_sample < 1.0:
            raise _error(f"online.skip_per_sample must be in (0, 1) or null, got {self.skip_per_sample}")
        if self.prior <= 0 or not 0.0 < self.decay <= 1.0:
            raise _error(f"online.prior must be > 0 and online.decay in (0, 1], got {self.prior}, {self.decay}")
        if not 0.0 <= self.seed_decay <= 1.0:
            raise _error(f"online.seed_decay must be in [0, 1], got {self.seed_decay}")
        if self.seed_sharpen and not self.seed_drift:
            raise _error("online.seed_sharpen needs online.seed_drift: true (the slope is fitted with the shift)")
        if not (self.dynamic_sampling or self.predictive_skip):
            raise _error("online: enable dynamic_sampling or predictive_skip (or remove the online section)")


def online_field(name: str, text: str) -> Any:
    """``text`` (a script's ``key=value`` override) as the type of ``OnlineConfig.<name>`` (an optional field's
    type when set, ``float | None`` -> float); a bool as 0 or 1."""
    hint = get_type_hints(OnlineConfig)[name]
    kind = next((t for t in get_args(hint) if t is not type(None)), hint)
    return bool(int(text)) if kind is bool else kind(text)


@dataclass
class RelevelConfig:
    """Re-levelling before a stage (``curriculum/relevel.py``): its candidates are scored again with
    the current policy and only those whose pass rate lies in ``band`` are trained on."""

    band: str = "(0,1)"
    """Pass-rate interval of the current policy to keep, in the level-rule syntax (``(0,1)``: the
    policy neither always fails nor always succeeds)."""
    levels: list[str] = field(default_factory=list)
    """Candidate levels; empty = the stage's own ``levels``."""
    k: int = 8
    """Samples per problem at most (adaptive: a problem stops once its band verdict is settled)."""
    round_size: int = 2
    """Samples per problem per adaptive round."""
    top_p: float = 1.0
    """Nucleus threshold while re-scoring (temperature and max tokens are the stage's own)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options of the ``transformers`` engine that samples the policy (e.g. ``{batch_size: 32}``)."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.round_size < 1:
            raise _error(f"relevel.k and relevel.round_size must be >= 1, got {self.k}, {self.round_size}")
        from ..levels.rules import RulesError, parse_interval

        try:
            parse_interval(self.band, "relevel.band")
        except RulesError as e:
            raise _error(str(e)) from None
