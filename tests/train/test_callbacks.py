"""The metrics callback: normalized lines per step and the plateau stop, driven by real Trainer objects."""

import json
import math

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from stagerl.config import PlateauConfig
from stagerl.train import StageMetricsCallback, normalize_logs


def trl_logs(reward: float) -> dict:
    return {"loss": 0.1, "reward": reward, "reward_std": 0.2, "kl": 0.0, "entropy": 1.5,
            "completions/mean_length": 12.0, "completions/clipped_ratio": 0.25, "learning_rate": 1e-6,
            "rewards/problem_reward/mean": reward, "grad_norm": float("nan")}


def test_normalize_keeps_everything_and_cleans_nan():
    row = normalize_logs(trl_logs(0.5), step=3, seconds=1.23456)
    assert row["step"] == 3 and row["reward"] == 0.5 and row["completion_length"] == 12.0
    assert row["clipped_ratio"] == 0.25 and row["seconds"] == 1.235
    assert row["rewards/problem_reward/mean"] == 0.5 and row["grad_norm"] is None
    assert normalize_logs({"reward": 1.0}, 1, 0.0)["kl"] is None


def run_logs(tmp_path, rewards, plateau):
    cb = StageMetricsCallback(tmp_path / "metrics.jsonl", plateau)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    cb.on_train_begin(args, state, control)
    stopped_at = None
    for step, r in enumerate(rewards, start=1):
        state.global_step = step
        cb.on_log(args, state, control, logs=trl_logs(r))
        if control.should_training_stop and stopped_at is None:
            stopped_at = step
    cb.on_log(args, state, control, logs={"train_runtime": 1.0, "train_loss": 0.1})  # summary: no line
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return cb, lines, stopped_at


def test_one_line_per_step_and_plateau_stop(tmp_path):
    cb, lines, stopped = run_logs(tmp_path, [0.1, 0.3, 0.3, 0.3, 0.3],
                                  PlateauConfig(window=1, patience=2, min_delta=0.01))
    assert stopped == 4 and cb.plateau_step == 4
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(x["reward"]) for x in lines)


def test_no_plateau_rule_never_stops(tmp_path):
    _, lines, stopped = run_logs(tmp_path, [0.5] * 6, None)
    assert stopped is None and len(lines) == 6


def test_plateau_on_a_raw_trl_key_and_missing_key(tmp_path):
    _, _, stopped = run_logs(tmp_path, [0.5] * 3, PlateauConfig(metric="rewards/problem_reward/mean", window=1,
                                                                patience=1, min_delta=0.1))
    assert stopped == 2
    with pytest.raises(ValueError, match="plateau metric 'acc' is not logged"):
        run_logs(tmp_path, [0.5], PlateauConfig(metric="acc"))


def test_plateau_on_dev_score_skips_rows_without_it(tmp_path):
    """dev_score is on the rows of dev evaluations only: the others neither count nor fail."""
    cb = StageMetricsCallback(tmp_path / "metrics.jsonl", PlateauConfig(metric="dev_score", window=1, patience=2,
                                                                        min_delta=0.01))
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    cb.on_train_begin(args, state, control)
    cb.on_log(args, state, control, logs={"dev_score": 0.2})                  # the step-0 baseline row
    stopped = []
    for step in range(1, 13):
        state.global_step = step
        logs = trl_logs(0.5) | ({"dev_score": 0.3} if step % 4 == 0 else {})
        cb.on_log(args, state, control, logs=logs)
        stopped.append(control.should_training_stop)
    # evaluations: 0.2 (step 0), 0.3 (step 4: improves), 0.3 (8: stale 1), 0.3 (12: stale 2 -> plateau)
    assert stopped.index(True) + 1 == 12 and cb.plateau_step == 12
    assert cb.tracker.values == [0.2, 0.3, 0.3, 0.3]


def test_resume_keeps_rows_up_to_the_checkpoint_and_rebuilds_the_plateau(tmp_path):
    plateau = PlateauConfig(window=1, patience=3, min_delta=0.01)
    _, lines, _ = run_logs(tmp_path, [0.5, 0.4, 0.4, 0.4], plateau)   # steps 1-4 logged, no plateau yet
    path = tmp_path / "metrics.jsonl"
    raw = path.read_text().splitlines()
    path.write_text("\n".join(raw) + '\n{"step": 5, "rew')           # a line cut short by a kill
    cb = StageMetricsCallback(path, plateau)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    state.global_step = 3                                              # the checkpoint holds steps 1-3
    cb.on_train_begin(args, state, control)
    assert path.read_text().splitlines() == raw[:3]                    # byte for byte; step 4 dropped
    assert [r["step"] for r in cb.rows] == [1, 2, 3] and cb.seconds_before == lines[2]["seconds"]
    assert cb.tracker.stale == 2 and not control.should_training_stop  # rebuilt from the kept rows
    state.global_step = 4
    cb.on_log(args, state, control, logs=trl_logs(0.4))                # the 3rd window without gain
    assert control.should_training_stop and cb.plateau_step == 4
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3, 4]
