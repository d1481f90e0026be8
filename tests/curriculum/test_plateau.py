"""The plateau rule, table-driven: smoothing windows, patience, and the min_delta boundary."""

import math

import pytest

from stagerl.config import PlateauConfig
from stagerl.curriculum import PlateauTracker, plateau_reached, smooth


def cfg(window: int = 1, patience: int = 1, min_delta: float = 0.0) -> PlateauConfig:
    return PlateauConfig(window=window, patience=patience, min_delta=min_delta)


@pytest.mark.parametrize("values,c,expected", [
    ([0.1 * i for i in range(30)], cfg(1, 1, 0.05), False),            # rising by more than min_delta: never
    ([0.1 * i for i in range(30)], cfg(5, 1, 0.05), False),            # same, smoothed
    ([0.5] * 6, cfg(2, 2, 0.01), True),                                # flat: window * (patience + 1) steps
    ([0.5] * 5, cfg(2, 2, 0.01), False),                               # ... not one step earlier
    ([0.5, 0.75], cfg(1, 1, 0.25), False),                             # improvement of exactly min_delta counts
    ([0.5, 0.74], cfg(1, 1, 0.25), True),                              # just under min_delta does not
    ([0.2, 0.5, 0.505], cfg(1, 1, 0.005), False),                      # exactly 0.005 above (float rounding)
    ([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], cfg(2, 2, 0.01), True),           # noise around a flat mean
    ([0.0, 1.0, 0.0, 1.5, 0.0, 2.0], cfg(1, 2, 0.01), False),          # dips between new highs do not stop it
    ([1.0, 0.0, 0.0], cfg(1, 2, 0.0), True),                           # falling after the best
    ([1.0, 0.0, 1.0], cfg(1, 2, 0.0), False),                          # back to the best resets (min_delta 0)
    ([0.0, 0.06, 0.12], cfg(1, 2, 0.1), False),                        # slow gains add up against the reference
    ([0.0, 0.06, 0.09], cfg(1, 2, 0.1), True),
    ([], cfg(1, 1, 0.0), False),
    ([0.3], cfg(1, 1, 0.0), False),                                    # the first window only sets the best
])
def test_plateau_table(values, c, expected):
    assert plateau_reached(values, c) is expected


def test_windows_are_complete_and_non_overlapping():
    assert smooth([1, 2, 3, 4, 5], 2) == [1.5, 3.5]
    assert smooth([1, math.nan, 3, 4], 2) == [1.0, 3.5]


def test_tracker_reports_the_step_and_best():
    t = PlateauTracker(cfg(2, 1, 0.1))
    steps = [t.update(v) for v in [0.1, 0.3, 0.6, 0.6, 0.6, 0.6]]
    assert steps == [False, False, False, False, False, True]
    assert t.plateau_step == 6 and t.best == pytest.approx(0.6)


def test_nan_steps_neither_improve_nor_count():
    assert not plateau_reached([0.5, math.nan, math.nan], cfg(1, 1, 0.0))


@pytest.mark.parametrize("bad, key", [((0, 1), "window"), ((1, 0), "patience"), ((1, 1, -0.1), "min_delta")])
def test_invalid_config_is_an_error(bad, key):
    with pytest.raises(ValueError, match=f"^{key}: must be >= "):  # the config class refuses it (issue 9)
        cfg(*bad)
