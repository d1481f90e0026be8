"""The plateau rule that ends a training stage.

The watched metric (TRL's mean reward by default) is smoothed over non-overlapping windows of
``window`` steps. The first complete window sets the best score; every later window either
improves on the best by at least ``min_delta`` (the best moves there and the count resets) or
counts as one window without improvement. After ``patience`` consecutive windows without
improvement the stage has plateaued. Higher is better. Only complete windows count, so a stage
never stops before ``window * (patience + 1)`` steps.

As in Keras' ``EarlyStopping``, the reference point only moves on a counted improvement, so a curve
that rises slowly (less than ``min_delta`` per window) still counts once its gains add up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import PlateauConfig

_EPS = 1e-12  # an improvement of exactly min_delta counts, despite float rounding


def _check(cfg: PlateauConfig) -> None:
    if cfg.window < 1:
        raise ValueError(f"plateau.window must be >= 1, got {cfg.window}")
    if cfg.patience < 1:
        raise ValueError(f"plateau.patience must be >= 1, got {cfg.patience}")
    if cfg.min_delta < 0:
        raise ValueError(f"plateau.min_delta must be >= 0, got {cfg.min_delta}")


def smooth(values: list[float], window: int) -> list[float]:
    """Means of the complete non-overlapping windows of ``values`` (NaN values are skipped)."""
    out = []
    for start in range(0, len(values) - window + 1, window):
        chunk = [v for v in values[start:start + window] if not math.isnan(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


@dataclass
class PlateauTracker:
    """Feed one metric value per step with :meth:`update`; it says when the plateau is reached."""

    cfg: PlateauConfig
    values: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    """One point per complete window."""
    best: float = -math.inf
    """Best smoothed score seen (the true maximum, for reports)."""
    reference: float = -math.inf
    """Smoothed score of the last counted improvement (what ``min_delta`` is measured against)."""
    stale: int = 0
    """Consecutive windows without improvement."""
    plateau_step: int | None = None
    """Number of values seen when the plateau was declared (``None`` until then)."""

    def __post_init__(self) -> None:
        _check(self.cfg)

    @property
    def reached(self) -> bool:
        """True once the plateau has been declared (it stays declared)."""
        return self.plateau_step is not None

    def update(self, value: float) -> bool:
        """Record one step's metric value; return True if the plateau is reached now or before."""
        self.values.append(float(value))
        if len(self.values) % self.cfg.window == 0:
            chunk = [v for v in self.values[-self.cfg.window:] if not math.isnan(v)]
            if chunk:  # a window with no valid value neither improves nor counts
                self._window(sum(chunk) / len(chunk))
        return self.reached

    def _window(self, w: float) -> None:
        self.smoothed.append(w)
        self.best = max(self.best, w)
        if len(self.smoothed) == 1 or w - self.reference >= self.cfg.min_delta - _EPS:
            self.reference, self.stale = w, 0
        else:
            self.stale += 1
        if self.stale >= self.cfg.patience and self.plateau_step is None:
            self.plateau_step = len(self.values)


def plateau_reached(values: list[float], cfg: PlateauConfig) -> bool:
    """Whether the curve ``values`` (one metric value per step) has plateaued under ``cfg``."""
    tracker = PlateauTracker(cfg)
    for v in values:
        if tracker.update(v):
            return True
    return False
