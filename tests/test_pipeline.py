"""The whole recipe end to end on the real SmolLM2-135M: score -> levels -> eval -> train -> eval -> report.

Sized for CI (a few minutes on 2 cores): few problems, short outputs, one GRPO step. The level
rule here takes every kept problem (so the stage always has data); the demo uses the real L1.
"""

import json

import pandas as pd
import pytest

from stagerl.config import load_recipe


@pytest.fixture(scope="module")
def run(pipeline_run):
    return pipeline_run


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
    rows = [json.loads(line) for line in lines]  # the step-0 dev baseline, then the one optimizer step
    assert [r["step"] for r in rows] == [0, 1] and rows[1]["reward"] is not None and rows[0]["reward"] is None
    assert all(0 <= r["dev_score"] <= 1 for r in rows)  # held-out dev score at step 0 and step 1 (eval_every: 1)
    assert stage["problems"] == 12 - 2  # the dev holdout is kept out of training
    base = json.loads((run / "eval" / "base" / "results.json").read_text())
    after = json.loads((run / "eval" / "1_s" / "results.json").read_text())
    assert stage["sandbox"]["mode"] == "bwrap"
    for r in (base, after):
        assert r["heldout"]["sandbox"]["mode"] == "bwrap" and r["heldout_code"]["sandbox"]["mode"] == "bwrap"
        assert r["heldout"]["problems"] == 3 and r["heldout"]["k"] == 2 and 0 <= r["heldout"]["pass@1"] <= 1
        lo, hi = r["heldout"]["ci95"]
        assert lo <= r["heldout"]["pass@1"] <= hi and set(r["heldout"]["pass@k"]) == {"1", "2"}
        assert r["heldout_code"]["problems"] == 2 and r["heldout_code"]["by_level"]["all"]["problems"] == 2
    assert base["heldout"]["max_tokens"] == 24 and after["heldout"]["max_tokens"] == 32  # per-checkpoint max_tokens
    pairs = json.loads((run / "eval" / "compare.json").read_text())["pairs"]
    assert {(p["a"], p["b"], p["benchmark"]) for p in pairs} == {("1_s", "base", "heldout"), ("1_s", "base", "heldout_code")}


def test_report_shows_this_runs_numbers(run):
    report = (run / "report" / "report.md").read_text()
    table = pd.read_parquet(run / "pass_rates.parquet")
    assert f"| smollm2 | 12 | 24 | {table['pass_rate'].mean():.3f} |" in report
    base = json.loads((run / "eval" / "base" / "results.json").read_text())["heldout"]
    lo, hi = base["ci95"]
    assert f"| heldout | 2 | 3 | {base['pass@1']:.3f} [{lo:.3f}, {hi:.3f}] |" in report
    assert (run / "report" / "index.html").stat().st_size > 10000
    assert "Code sandbox: `bwrap` (ledger.json, stages/1_s/stage.json, eval/1_s/results.json, eval/base/results.json)." in report
    for png in ("pass_rates.png", "training.png", "benchmarks.png"):
        assert (run / "report" / png).stat().st_size > 1000 and f"({png})" in report


def test_status_reads_the_finished_run(run):
    """`stagerl status` on the finished run: each line's figures are the run's files' (nobody works in it)."""
    from stagerl.status import status_lines

    lines = status_lines(run)
    assert lines[0] == str(run) and lines[1].startswith("  idle: last `stagerl ")
    ledger = json.loads((run / "ledger.json").read_text())["total"]
    assert f"  scoring: done (pass_rates.parquet): {ledger['samples']:,} samples stored (smollm2 {ledger['samples']:,}), " \
           f"{ledger['tokens']:,} tokens" in lines
    assert "  levels: all 12 (of 12 problems)" in lines
    assert "  stage 1_s: finished after 1 step, it reached its step limit (max_steps 1)" in lines
    evals = []
    for name in ("base", "1_s"):  # the base model first
        r = json.loads((run / "eval" / name / "results.json").read_text())
        evals.append(f"  eval {name}: " + ", ".join(f"{b} {r[b]['pass@1']:.3f} [{r[b]['ci95'][0]:.3f}, "
                                                    f"{r[b]['ci95'][1]:.3f}]" for b in ("heldout", "heldout_code")))
    assert [line for line in lines if line.startswith("  eval ")] == evals


def test_rerun_generates_nothing(run, capsys):
    recipe = load_recipe(run / "recipe.yaml")
    from stagerl.pipeline import run_score

    table = run_score(recipe)
    assert table.attrs["generated"] == 0 and table.attrs["stored"] == 0
