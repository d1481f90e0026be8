"""The whole recipe end to end on the real SmolLM2-135M: score -> levels -> eval -> train -> eval -> report.

Sized for CI (a few minutes on 2 cores): few problems, short outputs, one GRPO step. The level
rule here takes every kept problem (so the stage always has data); the demo uses the real L1.
"""

import json

import pandas as pd
import pytest

from stagerl.cli import main
from stagerl.config import dump_recipe, load_recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory, smollm2_dir):
    root = tmp_path_factory.mktemp("runs")
    recipe = load_recipe({
        "name": "e2e", "runs_dir": str(root),
        "data": [{"builtin": "demo_math", "n": 4, "seed": 5}, {"builtin": "demo_code", "seed": 0}],
        "scoring": {"k": 2, "adaptive": False, "sampling": {"temperature": 0.8, "max_tokens": 32},
                    "models": [{"name": "smollm2", "model": smollm2_dir}]},
        "levels": {"rules": {"models": {"policy": "smollm2"}, "levels": {"all": "policy in [0,1]"}}},
        "train": {"policy": smollm2_dir, "stages": [{
            "name": "s", "levels": ["all"], "num_generations": 2, "prompts_per_step": 2, "max_steps": 1,
            "max_completion_length": 16, "learning_rate": 1e-5, "plateau": None, "math_code_ratio": 1.0}]},
        "eval": {"sampling": {"max_tokens": 24}, "benchmarks": [{"name": "heldout", "k": 1,
                                                                 "source": {"builtin": "demo_math", "n": 3, "seed": 9}}]},
    })
    path = dump_recipe(recipe, root / "recipe.yaml")
    assert main(["run", str(path)]) == 0
    return recipe.run_dir


def test_scoring_stored_every_sample(run):
    table = pd.read_parquet(run / "pass_rates.parquet")
    assert len(table) == 12 and (table["samples"] == 2).all()
    assert set(table["domain"]) == {"math", "code"}
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["total"]["samples"] == 24 and ledger["total"]["tokens"] > 0
    assert ledger["sandbox"]["mode"] == "bwrap" and ledger["sandbox"]["status"].startswith("bwrap (")


def test_levels_stage_and_eval_files(run):
    assert len(pd.read_parquet(run / "levels" / "all.parquet")) == 12
    stage = json.loads((run / "stages" / "1_s" / "stage.json").read_text())
    assert stage["steps"] == 1 and (run / "stages" / "1_s" / "checkpoint" / "config.json").exists()
    lines = (run / "stages" / "1_s" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["reward"] is not None
    base = json.loads((run / "eval" / "base" / "results.json").read_text())
    after = json.loads((run / "eval" / "1_s" / "results.json").read_text())
    assert stage["sandbox"]["mode"] == "bwrap"
    for r in (base, after):
        assert r["heldout"]["sandbox"]["mode"] == "bwrap"
        assert r["heldout"]["problems"] == 3 and r["heldout"]["k"] == 1 and 0 <= r["heldout"]["pass@1"] <= 1


def test_report_shows_this_runs_numbers(run):
    report = (run / "report" / "report.md").read_text()
    table = pd.read_parquet(run / "pass_rates.parquet")
    assert f"| smollm2 | 12 | 24 | {table['pass_rate'].mean():.3f} |" in report
    base = json.loads((run / "eval" / "base" / "results.json").read_text())["heldout"]["pass@1"]
    assert f"| heldout | 1 | {base:.3f} |" in report
    assert "Code sandbox: `bwrap` (ledger.json, stages/1_s/stage.json, eval/1_s/results.json, eval/base/results.json)." in report
    for png in ("pass_rates.png", "training.png", "benchmarks.png"):
        assert (run / "report" / png).stat().st_size > 1000 and f"({png})" in report


def test_rerun_generates_nothing(run, capsys):
    recipe = load_recipe(run / "recipe.yaml")
    from stagerl.pipeline import run_score

    table = run_score(recipe)
    assert table.attrs["generated"] == 0 and table.attrs["stored"] == 0
