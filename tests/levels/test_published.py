"""Published difficulty tables in (issue 23): each supported form, from a fixture we built from its
documented schema (tests/levels/fixtures, cited in docs/tables.md), cut by the paper's level rules;
our own export read back (round trip); malformed tables refused with file, row and field."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stagerl.data import Problem
from stagerl.levels import build_levels, export_dataset, load_rules
from stagerl.levels.rules import retained
from stagerl.scoring.published import TableError, levels_without, read_published

FIX = Path(__file__).parent / "fixtures"
AM = FIX / "am_team_math_r1_1pass.jsonl"


def ids(levels):
    return {name: sorted(df["id"] if "id" in df else df["problem_id"]) for name, df in levels.items()}


def am_problems():
    rows = [json.loads(line) for line in AM.read_text().splitlines()]
    seen = {r["question"]: r["ground_truth"] for r in rows}
    return [Problem(q, "math", q, answer=a) for q, a in seen.items()]


def paper_without_l3():
    d = load_rules("paper").to_dict()
    del d["levels"]["L3"]
    return load_rules(d)


def test_am_team_pass_rate_columns_give_the_paper_levels_it_can():
    table = read_published(AM, "am-team")  # 8 rows (two questions twice, as one row per response), 6 problems
    assert len(table) == 18 and sorted(set(table["model"])) == ["deepseek-r1", "r1-distill-qwen-1.5b",
                                                                "r1-distill-qwen-7b"]
    paper = load_rules("paper")
    assert levels_without(paper, set(table["model"])) == {"L3": ["large"]}  # no 32B column: L3 cannot be built
    levels = build_levels(table, paper_without_l3(), problems=am_problems())
    # L1: the policy (1.5B) partly right; L2: 1.5B fails and 7B partly/fully right, or both partly right;
    # the question R1 never solves is dropped by `keep`
    assert ids(levels) == {"L1": ["What is 6*7?"], "L2": ["What is 12/4?", "What is 17+26?", "What is 6*7?"]}


def test_polaris_difficulty_fraction():
    table = read_published(FIX / "polaris.jsonl", "polaris")
    got = {r.problem_id: (r.pass_rate, r.samples, r.successes) for r in table.itertuples()}
    assert got["What is 6*7?"] == (0.75, 8, 6) and got["What is 17+26?"] == (0.375, 8, 3)
    assert levels_without(load_rules("paper"), set(table["model"])) == {  # one 7B model: keep needs R1
        "L1": ["policy", "strongest"], "L2": ["small", "strongest"], "L3": ["large", "strongest"]}
    rules = load_rules({"models": {"medium": "r1-distill-qwen-7b"}, "levels": {"L2": "medium in (0,1)"}})
    levels = build_levels(table, rules, problems=am_problems()[:3] + am_problems()[5:])
    assert ids(levels) == {"L2": ["What is 17+26?", "What is 6*7?"]}


def flat_problems():
    math = [Problem(f"f{i}", "math", f"q{i}", answer=str(i)) for i in range(1, 6)]
    code = Problem("f6", "code", "Print the sum of two integers.", tests={"inputs": ["1 2\n"], "outputs": ["3\n"]})
    return math + [code]


def flat_expected():
    l3 = ["f2", "f3", "f4"] + (["f1"] if retained(0, "L3", "f1", 0.5) else []) + \
        (["f6"] if retained(0, "L3", "f6", 0.1) else [])
    return {"L1": ["f1", "f6"], "L2": ["f2", "f3", "f6"], "L3": sorted(l3)}


def test_flat_one_column_per_model_gives_the_paper_levels():
    table = read_published(FIX / "flat.csv", "flat")
    assert len(table) == 24
    assert ids(build_levels(table, load_rules("paper"), problems=flat_problems())) == flat_expected()


def test_our_export_round_trips(tmp_path):
    rules = load_rules("paper")
    levels = build_levels(read_published(FIX / "flat.csv", "flat"), rules, problems=flat_problems())
    export_dataset(levels, rules, tmp_path / "export", {})
    back = read_published(tmp_path / "export", "stagerl")
    again = build_levels(back, rules, problems=flat_problems())
    assert ids(again) == ids(levels) == flat_expected()
    for name in levels:
        cols = [c for c in levels[name].columns if c.startswith("rate_")]
        pd.testing.assert_frame_equal(again[name][["id", *cols]].sort_values("id").reset_index(drop=True),
                                      levels[name][["id", *cols]].sort_values("id").reset_index(drop=True))


def test_hf_source_and_yaml_form(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    pd.read_json(AM, lines=True).to_parquet(folder / "math_r1_1pass.parquet")
    form = tmp_path / "form.yaml"
    form.write_text(yaml.safe_dump({"id": "question", "rows_per_problem": "agree", "domain": "math",
                                    "models": {"r1": {"rate": "pass_rate_r1"}, "small": {"rate": "pass_rate_1.5b"}}}))
    table = read_published(f"hf:{folder}:*.parquet", form)
    assert len(table) == 12 and set(table["domain"]) == {"math"}


def _mutate(tmp_path, line: int, **changes) -> Path:
    rows = AM.read_text().splitlines()
    row = json.loads(rows[line - 1])
    row.update(changes)
    rows[line - 1] = json.dumps(row)
    out = tmp_path / "bad.jsonl"
    out.write_text("\n".join(rows) + "\n")
    return out


@pytest.mark.parametrize("line, changes, message", [
    (3, {"pass_rate_7b": "abc"}, r"line 3: field 'pass_rate_7b' \(model 'r1-distill-qwen-7b'\): 'abc' is not a pass rate"),
    (4, {"pass_rate_r1": None}, r"line 4: field 'pass_rate_r1' \(model 'deepseek-r1'\) is blank or NaN"),
    (5, {"pass_rate_1.5b": 1.5}, r"line 5: field 'pass_rate_1.5b' .*1.5 is not a pass rate in \[0, 1\]"),
    (7, {"pass_rate_7b": 0.5}, r"line 7: field 'pass_rate_7b' .*'What is 6\*7\?' has 0.5 here but 0.75 at line 2"),
    (2, {"question": "  "}, r"line 2: field 'question' \(the id\) is blank"),
])
def test_malformed_rows_name_file_row_and_field(tmp_path, line, changes, message):
    bad = _mutate(tmp_path, line, **changes)
    with pytest.raises(TableError, match=rf"{bad}: {message}"):
        read_published(bad, "am-team")


def test_malformed_fraction_and_csv_cell(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text(json.dumps({"problem": "a", "difficulty": "3 of 8"}) + "\n")
    with pytest.raises(TableError, match=r"line 1: field 'difficulty' .*'3 of 8' is not a 'successes/samples'"):
        read_published(bad, "polaris")
    csv = tmp_path / "t.csv"
    csv.write_text((FIX / "flat.csv").read_text().replace("f3,math,0.0,0.5", "f3,math,,0.5"))
    with pytest.raises(TableError, match=rf"{csv}: line 4: field 'r1-distill-qwen-1.5b' .* is blank or NaN"):
        read_published(csv, "flat")


def _recipe(tmp_path, model, rules, stage_levels):
    data = tmp_path / "am.jsonl"
    data.write_text("".join(json.dumps({"id": p.id, "prompt": p.prompt, "answer": p.answer}) + "\n"
                            for p in am_problems()))
    stage = {"num_generations": 2, "prompts_per_step": 2, "max_steps": 1, "max_completion_length": 8,
             "plateau": None, "math_code_ratio": None}
    recipe = {"name": "pub", "runs_dir": str(tmp_path / "runs"), "data": [str(data)],
              "scoring": {"k": 2, "models": [{"name": "tiny", "model": model}]},
              "levels": {"rules": rules}, "train": {"policy": model, "stages": [
                  {**stage, "name": f"s{i}", "levels": [lv]} for i, lv in enumerate(stage_levels)]}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cli_names_the_levels_a_table_cannot_build(tmp_path, tiny_model_dir):
    recipe = _recipe(tmp_path, tiny_model_dir, "paper", ["L2", "L3"])
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "levels", str(recipe), "--table", str(AM),
                          "--table-form", "am-team"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "rule alias 'large' is bound to model 'r1-distill-qwen-32b', which is not scored" in out.stderr
    assert "Without it these levels cannot be built: L3 (these can: L1, L2;" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_levels_from_a_published_table(tmp_path, tiny_model_dir):
    recipe = _recipe(tmp_path, tiny_model_dir, paper_without_l3().to_dict(), ["L2"])
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "levels", str(recipe), "--table", str(AM),
                          "--table-form", "am-team"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = {f.stem: sorted(pd.read_parquet(f)["id"]) for f in (tmp_path / "runs" / "pub" / "levels").glob("*.parquet")}
    assert got == {"L1": ["What is 6*7?"], "L2": ["What is 12/4?", "What is 17+26?", "What is 6*7?"]}


def test_cli_refuses_a_malformed_table_before_any_work(tmp_path, tiny_model_dir):
    recipe = _recipe(tmp_path, tiny_model_dir, paper_without_l3().to_dict(), ["L2"])
    bad = _mutate(tmp_path, 3, pass_rate_7b="abc")
    for command in ("check", "levels"):
        out = subprocess.run([sys.executable, "-m", "stagerl.cli", command, str(recipe), "--table", str(bad),
                              "--table-form", "am-team"], capture_output=True, text=True)
        assert out.returncode == 2, out.stdout + out.stderr
        assert f"{bad}: line 3: field 'pass_rate_7b' (model 'r1-distill-qwen-7b'): 'abc' is not a pass rate" in out.stderr
    assert not (tmp_path / "runs").exists()
