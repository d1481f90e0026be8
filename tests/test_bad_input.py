"""Issue 25, part 1: the bad input a newcomer's probe found accepted, or refused too late or without
saying where. Each case is refused before any work, names the file and row/line and field (or key
path) and writes nothing; missing problems are counted (an error with --require-all)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stagerl.cli import main
from stagerl.config import ConfigError, load_recipe
from stagerl.data import Problem, load_file, load_source
from stagerl.data.loaders import LoadError
from stagerl.data.problem import ProblemError
from stagerl.levels import RulesError, load_rules

PROBLEMS = [{"id": "a", "prompt": "1+1?", "answer": "2"}, {"id": "b", "prompt": "2+2?", "answer": "4"},
            {"id": "c", "prompt": "3+3?", "answer": "6"}]
RULES = {"models": {"small": "s", "big": "b"}, "keep": "big in (0,1]",
         "levels": {"L1": "small in (0,1)", "L2": {"all": ["small in [0,0]", "big in (0,1]"]}}}
GOOD_TABLE = "problem_id,domain,s,b\na,math,0.5,1\nb,math,0,0.5\nc,math,0,0.25\n"


def recipe_file(tmp: Path, **extra) -> Path:
    data = tmp / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    recipe = {"name": "r", "runs_dir": str(tmp / "runs"), "data": [str(data)], "levels": {"rules": RULES}, **extra}
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def table_file(tmp: Path, text: str, name: str = "rates.csv") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def run_levels(tmp: Path, table: Path, *args: str) -> int:
    return main(["levels", str(recipe_file(tmp)), "--table", str(table), *args])


# ------------------------------------------------------------------------------------- run names


def test_run_name_cannot_leave_the_runs_folder(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text(f"name: ../../escape\nruns_dir: {tmp_path / 'a' / 'runs'}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: name: '../../escape' is not a folder name"):
        load_recipe(bad)
    assert main(["check", str(recipe_file(tmp_path)), "--name", "../escape"]) == 2  # the CLI override too
    assert "--name: '../escape' is not a folder name" in capsys.readouterr().err
    table = table_file(tmp_path, GOOD_TABLE)
    assert main(["levels", str(recipe_file(tmp_path)), "--table", str(table), "--name", "../../escape"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["problems.jsonl", "r.yaml", "rates.csv", "recipe.yaml"]


# ------------------------------------------------------------------------------------- YAML


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\nscoring:\n  k: 4\nlevels:\n  rules:\n    models: {a: m}\n    levels:\n"
                    "      L3: 'a in [0,1]'\n      L3: 'a in [0,0]'\nscoring:\n  k: 8\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: key 'levels\.rules\.levels\.L3' is given twice, on line 8 and "
                                          r"line 9"):
        load_recipe(path)
    path.write_text("scoring:\n  k: 4\nscoring:\n  k: 8\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: key 'scoring' is given twice, on line 1 and line 3"):
        load_recipe(path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("models: {a: m}\nlevels:\n  L1: 'a in [0,1]'\n  L1: 'a in [0,0]'\n")
    with pytest.raises(RulesError, match=r"rules\.yaml: key 'levels\.L1' is given twice, on line 3 and line 4"):
        load_rules(str(rules))


@pytest.mark.parametrize("case", ["folder", "latin-1", "empty", "comments only"])
def test_unreadable_recipes_name_the_file(tmp_path, capsys, case):
    path = tmp_path / "r.yaml"
    if case == "folder":
        path.mkdir()
    elif case == "latin-1":
        path.write_bytes("name: x\nprompt: {system: 'caf\u00e9'}\n".encode("latin-1"))
    else:
        path.write_text("" if case == "empty" else "# nothing yet\n")
    assert main(["check", str(path)]) == 2  # not a traceback, not a default recipe
    err = capsys.readouterr().err
    expect = {"folder": f"{path}: is a folder, not a recipe file",
              "latin-1": f"{path}, line 2, column 22: not UTF-8 text (byte 0xe9)"}.get(case, f"{path}: the recipe is empty")
    assert expect in err


# ------------------------------------------------------------------------------------- data rows


def test_non_utf8_data_row_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(PROBLEMS[0]).encode() + b"\n" + '{"id": "b", "prompt": "caf\u00e9", "answer": "1"}\n'
                     .encode("latin-1"))
    with pytest.raises(LoadError, match=r"p\.jsonl: line 2: not UTF-8 text \(byte 0xe9 at column 27\)"):
        load_source(str(path))
    whole = tmp_path / "p.json"
    whole.write_bytes(b'[{"id": "a", "prompt": "caf\xe9", "answer": "1"}]')
    with pytest.raises(LoadError, match=r"p\.json, line 1, column 28: not UTF-8 text"):
        load_source(str(whole))


def test_row_missing_its_answer_names_the_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(PROBLEMS[0]) + "\n" + json.dumps({"id": "b", "prompt": "2+2?"}) + "\n")
    with pytest.raises(LoadError) as e:
        load_file(path)
    msg = str(e.value)
    assert f"{path}: line 2: field 'answer' is missing" in msg and "columns of this row: id, prompt" in msg
    assert "cannot tell math from code" not in msg


def test_stdin_test_output_must_be_text(tmp_path):
    """APPS/TACO stdin tests: ``outputs`` is a list with one text per input; ``[2]`` (a bare int) is refused."""
    with pytest.raises(ProblemError, match=r"field 'tests': stdin-mode 'outputs'\[0\] must be text .*got int 2 "
                                           r"\(write the text, \"2\"\)"):
        Problem("x", "code", "Add one.", tests={"inputs": ["1\n"], "outputs": [2]})
    path = tmp_path / "code.jsonl"
    path.write_text(json.dumps({"id": "x", "domain": "code", "prompt": "Add one.",
                                "tests": {"inputs": ["1\n", "2\n"], "outputs": ["2\n", 3]}}) + "\n")
    with pytest.raises(LoadError, match=r"code\.jsonl: line 1: field 'tests': stdin-mode 'outputs'\[1\] must be text"):
        load_file(path)
    for ok in ({"inputs": ["1\n"], "outputs": ["2\n"]}, {"inputs": [["1", "2"]], "outputs": [["3"]]},
               {"fn_name": "f", "inputs": [[1]], "outputs": [2]}):  # text, lines, a call's return value
        Problem("x", "code", "Add one.", tests=ok)


# ------------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("case, text, where", [
    ("blank rate", "problem_id,domain,s,b\na,math,0.5,1\nb,math,,0.5\nc,math,0,0.25\n",
     "rates.csv: 1 blank pass rate(s) of model 's', which the level rules use: column 's', line 3 (problem 'b')"),
    ("NaN rate", "problem_id,domain,s,b\na,math,0.5,1\nb,math,0,0.5\nc,math,0,NaN\n",
     "rates.csv: 1 blank pass rate(s) of model 'b', which the level rules use: column 'b', line 4 (problem 'c')"),
    ("unknown ids", "problem_id,s,b\na,0.5,1\nb,0,0.5\nc,0,0.25\nzz,0,1\n",
     "rates.csv: 1 id(s) of the table match no problem of the recipe's data (3 problems), column 'problem_id', "
     "line 5 (problem 'zz')"),
    ("empty file", "", "rates.csv: the file is empty"),
    ("header only", "problem_id,s,b\n", "rates.csv: the table has no rows"),
])
def test_bad_tables_are_refused_by_check_and_levels_writing_nothing(tmp_path, capsys, case, text, where):
    table = table_file(tmp_path, text)
    assert main(["check", str(recipe_file(tmp_path)), "--table", str(table)]) == 2  # the same checks as levels
    assert where in capsys.readouterr().out
    assert run_levels(tmp_path, table) == 2
    assert where in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # no .lock, recipe.yaml or history.jsonl


def test_non_utf8_table_names_file_and_line(tmp_path, capsys):
    table = tmp_path / "rates.csv"
    table.write_bytes("problem_id,s,b\na,0.5,1\ncaf\u00e9,0,0.5\n".encode("latin-1"))
    assert run_levels(tmp_path, table) == 2
    assert f"{table}, line 3, column 4: not UTF-8 text (byte 0xe9)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_long_table_blank_rate_names_the_row(tmp_path, capsys):
    rows = [("a", "s", 0.5), ("a", "b", 1), ("b", "s", 0), ("b", "b", None), ("c", "s", 0), ("c", "b", 0.25)]
    table = tmp_path / "rates.parquet"
    pd.DataFrame(rows, columns=["problem_id", "model", "pass_rate"]).assign(domain="math").to_parquet(table)
    assert run_levels(tmp_path, table) == 2
    assert "rates.parquet: 1 blank pass rate(s) of models the level rules use, column 'pass_rate', row 3 " \
           "(problem 'b')" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_problems_missing_from_the_table_are_counted(tmp_path, capsys):
    table = table_file(tmp_path, "problem_id,s,b\na,0.5,1\n")
    assert run_levels(tmp_path, table) == 0
    out = capsys.readouterr().out
    assert "2 of the recipe's 3 problems have no row in the table ('b', 'c'); they are in no level" in out
    assert json.loads((tmp_path / "runs" / "r" / "levels" / "stats.json").read_text())["inputs"][
        "problems_not_in_table"] == 2
    assert run_levels(tmp_path, table, "--require-all", "--name", "r2") == 2
    assert "(levels.require_all is set)" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "r2").exists()


# ------------------------------------------------------------------------------------- export


def test_export_to_a_file_or_of_empty_levels_leaves_levels_untouched(tmp_path, capsys):
    table = table_file(tmp_path, GOOD_TABLE)
    assert run_levels(tmp_path, table) == 0
    levels = tmp_path / "runs" / "r" / "levels"
    before = {p.name: p.read_bytes() for p in levels.iterdir()}
    history = (tmp_path / "runs" / "r" / "history.jsonl").read_text()
    capsys.readouterr()
    target = tmp_path / "out.txt"
    target.write_text("mine")
    assert run_levels(tmp_path, table, "--export", str(target)) == 2
    assert f"--export: {target} is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine" and {p.name: p.read_bytes() for p in levels.iterdir()} == before
    empty = table_file(tmp_path, "problem_id,domain,s,b\na,math,1,0\nb,math,1,0\nc,math,1,0\n", "empty.csv")
    assert run_levels(tmp_path, empty, "--export", str(tmp_path / "ds")) == 2  # keep drops every problem
    assert "every level is empty (L1, L2)" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists() and {p.name: p.read_bytes() for p in levels.iterdir()} == before
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    assert run_levels(tmp_path, table, "--export", str(mine)) == 2  # replacing it would delete the thesis
    assert "holds other things than a dataset export (thesis.tex)" in capsys.readouterr().err
    assert (tmp_path / "runs" / "r" / "history.jsonl").read_text() == history  # refused before it was recorded


def test_export_is_built_aside_and_swapped_in_when_complete(tmp_path):
    from stagerl.levels import build_levels, export_dataset, to_long

    rules = load_rules(RULES)
    levels = build_levels(to_long(pd.read_csv(table_file(tmp_path, GOOD_TABLE))), rules,
                          [Problem(p["id"], "math", p["prompt"], p["answer"]) for p in PROBLEMS])
    out = export_dataset(levels, rules, tmp_path / "ds", {"k": 4})
    old = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = dict(levels)
    broken["L1"] = levels["L1"].assign(prompt="changed")  # written first: in place, it would be half replaced
    broken["L2"] = levels["L2"].assign(rate_s=[object()] * len(levels["L2"]))  # pyarrow cannot write it
    with pytest.raises(Exception):
        export_dataset(broken, rules, out, {"k": 4})
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == old  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "rates.csv"]  # no half-built folder left
    export_dataset({**levels, "L2": levels["L2"].iloc[:0]}, rules, out, {"k": 4})  # a complete one replaces it
    assert sorted(p.name for p in (out / "data").iterdir()) == ["L1.parquet"]  # no stale L2 beside the card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "rates.csv"]


def test_card_and_report_of_a_table_run_describe_the_table(tmp_path, capsys):
    table = table_file(tmp_path, GOOD_TABLE)
    assert run_levels(tmp_path, table, "--export", str(tmp_path / "ds")) == 0
    card = (tmp_path / "ds" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert "code" not in front["tags"] and "math" in front["tags"]  # math-only data
    assert "(k)" not in card and "Sampling" not in card and "k times" not in card  # the table had none of these
    assert f"`{table.resolve()}` (3 rows; columns: problem_id, domain, s, b)" in card
    assert "Models in the table: b, s" in card
    assert main(["report", str(tmp_path / "runs" / "r")]) == 0
    report = (tmp_path / "runs" / "r" / "report" / "report.md").read_text()
    assert "scoring has not run" not in report and "Reference models: none scored here" in report
    assert f"Pass rates from a table made elsewhere, not scored here: `{table.resolve()}`" in report
