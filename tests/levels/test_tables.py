"""Pass-rate tables from elsewhere (wide, no domains, NaN), problems as a DataFrame, stable
retention as problems are added, empty levels, and the export's default config."""

import json

import datasets
import numpy as np
import pandas as pd
import pytest

from stagerl.data import Problem
from stagerl.levels import (RulesError, build_levels, export_dataset, level_stats, load_rules, read_level, to_long,
                            write_levels)

RULES = {"models": {"weak": "r1_1.5b", "strong": "r1_7b"}, "keep": "strong in (0,1]",
         "levels": {"L1": "weak in (0,1)", "L2": {"all": ["weak in [0,0]", "strong in (0,1]"]},
                    "L3": {"retain": {"math": 0.5, "code": 0.1}}}}
WIDE = pd.DataFrame({"problem_id": ["a", "b", "c"], "domain": ["math", "math", "code"],
                     "r1_1.5b": [0.5, 0.0, np.nan], "r1_7b": [1.0, 0.25, 0.0], "samples": [8, 8, 8]})


def test_wide_columns_auto_and_explicit():
    long = to_long(WIDE)  # plain numeric columns are models; 'samples' is not; NaN is unknown
    assert sorted(set(long["model"])) == ["r1_1.5b", "r1_7b"] and len(long) == 5
    assert not ((long.problem_id == "c") & (long.model == "r1_1.5b")).any()
    suffixed = WIDE.rename(columns={"r1_1.5b": "pass_rate_r1_1.5b", "r1_7b": "r1_7b_pass_rate"}).assign(level=3)
    assert sorted(set(to_long(suffixed)["model"])) == ["r1_1.5b", "r1_7b"]  # marked columns win over 'level'
    explicit = to_long(WIDE.rename(columns={"problem_id": "id"}), {"weak": "r1_1.5b"})
    assert set(explicit["model"]) == {"weak"} and list(explicit["problem_id"]) == ["a", "b"]
    with pytest.raises(RulesError, match=r"column 'r1_3b' \(model 'x'\) not found"):
        to_long(WIDE, {"x": "r1_3b"})
    with pytest.raises(RulesError, match="no id column"):
        to_long(WIDE.drop(columns="problem_id"))
    with pytest.raises(RulesError, match=r"column 'level', row 0 \(problem 'a'\): 3 is not a pass rate"):
        to_long(WIDE.assign(level=3))
    labels = build_levels(to_long(WIDE), load_rules(RULES), on_missing="skip")
    assert list(labels["L2"]["problem_id"]) == ["b"] and labels["L1"].attrs["skipped"] == []  # c: keep is False


def test_long_table_checks():
    long = to_long(WIDE)
    with pytest.raises(RulesError, match="problem 'a' has 2 rows for model 'r1_7b'"):
        to_long(pd.concat([long, long[(long.problem_id == "a") & (long.model == "r1_7b")]]))
    with pytest.raises(RulesError, match=r"column 'pass_rate', row 1 \(problem 'b'\): -0.5 is not a pass rate"):
        to_long(long.assign(pass_rate=[0.5, -0.5, 0, 0, 0]))
    two = long.copy()
    two.loc[0, "domain"] = "code"
    with pytest.raises(RulesError, match="problem 'a' has two domains"):
        build_levels(two, load_rules(RULES))


def test_domains_come_from_the_problems():
    no_domain = WIDE.drop(columns="domain")
    with pytest.raises(RulesError, match="problem 'a': no domain"):
        build_levels(no_domain, load_rules(RULES))
    problems = [Problem("a", "math", "x?", answer="1"), Problem("b", "math", "y?", answer="2"),
                Problem("c", "code", "z", tests={"inputs": ["1"], "outputs": ["1"]})]
    levels = build_levels(no_domain, load_rules(RULES), problems, on_missing="skip")
    assert list(levels["L1"]["id"]) == ["a"] and list(levels["L1"]["domain"]) == ["math"]
    as_frame = pd.DataFrame([p.to_dict() for p in problems])
    assert build_levels(no_domain, load_rules(RULES), as_frame, on_missing="skip")["L2"].equals(levels["L2"])
    with pytest.raises(RulesError, match="the pass-rate table says domain 'math', the problems say 'code'"):
        build_levels(WIDE, load_rules(RULES), [Problem("a", "code", "x", tests={"inputs": ["1"], "outputs": ["1"]}),
                                               *problems[1:]])
    with pytest.raises(RulesError, match="problems, row 0 .id 'a'.: field 'answer'"):
        build_levels(WIDE, load_rules(RULES), as_frame.assign(answer=None))


def test_retention_is_stable_as_problems_are_added():
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(3000)]
    table = pd.DataFrame({"problem_id": ids, "domain": rng.choice(["math", "code"], len(ids)),
                          "r1_1.5b": rng.integers(0, 5, len(ids)) / 4, "r1_7b": rng.integers(1, 5, len(ids)) / 4})
    rules = load_rules(RULES)
    full = set(build_levels(table, rules)["L3"]["problem_id"])
    part = set(build_levels(table.iloc[::-3], rules)["L3"]["problem_id"])  # a reversed third of them
    assert part == full & set(table.iloc[::-3]["problem_id"])
    for domain, frac in (("math", 0.5), ("code", 0.1)):
        n = (table.domain == domain).sum()
        got = len(full & set(table[table.domain == domain]["problem_id"]))
        assert abs(got / n - frac) < 0.04
    assert set(build_levels(table, load_rules({**RULES, "seed": 1}))["L3"]["problem_id"]) != full


def test_empty_levels_write_load_and_export(tmp_path):
    rules = load_rules(RULES)
    problems = [Problem("a", "math", "x?", answer="1", meta={"k": [1, 2]})]
    table = pd.DataFrame({"problem_id": ["a"], "domain": ["math"], "r1_1.5b": [0.5], "r1_7b": [0.5]})
    levels = build_levels(table, rules, problems)
    assert len(levels["L2"]) == 0 and list(levels["L2"].columns[:7]) == ["id", "domain", "prompt", "answer", "tests",
                                                                         "source", "meta"]
    write_levels(levels, tmp_path / "levels")
    assert read_level(tmp_path / "levels" / "L2.parquet") == []
    assert read_level(tmp_path / "levels" / "L1.parquet")[0].meta == {"k": [1, 2]}
    stats = level_stats(levels, table, rules)
    out = export_dataset(levels, rules, tmp_path / "hf", {"k": 4, "stats": stats, "license": "mit"})
    card = (out / "README.md").read_text()
    assert "| level | problems | math |" in card and "| L2 | 0 | 0 |" in card and "license: mit" in card
    default = datasets.load_dataset(str(out), split="train")  # the first level is the default config
    assert default["id"] == ["a"] and json.loads(default["meta"][0]) == {"k": [1, 2]}
    assert "config_name: L2" not in card and "Empty levels, exported without a config" in card
    with pytest.raises(ValueError, match="nothing to export"):
        export_dataset({"L2": levels["L2"]}, rules, tmp_path / "none", {})


def test_stats_count_drops_and_skips():
    rules = load_rules(RULES)
    stats = level_stats(build_levels(WIDE, rules, on_missing="skip"), WIDE, rules)
    assert (stats["problems"], stats["dropped"], stats["skipped"]) == (3, 1, 0)
    partial = WIDE.assign(**{"r1_1.5b": [0.5, 0.0, 0.5], "r1_7b": [1.0, 0.25, np.nan]})  # c: strong unknown
    stats = level_stats(build_levels(partial, rules, on_missing="skip"), partial, rules)
    assert (stats["dropped"], stats["skipped"], stats["in_no_level"]) == (0, 1, 1)
