"""Exported rates of pairs that stopped early carry their sample count and k-sample bounds."""

from __future__ import annotations

import datasets

from stagerl.data import Problem
from stagerl.levels import build_levels, export_dataset, load_rules
from stagerl.scoring import pass_rate_table
from stagerl.store import SampleStore

RULES = {"models": {"weak": "w", "strong": "s"}, "keep": "strong in (0,1]",
         "levels": {"L1": "weak in (0,1)", "L2": {"all": ["weak in [0,0]", "strong in (0,1]"]}}}


def _row(pid, model, idx, reward):
    return {"problem_id": pid, "model": model, "idx": idx, "domain": "math", "text": "t", "tokens": 3,
            "finish": "stop", "reward": reward}


def test_levels_and_export_show_samples_and_bounds_beside_each_rate(tmp_path):
    store = SampleStore(tmp_path / "samples.sqlite")
    store.register_problems([("a", "math"), ("b", "math")])
    store.set_meta("scoring", {"k": 8, "models": ["w", "s"]})
    rows = [_row("a", "w", 0, 1.0), _row("a", "w", 1, 0.0)]  # a/w stopped after 2 of 8: in (0,1) already
    rows += [_row("a", "s", 0, 1.0)]  # a/s: one success settles keep
    rows += [_row("b", "w", i, 0.0) for i in range(8)] + [_row("b", "s", 0, 0.0), _row("b", "s", 1, 1.0)]
    store.add(rows)
    problems = [Problem("a", "math", "1+1?", answer="2"), Problem("b", "math", "2+2?", answer="4")]
    levels = build_levels(pass_rate_table(store), load_rules(RULES), problems)
    l1 = levels["L1"].set_index("id")
    assert l1.loc["a", ["rate_w", "samples_w", "rate_lo_w", "rate_hi_w"]].tolist() == [0.5, 2, 1 / 8, 7 / 8]
    assert l1.loc["a", ["rate_s", "samples_s", "rate_lo_s", "rate_hi_s"]].tolist() == [1.0, 1, 1 / 8, 1.0]
    l2 = levels["L2"].set_index("id")
    assert l2.loc["b", ["rate_w", "samples_w", "rate_lo_w", "rate_hi_w"]].tolist() == [0.0, 8, 0.0, 0.0]

    out = export_dataset(levels, load_rules(RULES), tmp_path / "export", {"k": 8, "reference_models": ["w", "s"]})
    card = (out / "README.md").read_text()
    assert "3 exported (problem, model) rates are over fewer than k = 8 samples" in card
    assert "`samples_<model>`" in card and "`rate_lo_<model>`" in card
    ds = datasets.load_dataset(str(out), "L1", split="train")
    assert ds["samples_w"] == [2] and ds["rate_hi_w"] == [7 / 8]
