"""The two readings of L3's "what the 32B solves": ``paper`` (>= 1 success), ``paper-strict`` (k/k)."""

from __future__ import annotations

import pandas as pd
import pytest

from stagerl.levels import build_levels, label, load_rules, presets, retained

S, M, L, R = "r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-qwen-32b", "deepseek-r1"
K = 16
IDS = [f"q{i}" for i in range(400)]


def _l3(rules, large: float, pid: str, domain: str = "math") -> bool:
    return label(rules, {S: 0.0, M: 0.5, L: large, R: 1.0}, pid, domain)["L3"]


def test_both_readings_are_presets_and_agree_outside_l3():
    assert {"paper", "paper-strict"} <= set(presets())
    paper, strict = load_rules("paper"), load_rules("paper-strict")
    assert paper.models == strict.models and paper.keep == strict.keep
    assert paper.levels["L1"] == strict.levels["L1"] and paper.levels["L2"] == strict.levels["L2"]


@pytest.mark.parametrize("domain, frac", [("math", 0.5), ("code", 0.1)])
def test_l3_at_the_boundaries(domain, frac):
    paper, strict = load_rules("paper"), load_rules("paper-strict")
    share = {}
    for name, rules in (("paper", paper), ("strict", strict)):
        for large in (0.0, 1 / K, 15 / K, 1.0):
            share[name, large] = sum(_l3(rules, large, pid, domain) for pid in IDS) / len(IDS)
    # paper: 0/16 always in; 1/16 .. 16/16 ("solves" = >= 1 success) at the retain fraction
    assert share["paper", 0.0] == 1.0
    for large in (1 / K, 15 / K, 1.0):
        assert abs(share["paper", large] - frac) < 0.06
    # strict: 0/16 .. 15/16 ("fails" = any failure) always in; only 16/16 at the retain fraction
    for large in (0.0, 1 / K, 15 / K):
        assert share["strict", large] == 1.0
    assert abs(share["strict", 1.0] - frac) < 0.06
    # the retained draw is the same problems under both readings
    kept = [pid for pid in IDS if _l3(paper, 1.0, pid, domain)]
    assert kept == [pid for pid in IDS if _l3(strict, 1.0, pid, domain)]


def test_boundary_table_levels_under_each_reading():
    rows = []
    for pid, large in (("never", 0.0), ("once", 1 / K), ("almost", 15 / K), ("always", 1.0)):
        for model, rate in ((S, 0.0), (M, 0.5), (L, large), (R, 1.0)):
            rows.append((pid, "math", model, rate))
    table = pd.DataFrame(rows, columns=["problem_id", "domain", "model", "pass_rate"])
    pick = {name: set(build_levels(table, load_rules(name))["L3"]["problem_id"]) for name in ("paper", "paper-strict")}
    kept = {pid for pid in ("once", "almost", "always") if retained(0, "L3", pid, 0.5)}
    assert pick["paper"] == {"never"} | kept
    assert pick["paper-strict"] == {"never", "once", "almost"} | (kept & {"always"})
