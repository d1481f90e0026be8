"""Issue 25, part 3: small frictions of a first run. A built-in recipe printed to start from, other
column names for a table, data paths beside the recipe, "did you mean" for misspelt keys and
levels, and `stagerl report` refusing a folder that is not a run folder."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pytest
import yaml

from stagerl.cli import main
from stagerl.config import ConfigError, builtin_recipes, load_recipe
from stagerl.data import load_source
from stagerl.levels import RulesError, load_rules

PROBLEMS = [{"id": "a", "prompt": "1+1?", "answer": "2"}, {"id": "b", "prompt": "2+2?", "answer": "4"}]
RULES = {"models": {"small": "s", "big": "b"},
         "levels": {"L1": "small in (0,1)", "L2": {"all": ["small in [0,0]", "big in (0,1]"]}}}


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_recipe_command_prints_a_builtin_recipe(name, capsys, tmp_path):
    assert main(["recipe", name]) == 0
    text = capsys.readouterr().out
    assert text == (resources.files("stagerl") / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(text)  # a starting point that loads as the built-in one
    assert load_recipe(tmp_path / "mine.yaml") == load_recipe(name)


def test_recipe_command_lists_and_suggests(capsys):
    assert main(["recipe"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in builtin_recipes())
    assert main(["recipe", "dmeo"]) == 2
    assert "no built-in recipe 'dmeo'; did you mean 'demo'?" in capsys.readouterr().err


def _recipe(tmp_path, **levels) -> str:
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "r", "runs_dir": str(tmp_path / "runs"), "data": [str(data)],
                                    "levels": {"rules": RULES, **levels}}))
    return str(path)


def test_table_with_other_column_names(tmp_path, capsys):
    table = tmp_path / "published.csv"
    pd.DataFrame({"question_id": ["a", "b"], "acc_1_5b": [0.5, 0.0], "acc_7b": [1.0, 0.5]}).to_csv(table, index=False)
    recipe = _recipe(tmp_path)
    assert main(["check", recipe, "--table", str(table)]) == 2  # no id column under our names
    assert "no id column" in capsys.readouterr().out
    mapping = "problem_id=question_id,s=acc_1_5b,b=acc_7b"
    assert main(["levels", recipe, "--table", str(table), "--table-columns", mapping]) == 0
    levels = tmp_path / "runs" / "r" / "levels"
    assert list(pd.read_parquet(levels / "L1.parquet")["id"]) == ["a"]
    assert list(pd.read_parquet(levels / "L2.parquet")["id"]) == ["b"]
    in_recipe = _recipe(tmp_path, table_columns={"problem_id": "question_id", "s": "acc_1_5b", "b": "acc_7b"})
    assert main(["check", in_recipe, "--table", str(table)]) == 0  # the same mapping as a recipe key
    capsys.readouterr()
    assert main(["check", recipe, "--table", str(table), "--table-columns", "problem_id=qid"]) == 2
    assert "levels.table_columns.problem_id: column 'qid' is not in the table (columns: question_id, acc_1_5b, " \
           "acc_7b)" in capsys.readouterr().out


def test_long_table_with_other_column_names(tmp_path):
    table = tmp_path / "long.jsonl"
    pd.DataFrame({"uid": ["a", "a", "b", "b"], "llm": ["s", "b", "s", "b"], "acc": [0.5, 1.0, 0.0, 0.5]}).to_json(
        table, orient="records", lines=True)
    mapping = "problem_id=uid,model=llm,pass_rate=acc"
    assert main(["levels", _recipe(tmp_path), "--table", str(table), "--table-columns", mapping]) == 0
    assert list(pd.read_parquet(tmp_path / "runs" / "r" / "levels" / "L2.parquet")["id"]) == ["b"]


def test_data_paths_are_relative_to_the_recipe_file(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "p.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    (folder / "rules.yaml").write_text(yaml.safe_dump(RULES))
    (folder / "recipe.yaml").write_text(yaml.safe_dump({
        "data": ["data/p.jsonl", {"path": "data/p.jsonl", "limit": 1}, "builtin:demo_code"], "levels": {"rules": "rules.yaml"},
        "eval": {"benchmarks": [{"name": "b", "source": "data/p.jsonl"}]}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = load_recipe("../project/recipe.yaml")
    here = str(folder / "data" / "p.jsonl")
    assert r.data == [here, {"path": here, "limit": 1}, "builtin:demo_code"]
    assert r.eval.benchmarks[0].source == here and r.levels.rules == str(folder / "rules.yaml")
    assert [len(load_source(spec)) for spec in r.data] == [2, 1, 8]  # and they load from here
    assert list(load_rules(r.levels.rules).levels) == ["L1", "L2"]


def test_did_you_mean_for_keys_and_levels(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"trian: unknown key; did you mean 'train'\?"):
        load_recipe({"trian": {}})
    with pytest.raises(ConfigError, match=r"scoring\.smapling: unknown key; did you mean 'sampling'\?"):
        load_recipe({"scoring": {"smapling": {}}})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"levels": {"rules": RULES}, "train": {"stages": [{"name": "s", "levels": ["l2"]}]}}))
    assert main(["check", str(recipe)]) == 2
    assert "train.stages[0].levels: level 'l2' is not a level of the rules; did you mean 'L2'?" in capsys.readouterr().out
    with pytest.raises(RulesError, match=r"rules\.kep: unknown key; did you mean 'keep'\?"):
        load_rules({**RULES, "kep": "big in (0,1]"})
    recipe.write_text(yaml.safe_dump({"levels": {"rules": RULES, "bind": {"smal": "x"}}}))
    assert main(["check", str(recipe)]) == 2
    assert "levels.bind: cannot bind unknown alias 'smal'; did you mean 'small'?" in capsys.readouterr().out


def test_report_on_a_folder_that_is_not_a_run_folder(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["report", str(folder)]) == 2
    assert f"{folder} is not a stagerl run folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jpg"]  # no report/ written into it
