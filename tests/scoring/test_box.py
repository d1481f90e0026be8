"""The exact rule decides verdicts exactly over the box (levels/box.py), not only atom by atom: the
paper's L3 ("32B never solves it, or it solves it and the problem is retained") holds for a retained
problem whatever the 32B does, so the 32B is not sampled there; labels stay the k-sample labels."""

from __future__ import annotations

import itertools
import random

from stagerl.levels.rules import bind, decide, label, load_rules, retained
from stagerl.scoring import needs_samples
from stagerl.scoring.simulate import published_pool, simulate

PAPER = ["small", "medium", "large", "strongest"]


def _paper():
    return bind(load_rules("paper"), {"policy": "small", **{m: m for m in PAPER}})


def _retained(rules, pid, domain="math"):
    return retained(rules.seed, "L3", pid, {"math": 0.5, "code": 0.1}[domain])


def test_the_retained_half_needs_no_32b_and_the_rest_does():
    rules = _paper()
    ids = [f"p{i}" for i in range(200)]
    kept = {pid: _retained(rules, pid) for pid in ids}
    assert 60 < sum(kept.values()) < 140
    for pid in ids:
        stats = {"strongest": (1, 4)}  # keep is decided; L3 turns on the 32B only outside the retained share
        assert ("large" in needs_samples(rules, stats, PAPER[::-1], 16, pid, "math")) == (not kept[pid])
        assert decide(rules, {"strongest": (1 / 16, 13 / 16)}, pid, "math")["L3"] is (True if kept[pid] else None)
        # weakest-first, R1 not sampled yet (keep open): L3 of a retained problem is keep alone, no 32B in it
        weakest = {"small": (0, 16), "medium": (16, 16)}
        assert ("large" in needs_samples(rules, weakest, PAPER, 16, pid, "math")) == (not kept[pid])


def test_decided_verdicts_hold_on_every_grid_rate_and_open_ones_differ_somewhere():
    """Sound and (on the k-sample grid, for the paper's rules) complete: a decided verdict is the
    label at every combination of rates j/16 inside the bounds; an open one has two that differ."""
    rules, rng, k = _paper(), random.Random(0), 8
    for n in range(150):
        pid, bounds = f"q{n}", {}
        for m in PAPER:
            if rng.random() < 0.8:
                lo = rng.randint(0, k)
                bounds[m] = (lo / k, rng.randint(lo, k) / k)
        verdicts = decide(rules, bounds, pid, "math")
        grids = [[j / k for j in range(k + 1) if bounds.get(m, (0, 1))[0] <= j / k <= bounds.get(m, (0, 1))[1]]
                 for m in PAPER]
        seen = {}
        for rates in itertools.product(*grids):
            for name, v in label(rules, dict(zip(PAPER, rates)), pid, "math").items():
                seen.setdefault(name, set()).add(v)
        for name, v in verdicts.items():
            assert (seen[name] == {v}) if v is not None else len(seen[name]) == 2, (pid, bounds, name, v, seen[name])


def test_the_exact_rule_keeps_the_k_sample_labels_and_draws_less_of_the_32b():
    pool = published_pool({"small": "sws-3b", "medium": "sws-7b", "large": "sws-32b", "strongest": "sws-32b"},
                          300, seed=1)
    res = simulate(_paper(), pool, 16, order=PAPER[::-1], seed=2)
    assert res.same == res.problems
    # about half the problems are retained (no 32B samples); the 32B draws well under half of R1's
    assert res.per_model["large"] < 0.6 * res.per_model["strongest"]
