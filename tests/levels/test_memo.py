"""``decide`` and ``relevant_models`` remember their cases (levels/memo.py): the remembered answers must be
the computed ones for every problem, including problems with the same bounds but other ``retain`` draws,
and a caller that changes what it got must not change what the next caller gets."""

from __future__ import annotations

import random

import pytest

from stagerl.levels import memo
from stagerl.levels.rules import RulesError, bind, decide, load_rules, relevant_models

PAPER = ["small", "medium", "large", "strongest"]


def _paper():
    return bind(load_rules("paper"), {"policy": "small", **{m: m for m in PAPER}})


def _custom():
    return load_rules({"models": {"a": "a", "b": "b"}, "seed": 3, "keep": {"any": ["b in (0,1]", {"retain": 0.3}]},
                       "levels": {"X": {"all": ["a in (0,1)", {"retain": {"math": 0.5, "code": 0.2}}]},
                                  "Y": {"not": {"all": ["a in [0,0.5]", "b in [0.25,1]"]}}}})


def _bounds(rng, models, k=16):
    out = {}
    for m in models:
        if rng.random() < 0.2:
            continue  # not sampled yet: anywhere in [0, 1]
        n = rng.randint(0, k)
        s = rng.randint(0, n)
        out[m] = (s / k, (s + k - n) / k)
    return out


@pytest.mark.parametrize("make, models", [(_paper, PAPER), (_custom, ["a", "b"])])
def test_remembered_answers_are_the_computed_ones(make, models):
    rules = make()
    rng = random.Random(7)
    cases = [_bounds(rng, models) for _ in range(60)]
    hits = 0
    for round_ in range(3):  # the same bounds for 40 problems each: the retain draws must tell them apart
        for i, bounds in enumerate(cases):
            for pid in (f"p{j}" for j in range(i % 7, 40, 7)):
                domain = "code" if (i + round_) % 3 == 0 else "math"
                want_d = decide.uncached(rules, bounds, pid, domain)
                want_r = relevant_models.uncached(rules, bounds, pid, domain)
                assert decide(rules, bounds, pid, domain) == want_d, (bounds, pid, domain)
                assert relevant_models(rules, bounds, pid, domain) == want_r, (bounds, pid, domain)
                hits += 1
    table = rules.__dict__["_memo"]
    assert 0 < len(table["decide"]) < hits / 2  # most calls repeated a case, and each case was computed once


def test_a_changed_answer_does_not_change_the_next_one():
    rules = _paper()
    bounds = {"strongest": (1 / 16, 13 / 16)}
    first = decide(rules, bounds, "p1", "math")
    first["keep"] = "changed"
    assert decide(rules, bounds, "p1", "math")["keep"] is True
    need = relevant_models(rules, {}, "p1", "math")
    need.add("nobody")
    assert "nobody" not in relevant_models(rules, {}, "p1", "math")


def test_errors_are_raised_as_before_and_never_remembered():
    rules = _custom()
    with pytest.raises(RulesError, match="no fraction for domain 'proof'"):
        decide(rules, {"a": (0.5, 0.5)}, "p1", "proof")
    with pytest.raises(ValueError, match="problem 'p2': bounds of model 'a'"):
        decide(rules, {"a": (0.9, 0.1)}, "p2", "math")
    with pytest.raises(ValueError, match="problem 'p3': bounds of model 'a'"):  # the same case again: still raised
        decide(rules, {"a": (0.9, 0.1)}, "p3", "math")
    assert decide(rules, {"a": [0.5, 0.5], "b": (1, 1)}, "p4", "math") == decide.uncached(rules, {"a": (0.5, 0.5), "b": (1, 1)}, "p4", "math")


def test_a_full_table_starts_over(monkeypatch):
    monkeypatch.setattr(memo, "MAX_ENTRIES", 5)
    rules = _paper()
    for s in range(12):
        decide(rules, {"strongest": (s / 16, s / 16)}, "p1", "math")
    assert 0 < len(rules.__dict__["_memo"]["decide"]) <= 5
    assert decide(rules, {"strongest": (0.0, 0.0)}, "p1", "math") == decide.uncached(rules, {"strongest": (0.0, 0.0)}, "p1", "math")
