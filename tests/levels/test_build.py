"""Leveled datasets from pass-rate tables (long, wide, adaptive bounds), stats, HF export."""

import json

import datasets
import pandas as pd
import pytest

from stagerl.data import Problem
from stagerl.levels import (RulesError, build_levels, load_rules, read_level, read_table, write_levels,
                            write_stats, export_dataset)

RULES = {"models": {"weak": "w", "strong": "s"}, "keep": "strong in (0,1]",
         "levels": {"L1": "weak in (0,1)", "L2": {"all": ["weak in [0,0]", "strong in (0,1]"]}}}


@pytest.fixture
def problems():
    return [Problem("a", "math", "1+1?", answer="2"), Problem("b", "math", "2+2?", answer="4", meta={"level": 2}),
            Problem("c", "code", "echo", tests={"inputs": ["x\n"], "outputs": ["x\n"]}), Problem("d", "math", "?", answer="0")]


@pytest.fixture
def table():
    rows = [("a", "math", "w", 0.5), ("a", "math", "s", 1.0), ("b", "math", "w", 0.0), ("b", "math", "s", 0.25),
            ("c", "code", "w", 0.25), ("c", "code", "s", 0.75), ("d", "math", "w", 0.0), ("d", "math", "s", 0.0)]
    return pd.DataFrame(rows, columns=["problem_id", "domain", "model", "pass_rate"])


def test_levels_from_a_long_table_round_trip(tmp_path, problems, table):
    levels = build_levels(table, load_rules(RULES), problems)
    assert list(levels["L1"]["id"]) == ["a", "c"] and list(levels["L2"]["id"]) == ["b"]
    assert levels["L1"]["rate_w"].tolist() == [0.5, 0.25]
    write_levels(levels, tmp_path)
    back = read_level(tmp_path / "L1.parquet")
    assert [p.to_dict() for p in back] == [problems[0].to_dict(), problems[2].to_dict()]  # tests/meta survive
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "L1.parquet"), split="train")
    assert ds.num_rows == 2 and json.loads(ds[1]["tests"]) == problems[2].tests


def test_adaptive_bounds_decide_labels(problems, table):
    t = table.copy()
    t["rate_lo"], t["rate_hi"] = t["pass_rate"], t["pass_rate"]
    # 'a' weak stopped early after 1 success + 1 failure of k=8: bounds [1/8, 7/8], estimate 0.5
    t.loc[(t.problem_id == "a") & (t.model == "w"), ["rate_lo", "rate_hi"]] = (1 / 8, 7 / 8)
    assert list(build_levels(t, load_rules(RULES))["L1"]["problem_id"]) == ["a", "c"]
    t.loc[(t.problem_id == "a") & (t.model == "w"), ["rate_lo", "rate_hi"]] = (0.0, 7 / 8)  # not decided
    with pytest.raises(RulesError, match="problem 'a'"):
        build_levels(t, load_rules(RULES))


def test_wide_table_and_missing_model(tmp_path, table):
    wide = table.pivot(index=["problem_id", "domain"], columns="model", values="pass_rate").reset_index()
    wide.columns = [c if c in ("problem_id", "domain") else f"{c}_pass_rate" for c in wide.columns]
    wide.to_csv(tmp_path / "t.csv", index=False)
    long = read_table(tmp_path / "t.csv")
    assert set(long["model"]) == {"w", "s"}
    assert list(build_levels(long, load_rules(RULES))["L2"]["problem_id"]) == ["b"]
    with pytest.raises(RulesError, match=r"no settled rate for model\(s\) \['s'\]"):
        build_levels(table[table.model == "w"], load_rules(RULES))
    skipped = build_levels(table[table.model == "w"], load_rules({**RULES, "keep": None}), on_missing="skip")
    assert list(skipped["L1"]["problem_id"]) == ["a", "c"]
    bad = wide.assign(w_pass_rate=2.0)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RulesError, match=r"bad.csv: .*column 'w_pass_rate', row 0 \(problem 'a'\): 2.0 is not a pass rate"):
        read_table(tmp_path / "bad.csv")


def test_stats_and_export(tmp_path, problems, table):
    rules = load_rules(RULES)
    levels = build_levels(table, rules, problems)
    paths = write_stats(levels, table, rules, tmp_path / "levels")
    stats = json.loads((tmp_path / "levels" / "stats.json").read_text())
    assert stats["levels"]["L1"] == {"total": 2, "math": 1, "code": 1} and stats["in_no_level"] == 1
    assert stats["overlaps"] == {"L1&L2": 0}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths) and any(p.suffix == ".png" for p in paths)
    out = export_dataset(levels, rules, tmp_path / "export", {"k": 8, "reference_models": ["w", "s"]})
    card = (out / "README.md").read_text()
    assert "config_name: L1" in card and "| L1 | 2 |" in card and "strong in (0,1]" in card
    ds = datasets.load_dataset(str(out), "L2", split="train")
    assert ds["id"] == ["b"]
