"""`stagerl check` builds each stage's real trl.GRPOConfig without a model (issue 19): a value the installed TRL
refuses is an error with its key path, exit 2, in seconds, and `stagerl train` stops on it before any work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST_S = 90  # "in seconds" on a loaded 2-core box: importing trl is most of it, no model is loaded


def stagerl(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stagerl.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def stage(name: str, **trl) -> dict:
    return {"name": name, "levels": ["all"], "num_generations": 2, "prompts_per_step": 2, "max_steps": 1,
            "max_completion_length": 8, "plateau": None, "math_code_ratio": None, "trl": trl}


def recipe(tmp: Path, stages: list[dict]) -> Path:
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "name": "r", "runs_dir": str(tmp / "runs"),
        "data": [{"builtin": "demo_math", "n": 2, "seed": 3}],
        "scoring": {"models": [{"name": "tiny", "model": "some-org/not-here"}]},  # a hub id: never loaded here
        "levels": {"rules": {"models": {"policy": "tiny"}, "levels": {"all": "policy in [0,1]"}}},
        "train": {"policy": "some-org/not-here", "stages": stages}}))
    return path


def test_options_trl_refuses_are_errors_with_their_key_path(tmp_path):
    path = recipe(tmp_path, [
        stage("ok", vllm_importance_sampling_mode="token_truncate", vllm_importance_sampling_clip_max=2.0),
        stage("bounds", vllm_importance_sampling_clip_min=5.0),        # GRPOConfig.__post_init__ raises
        stage("mode", vllm_importance_sampling_mode="sequence_clip"),  # TRL itself checks only when generating
        stage("optim", optim="no_such_optimizer"),                     # Transformers' TrainingArguments raises
        stage("ds", deepspeed=str(tmp_path / "no_such_zero.json")),
        stage("gpu", bf16=True, deepspeed="zero3")])                   # the machine's business: not built here
    t0 = time.perf_counter()
    out = stagerl("check", str(path))
    seconds = time.perf_counter() - t0
    assert out.returncode == 2, out.stdout + out.stderr
    assert seconds < FAST_S
    text = out.stdout
    assert ("train.stages[1].trl.vllm_importance_sampling_clip_min: trl.GRPOConfig (TRL 1.16.0) refuses it: "
            "ValueError: vllm_importance_sampling_clip_min (5.0) must be less than vllm_importance_sampling_clip_max "
            "(3.0).") in text
    assert ("train.stages[2].trl.vllm_importance_sampling_mode: 'sequence_clip' is not one of token_truncate, "
            "token_mask, sequence_truncate, sequence_mask") in text
    assert "train.stages[3].trl.optim: trl.GRPOConfig (TRL 1.16.0) refuses it: ValueError:" in text
    assert "no_such_optimizer" in text
    assert f"train.stages[4].trl.deepspeed: DeepSpeed config '{tmp_path / 'no_such_zero.json'}' does not exist" in text
    assert "train.stages[0]" not in text.split("problem(s)")[-1] and "train.stages[5]" not in text.split("problem(s)")[-1]
    assert "\n4 problem(s)" in text

    trained = stagerl("train", str(path))  # the same check stops training before any work
    assert trained.returncode == 2 and "train.stages[3].trl.optim" in trained.stderr
    assert not (tmp_path / "runs").exists()
