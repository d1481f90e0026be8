"""scripts/scale_scoring.py: the adaptive-scoring simulation behind docs/scale.md §3, on a small slice."""

from __future__ import annotations

import pytest

from repo_files import load  # tests/ is on the path: conftest.py


@pytest.fixture(scope="module")
def sim():
    return load("scripts/scale_scoring.py")


def test_fitted_offsets_hit_the_published_pass_rates(sim):
    ds = [(-1) ** i * (i % 7) * 0.5 for i in range(200)]
    a = sim.fit_offset(0.839, ds)
    assert sum(sim.sigmoid(a - d) for d in ds) / len(ds) == pytest.approx(0.839, abs=1e-6)


def test_round_size_k_draws_all_or_nothing(sim):
    share = sim.simulate("strongest-first", k=16, round_size=16, spread=2.5, scale=0.01, seed=1)
    assert all(0 <= s <= 1 for s in share.values())
    # every pair draws 0 or 16 samples, and the strongest model is always needed (the keep rule)
    assert share["deepseek-r1"] == 1.0


def test_strong_models_stop_at_the_round_floor_and_weakest_first_skips_the_7b(sim):
    strongest = sim.simulate("strongest-first", k=16, round_size=4, spread=2.5, scale=0.03, seed=0)
    weakest = sim.simulate("weakest-first", k=16, round_size=4, spread=2.5, scale=0.03, seed=0)
    for share in (strongest, weakest):
        assert 0.25 <= share["deepseek-r1"] < 0.35 and share["r1-distill-qwen-1.5b"] > 0.5
        # the 32B decides only L3, and only where the problem is outside L3's retained share (about
        # half the math problems): the retained ones draw none of its samples (levels/box.py)
        assert 0.1 <= share["r1-distill-qwen-32b"] < 0.2
    assert weakest["r1-distill-qwen-7b"] < strongest["r1-distill-qwen-7b"] - 0.2
