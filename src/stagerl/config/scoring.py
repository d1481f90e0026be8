"""The ``scoring.stop`` section: which rule stops a (problem, model) pair early (see
``stagerl.scoring.adaptive`` for the exact rule, ``stagerl.scoring.bayes_stop`` for the statistical one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..valid import _at_least, _need

STOP_RULES = ("exact", "bayes", "joint")


@dataclass
class PriorConfig:
    """The statistical rule's prior on a pair's pass rate p: ``P(p = 0) = zero``, ``P(p = 1) = one``,
    else ``Beta(a, b)``. The defaults are fitted (``bayes_stop.fit_prior``) to a published pass-rate
    histogram, SwS-7B's (``stagerl.scoring.simulate.PUBLISHED``); fit your own ladder's with
    ``fit_prior`` on a scored sample of your problems."""

    a: float = 0.3778
    b: float = 0.4848
    zero: float = 0.0
    one: float = 0.14

    def __post_init__(self) -> None:
        _at_least(self, 1e-6, "a", "b")
        _at_least(self, 0.0, "zero", "one")
        _need(self.zero + self.one < 1, "zero", f"zero + one must be < 1, got {self.zero} + {self.one}")


@dataclass
class StopConfig:
    """When adaptive scoring stops a pair. ``exact`` (default): once no label can change, whatever
    the samples not drawn turn out to be (labels identical to all k samples). ``bayes``: once the
    chance that the problem's labels differ from the k-sample labels is at most ``error``, under
    ``prior`` (``stagerl.scoring.bayes_stop``). ``joint``: the same, under a prior across the ladder
    fitted to a ``calibration`` share of the run's own problems, scored first with the exact rule
    (``stagerl.scoring.joint_stop``)."""

    rule: str = "exact"
    error: float = 0.01
    """The statistical rule's budget per problem: the chance its labels differ from all k samples'."""
    prior: PriorConfig = field(default_factory=PriorConfig)
    """The ``bayes`` rule's prior on one pair's pass rate (each model alike, independent)."""
    calibration: float = 0.1
    """``joint``: the share of problems (a seeded hash of the id) scored first with the exact rule and fitted."""
    classes: int = 12
    """``joint``: latent classes of the joint prior (each a pass rate per model)."""
    draws: int = 8
    """``joint``: Bayesian-bootstrap fits whose predictives are averaged (the fit's uncertainty); 1: one fit."""
    seed: int = 0
    """``joint``: seed of the calibration draw and of the bootstrap weights."""

    def __post_init__(self) -> None:
        _need(self.rule in STOP_RULES, "rule", f"must be one of {', '.join(STOP_RULES)}, got {self.rule!r}")
        _need(isinstance(self.error, (int, float)) and not isinstance(self.error, bool) and 0 <= self.error < 1,
              "error", f"must be a probability in [0, 1), got {self.error!r}")
        _need(isinstance(self.calibration, (int, float)) and not isinstance(self.calibration, bool)
              and 0 < self.calibration <= 1, "calibration", f"must be a share in (0, 1], got {self.calibration!r}")
        _at_least(self, 1, "classes", "draws")
