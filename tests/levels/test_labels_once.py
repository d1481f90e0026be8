"""Levels are labelled once; the stats reuse that labelling."""

from __future__ import annotations

import pandas as pd

from stagerl.data import Problem
from stagerl.levels import build_levels, level_stats, load_rules

RULES = {"models": {"weak": "w", "strong": "s"}, "keep": "strong in (0,1]",
         "levels": {"L1": "weak in (0,1)", "L2": {"all": ["weak in [0,0]", "strong in (0,1]"]}}}


def test_stats_reuse_the_labelling_levels_were_cut_from():
    # a table without domains: only the problems know them. 'd' is dropped by keep and in no level,
    # so labelling again from the level files alone cannot tell its domain
    rows = [("a", "w", 0.5), ("a", "s", 1.0), ("b", "w", 0.0), ("b", "s", 0.25), ("d", "w", 0.0), ("d", "s", 0.0)]
    table = pd.DataFrame(rows, columns=["problem_id", "model", "pass_rate"])
    problems = [Problem("a", "math", "1+1?", answer="2"), Problem("b", "math", "2+2?", answer="4"),
                Problem("d", "code", "echo", tests={"inputs": ["x\n"], "outputs": ["x\n"]})]
    rules = load_rules(RULES)
    levels = build_levels(table, rules, problems)
    assert levels.labels is not None and list(levels.labels["problem_id"]) == ["a", "b", "d"]
    stats = level_stats(levels, table, rules)
    assert stats["dropped"] == 1 and stats["skipped"] == 0 and stats["domains"] == {"math": 2, "code": 1}
    assert stats["levels"]["L1"] == {"total": 1, "math": 1} and stats["in_no_level"] == 1
    # a plain dict of levels (no labelling attached) is labelled from its own frames
    assert level_stats(dict(levels), table, rules)["dropped"] is None
