"""Every benchmark script still starts: its imports resolve against the current package and its
arguments parse (a renamed helper once broke benchmarks/training.py unnoticed). The measurements
themselves take minutes to hours and are run by hand (docs/benchmarks.md)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from repo_files import load  # tests/ is on the path: conftest.py

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def script_env() -> dict:
    """The environment a benchmark script runs in here: one thread, the package importable from src/."""
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}


def test_there_are_benchmarks():
    assert {p.stem for p in SCRIPTS} >= {"generation", "math_reward", "code_reward", "scoring", "group_signal", "training"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_script_starts(script):
    env = script_env()
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_training_benchmark_interval_resamples_whole_rounds():
    """The training benchmark's noise is per run, so its interval resamples rounds, not steps: two
    rounds with ratios 0.9 and 1.1 give an interval reaching both (steps resampled would give ~1.0 ± 0.04)."""
    training = load("benchmarks/training.py")
    assert training.ratio_ci([[(11.0, 10.0)] * 11] * 3) == pytest.approx((1.1, 1.1))
    lo, hi = training.ratio_ci([[(9.0, 10.0)] * 11, [(11.0, 10.0)] * 11])
    assert lo == pytest.approx(0.9) and hi == pytest.approx(1.1)


def test_training_benchmark_anchor_trains_with_our_stage_settings(tmp_path):
    """The anchor's GRPOConfig builds under the installed TRL and Transformers (5.19 has no
    ``activation_checkpointing``: the anchor once failed there) and matches what ``grpo_config``
    gives our stage in every setting that changes the work of a step."""
    from stagerl.train.grpo import grpo_config

    training = load("benchmarks/training.py")
    stage = training.stage(5)
    ours, anchor = grpo_config(stage, tmp_path / "ours"), training.anchor_args(stage, tmp_path / "anchor")
    keys = ["learning_rate", "num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
            "steps_per_generation", "beta", "entropy_coef", "max_completion_length", "loss_type", "scale_rewards",
            "use_bias_correction_kl", "mask_truncated_completions", "num_iterations", "temperature", "max_steps",
            "seed", "shuffle_dataset", "lr_scheduler_type", "gradient_checkpointing", "bf16", "use_cpu"]
    assert {k: getattr(anchor, k) for k in keys} == {k: getattr(ours, k) for k in keys}


def test_group_signal_setting_names_a_malformed_override():
    """A setting such as ``dynamic+skip@seed_decay`` (no value) is a clear error naming the setting and
    the keys it may set, not a traceback from building a dict."""
    group_signal = load("benchmarks/group_signal.py")
    with pytest.raises(SystemExit, match=r"bad setting 'dynamic\+skip@seed_decay'.*seed_decay"):
        group_signal.setting("dynamic+skip@seed_decay", 0)
    assert group_signal.setting("dynamic+skip@seed_decay=0.97", 3).seed_decay == 0.97


def test_group_signal_seed_store_resumes_a_scoring_cut_short(tmp_path, tiny_model_dir):
    """A seed store cut short (no done mark, its last sample missing, as a kill leaves it) is resumed,
    not made again: the sample it kept stays, and the missing one is drawn as it was the first time."""
    import argparse
    import sqlite3

    from stagerl.data.generated import demo_math

    group_signal = load("benchmarks/group_signal.py")
    args = argparse.Namespace(math=1, code=0, seed_k=2, max_tokens=4)
    problems = demo_math(n=1, seed=0)
    path = group_signal.seed_store(args, problems, tiny_model_dir, 0, tmp_path)
    db = sqlite3.connect(path)
    first = db.execute("SELECT idx, text FROM samples ORDER BY idx").fetchall()
    with db:
        db.execute("DELETE FROM samples WHERE idx = 1")
        db.execute("UPDATE samples SET text = 'kept' WHERE idx = 0")
    db.close()
    (tmp_path / "scoring" / "done.json").unlink()
    group_signal.seed_store(args, problems, tiny_model_dir, 0, tmp_path)
    db = sqlite3.connect(path)
    again = db.execute("SELECT idx, text FROM samples ORDER BY idx").fetchall()
    db.close()
    assert len(first) == 2
    assert again == [(0, "kept"), first[1]]


def test_group_signal_late_half_reads_only_the_second_half_of_the_steps(tmp_path):
    """The report's second-half ratio counts the steps after the first half, from each seed's metrics."""
    import argparse
    import json

    group_signal = load("benchmarks/group_signal.py")
    args = argparse.Namespace(steps=4, prompts=2, G=4)
    name = "dynamic+skip@seed_decay=0.97"
    folder = group_signal.folder_name(name)
    for seed, scale in ((0, 1), (1, 2)):
        anchor = [{"step": s + 1, "completion_length": 10.0 * scale * (s + 1), "frac_reward_zero_std": 0.5,
                   "seconds": s} for s in range(4)]
        ours = [{"step": s + 1, "completion_length": 10.0 * scale, "groups_generated": s + 1, "groups_signal": 1,
                 "seconds": s} for s in range(4)]
        for arm, rows in (("anchor", anchor), (folder, ours)):
            stage = tmp_path / f"seed{seed}" / arm / "stages" / f"1_{arm}"
            stage.mkdir(parents=True)
            (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    anchor, first = group_signal.late_half(args, tmp_path, [0, 1], "anchor")
    ours, _ = group_signal.late_half(args, tmp_path, [0, 1], name)
    assert first == 3
    # anchor: steps 3, 4 of seed 0 (30, 40 tokens x 2 prompts x G 4) and seed 1 (60, 80), one useful group each step
    assert anchor["tokens"] == (30 + 40 + 60 + 80) * 2 * 4 and anchor["useful_groups"] == 4
    # ours: 3 and 4 groups generated at steps 3, 4; 10 (seed 0) and 20 (seed 1) tokens each
    assert ours["tokens"] == (3 + 4) * 4 * (10 + 20) and ours["useful_groups"] == 4 and ours["trained_groups"] == 8


def test_group_signal_report_only_reprints_recorded_arms_and_names_a_missing_one(tmp_path):
    """``--only report`` trains nothing: it names the arm it lacks, and reports from the measured arms it finds."""
    import json
    import re

    env = script_env()
    cmd = [sys.executable, "benchmarks/group_signal.py", "--steps", "2", "--G", "4", "--seeds", "0,1",
           "--out", str(tmp_path), "--only", "report"]
    missing = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert missing.returncode != 0
    assert f"{tmp_path / 'seed0' / 'anchor.json'} is missing" in missing.stderr
    assert not (tmp_path / "seed0" / "anchor").exists()  # nothing started
    group_signal = load("benchmarks/group_signal.py")
    name = "dynamic+skip"
    folder = group_signal.folder_name(name)
    args = json.loads(re.search(r"arguments: (\{.*?\})\)", missing.stderr).group(1))
    row = {"step": 2, "completion_length": 10.0, "frac_reward_zero_std": 0.5, "groups_generated": 2, "groups_signal": 2,
           "seconds": 1}
    for seed, (anchor_tokens, ours_tokens) in enumerate(((800, 300), (600, 500))):
        key = args | {"seed": seed}
        anchor = {"tokens": anchor_tokens, "useful_groups": 2.0, "trained_groups": 4, "signal_share": 0.5,
                  "tokens_per_useful_group": anchor_tokens / 2}
        ours = {"tokens": ours_tokens, "useful_groups": 4, "trained_groups": 4, "signal_share": 1.0,
                "tokens_per_useful_group": ours_tokens / 4, "generated_groups": 5, "skipped_groups": 3,
                "skipped_seeded": 2, "explored": 1, "explored_signal": 0}
        for arm, m in (("anchor", anchor), (folder, ours)):
            (tmp_path / f"seed{seed}").mkdir(exist_ok=True)
            (tmp_path / f"seed{seed}" / f"{arm}.json").write_text(json.dumps({"args": key, "measure": m}))
            stage = tmp_path / f"seed{seed}" / arm / "stages" / f"1_{arm}"
            stage.mkdir(parents=True)
            (stage / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    # pooled: ours 800 tokens / 8 useful = 100, anchor 1400 / 4 = 350
    assert "RESULT signal_tokens_per_useful_group ours=100.0 anchor=350.0 ratio=0.286 share=1.0 " \
           "seed_ratios=0.188,0.417 " in done.stdout  # 75/400, 125/300
    key["steps"] = 3  # an arm measured with other arguments is named, not rerun
    (tmp_path / "seed1" / "anchor.json").write_text(json.dumps({"args": key, "measure": anchor}))
    other = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert other.returncode != 0 and f"{tmp_path / 'seed1' / 'anchor.json'} is measured with other arguments" \
        in other.stderr


def test_group_signal_results_in_the_docs_reprint_from_the_kept_records():
    """Every ``--only report`` command that docs/benchmarks.md gives over the records kept in docs/results
    prints, from those records alone, a RESULT line that the page shows word for word."""
    import re
    import shlex

    page = (ROOT / "docs" / "benchmarks.md").read_text()
    command_re = r"`OMP_NUM_THREADS=1 \.venv/bin/python (benchmarks/group_signal\.py [^`]*--only report[^`]*)`"
    commands = re.findall(command_re, page)
    assert commands, "docs/benchmarks.md gives no report command over kept records"
    for command in commands:
        argv = shlex.split(" ".join(command.split()))
        assert argv[argv.index("--out") + 1].startswith("docs/results/"), command
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, env=script_env(),
                              cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        result = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert len(result) == 1 and f"`{result[0]}`" in page, (command, result)
