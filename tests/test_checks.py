"""The whole recipe checked before any work (issue 9): each bad setting stops every command in
seconds, names its key path, and leaves nothing behind: no run folder, no sample generated.

The good recipe scores and trains the real tiny Llama, so a check that did not stop a command
would generate samples (and the test would see them)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stagerl.cli import main
from stagerl.config import load_recipe

FAST_S = 60  # "in seconds": generous for a loaded 2-core box (no model is loaded)


def good(tmp: Path, model: str) -> dict:
    return {
        "name": "r", "runs_dir": str(tmp / "runs"),
        "data": [{"builtin": "demo_math", "n": 2, "seed": 3}],
        "scoring": {"k": 2, "adaptive": False, "sampling": {"max_tokens": 8}, "models": [{"name": "tiny", "model": model}]},
        "levels": {"rules": {"models": {"policy": "tiny"}, "levels": {"all": "policy in [0,1]"}}},
        "train": {"policy": model, "stages": [
            {"name": "s1", "levels": ["all"], "num_generations": 2, "prompts_per_step": 2, "max_steps": 1,
             "max_completion_length": 8, "plateau": None, "math_code_ratio": None},
            {"name": "s2", "levels": ["all"], "num_generations": 2, "prompts_per_step": 2, "max_steps": 1,
             "max_completion_length": 8, "plateau": None, "math_code_ratio": None}]},
        "eval": {"sampling": {"max_tokens": 8}, "benchmarks": [{"name": "h", "k": 1, "source": {"builtin": "demo_math", "n": 1, "seed": 9}}]},
    }


def bad_call_mode_file(tmp: Path) -> str:
    path = tmp / "code.jsonl"
    rows = [{"id": "ok", "domain": "code", "prompt": "Add one.", "tests": {"fn_name": "f", "inputs": [[1]], "outputs": [2]}},
            {"id": "bad", "domain": "code", "prompt": "Add one.", "tests": {"fn_name": "f", "inputs": [1, 2], "outputs": [2, 3]}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _set(d: dict, path: str, value) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    if isinstance(d, list):
        d[int(keys[-1])] = value
    else:
        d[keys[-1]] = value


# (what, command, edits, expected key path in the error)
CASES = [
    ("bad stage-2 level", "run", {"train.stages.1.levels": ["L9"]}, "train.stages[1].levels: level 'L9'"),
    ("plateau.window 0", "run", {"train.stages.0.plateau": {"window": 0}}, "train.stages[0].plateau.window: must be >= 1"),
    ("num_generations 1", "run", {"train.stages.0.num_generations": 1}, "train.stages[0].num_generations: must be >= 2"),
    ("indivisible batch", "run", {"train.stages.1.trl": {"gradient_accumulation_steps": 3}},
     "train.stages[1].prompts_per_step: stage 's2': prompts_per_step × num_generations = 2 × 2 = 4"),
    ("missing benchmark", "run", {"eval.benchmarks.0.source": "builtin:no_such_set"}, "eval.benchmarks[0].source:"),
    ("missing benchmark (eval)", "eval", {"eval.benchmarks.0.source": "builtin:no_such_set"}, "eval.benchmarks[0].source:"),
    ("missing policy path", "run", {"train.policy": "{tmp}/no/policy"}, "train.policy: model folder"),
    ("missing 2nd ladder model", "score", {"scoring.models": [{"name": "tiny", "model": "{model}"},
                                                            {"name": "big", "model": "{tmp}/no/big"}]},
     "scoring.models[1].model: model folder"),
    ("bind to unscored model", "score", {"levels.bind": {"policy": "ghost"}},
     "levels.bind.policy: rule alias 'policy' is bound to model 'ghost', which is not scored"),
    ("malformed call-mode tests", "run", {"data": [{"builtin": "demo_math", "n": 2, "seed": 3}, "{codefile}"]},
     "data[1]: {codefile}: line 2: field 'tests': call-mode 'inputs'[0] must be an argument list"),
]


def _subst(v, **kw):
    if isinstance(v, str):
        return v.format(**kw)
    if isinstance(v, list):
        return [_subst(x, **kw) for x in v]
    if isinstance(v, dict):
        return {k: _subst(x, **kw) for k, x in v.items()}
    return v


@pytest.mark.parametrize("what, command, edits, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_setting_fails_in_seconds_with_its_key_path(what, command, edits, expected, tmp_path, tiny_model_dir,
                                                         capsys):
    kw = {"tmp": str(tmp_path), "model": tiny_model_dir, "codefile": bad_call_mode_file(tmp_path)}
    recipe = good(tmp_path, tiny_model_dir)
    for path, value in edits.items():
        _set(recipe, path, _subst(value, **kw))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    t0 = time.perf_counter()
    assert main([command, str(path)]) == 2
    assert time.perf_counter() - t0 < FAST_S
    err = capsys.readouterr().err
    assert _subst(expected, **kw) in err, err
    assert not (tmp_path / "runs").exists()  # nothing generated, not even a run folder


def test_every_problem_is_listed_at_once(tmp_path, tiny_model_dir, capsys):
    recipe = good(tmp_path, tiny_model_dir)
    recipe["train"]["stages"][1]["levels"] = ["L9"]
    recipe["eval"]["benchmarks"][0]["source"] = "builtin:no_such_set"
    recipe["scoring"]["models"].append({"name": "big", "model": str(tmp_path / "no" / "big")})
    recipe["levels"]["bind"] = {"policy": "ghost"}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    for key in ("train.stages[1].levels", "eval.benchmarks[0].source", "scoring.models[1].model", "levels.bind.policy"):
        assert key in err
    assert "4 problem(s)" in err and not (tmp_path / "runs").exists()
    recipe["scoring"]["k"], recipe["train"]["stages"][0]["plateau"] = 0, {"window": 0, "patience": 0}
    path.write_text(yaml.safe_dump(recipe))
    assert main(["score", str(path)]) == 2  # value ranges: all of them too, with the file named
    err = capsys.readouterr().err
    for key in ("scoring.k: must be >= 1", "train.stages[0].plateau.window", "train.stages[0].plateau.patience"):
        assert f"recipe.yaml: {key}" in err


def test_world_size_decides_the_split(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(good(tmp_path, tiny_model_dir)))
    assert main(["check", str(path), "--world-size", "2"]) == 0  # 4 completions on 2 processes: 2 each
    assert main(["train", str(path), "--world-size", "3"]) == 2
    assert "4 completions per step cannot be split" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    from stagerl.checks import check_recipe

    found = check_recipe(load_recipe(path), world=2)
    assert not [i for i in found if i.severity == "error"]


def test_check_prints_the_plan(tmp_path, tiny_model_dir):
    recipe = good(tmp_path, tiny_model_dir)
    recipe["data"].append(bad_call_mode_file(tmp_path).replace("code.jsonl", "fine.jsonl"))
    Path(recipe["data"][-1]).write_text(json.dumps({"id": "c", "domain": "code", "prompt": "Echo.",
                                                    "tests": {"inputs": ["1\n"], "outputs": ["1\n"]}}) + "\n")
    recipe["train"]["policy"] = "some-org/not-here"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "check", str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and time.perf_counter() - t0 < FAST_S, out.stderr
    text = out.stdout
    assert "2 problems (2 math)" in text and "fine.jsonl: 1 problems (1 code)" in text
    assert "total: 3 problems (1 code, 2 math)" in text
    assert f"model tiny: {tiny_model_dir} (transformers)" in text
    assert "stage s1 on all: 2 prompts x 2 = 4 completions per step" in text and "token budget 32 per step" in text
    assert "benchmark h: 1 problems x k=1" in text
    assert "warning: train.policy: 'some-org/not-here' is no local folder" in text  # a hub id: a warning
    assert not (tmp_path / "runs").exists()


def test_paper_preset_passes_check_on_a_node_of_eight(tmp_path):
    """The shipped paper recipe passes `stagerl check` for 8 processes (issue 11) and prints its plan:
    one 16k / 24k sequence per device per pass, 256 passes per step."""
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "check", "paper", "--world-size", "8",
                          "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\n0 problem(s)" in text
    for stage, limit in (("stage1 on L2", "16,384"), ("stage2 on L3", "24,576")):
        assert f"stage {stage}: 128 prompts x 16 = 2048 completions per step (1 per device x 8 process(es) x 256 accumulation)" in text
        assert f"1 sequences per device per pass x 256 passes per step; at most {limit} completion tokens" in text
    assert main(["check", "paper", "--world-size", "3", "--runs-dir", str(tmp_path / "runs")]) == 2  # 2048 / 3: refused
    assert not (tmp_path / "runs").exists()


def test_trl_keys_are_checked_without_importing_trl():
    """The GRPOConfig field names read from source equal the imported class's."""
    import dataclasses

    from trl import GRPOConfig

    from stagerl.checks import check_recipe, grpo_fields

    assert grpo_fields() == {f.name for f in dataclasses.fields(GRPOConfig)}
    recipe = load_recipe({"train": {"stages": [{"trl": {"use_vlm": True}}]}})
    issues = check_recipe(recipe, command="check")
    assert any(i.path == "train.stages[0].trl.use_vlm" and "did you mean use_vllm" in i.message for i in issues)


def test_stdin_tests_are_checked_at_load_time(tmp_path):
    from stagerl.data import load_source
    from stagerl.data.loaders import LoadError

    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "domain": "code", "prompt": "x", "tests": {"inputs": [{"n": 1}], "outputs": ["1"]}}) + "\n")
    with pytest.raises(LoadError, match=r"p\.jsonl: line 1: field 'tests': stdin-mode 'inputs'\[0\] must be text"):
        load_source(str(path))


def test_levels_of_an_external_table_check_its_models(tmp_path, tiny_model_dir):
    """With ``--table``, the rule aliases must be bound to the table's models, not the ladder's."""
    import pandas as pd

    from stagerl.checks import check_recipe

    table = tmp_path / "rates.csv"
    pd.DataFrame({"id": ["demo-math-3-0000", "demo-math-3-0001"], "domain": ["math"] * 2,  # the recipe's problems
                  "pub_pass_rate": [0.5, 1.0]}).to_csv(table, index=False)
    recipe = load_recipe(good(tmp_path, tiny_model_dir))
    recipe.levels.bind = {"policy": "pub"}
    assert not [i for i in check_recipe(recipe, command="levels", table=str(table)) if i.severity == "error"]
    assert [i.path for i in check_recipe(recipe, command="levels")] == ["levels.bind.policy"]
