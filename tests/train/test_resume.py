"""A stage SIGKILLed mid-way resumes from its last checkpoint: rows kept byte for byte, each step once,
the data order continued, and (one CPU process) the same rewards and losses as an uninterrupted run."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from stagerl.config import StageConfig
from stagerl.data.prompts import to_messages
from stagerl.status import status_lines
from stagerl.train import stage_dataset, train_stages
from stagerl.train.resume_state import STATE_FILE

STEPS, EVERY = 4, 1
SAME = ("reward", "reward_std", "kl", "entropy", "completion_length", "loss")


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def kill_when(kit, recipe: Path, ready, timeout: float = 1800) -> float:
    """Run ``stagerl train RECIPE``; SIGKILL the command (its parent process only) once ``ready()``; check that
    the stage's own process dies with it; return the time of the kill."""
    proc = subprocess.Popen([sys.executable, "-m", "stagerl.cli", "train", str(recipe)], env=kit.cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None and time.time() < deadline, "the command ended or hung before the kill"
            time.sleep(0.05)
        trainers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        killed = time.time()
        proc.wait()
        for pid in trainers:  # the stage's own process dies with the command
            while alive(pid) and time.time() - killed < 30:
                time.sleep(0.1)
            assert not alive(pid), "the stage's training process outlived the killed command"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


def prompts_per_step(stage_dir: Path) -> dict[int, list[str]]:
    """The prompts TRL itself logged for each step (``log_completions``), as problem statements."""
    out = {}
    for f in sorted((stage_dir / "checkpoints" / "completions").glob("completions_*.parquet")):
        df = pd.read_parquet(f)
        out[int(df["step"].iloc[0])] = sorted(p[-1]["content"] for p in df["prompt"])
    return out


def test_sigkilled_stage_resumes_where_it_stopped(kit, make_run, tiny_model_dir, tmp_path):
    stage = kit.tiny_stage(max_steps=STEPS, checkpoint_every=EVERY, keep_checkpoints=2,
                           trl={"log_completions": True, "num_completions_to_print": 0})
    recipe, run_dir = make_run(tiny_model_dir, [stage], name="killed")
    out = run_dir / "stages" / "1_s1"

    # kill the command (its parent process only) once a checkpoint is complete, mid-stage; `stagerl status`
    # (read-only, lock untouched) just before the kill, after it, and after the resume
    seen_running = []

    def ready():
        if not (out / "checkpoints" / f"checkpoint-{2 * EVERY}" / STATE_FILE).exists():  # two steps: a pace
            return False
        seen_running.extend(status_lines(run_dir))
        return True

    kill_when(kit, recipe, ready)
    assert not (out / "stage.json").exists(), "the stage finished before it was killed: nothing tested"
    before = kit.metric_lines(run_dir)
    assert 1 <= len(before) < STEPS
    assert seen_running[1].startswith("  working now: stagerl train, PID "), seen_running
    assert any(re.fullmatch(rf"  stage 1_s1: step [23] of {STEPS}, reward [0-9.]+, \d+ s/step, at most .+ left", line)
               for line in seen_running), seen_running
    killed = status_lines(run_dir.parent)  # a folder of run folders: a block per run
    assert killed[0] == str(run_dir) and "did not finish (killed?); run it again to resume" in killed[1], killed
    assert any(line.startswith(f"  stage 1_s1: step {len(before)} of {STEPS}, ") and line.endswith(
        "stopped (no process works here): rerun the command to resume") for line in killed), killed

    # the same command again resumes; an uninterrupted run of the same recipe is the reference
    done = kit.stagerl("train", str(recipe))
    assert done.returncode == 0, done.stderr[-3000:]

    shown = kit.stagerl("status", str(run_dir))
    assert shown.returncode == 0 and "  idle: last `stagerl train` finished " in shown.stdout, shown.stderr[-2000:]
    assert f"  stage 1_s1: finished after {STEPS} steps, it reached its step limit (max_steps {STEPS})" in shown.stdout
    info = kit.stage_json(run_dir)
    resumed = info["resumed_from"]
    assert resumed is not None and resumed % EVERY == 0 and resumed <= len(before)
    after = kit.metric_lines(run_dir)
    assert after[:resumed] == before[:resumed]                  # earlier rows untouched, byte for byte
    rows = [json.loads(x) for x in after]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))   # each step once, to the end
    assert info["steps"] == STEPS and info["reason"] == "max_steps"
    assert rows[-1]["seconds"] >= rows[resumed - 1]["seconds"]      # stage time continues
    kept = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert kept == [f"checkpoint-{STEPS - EVERY}", f"checkpoint-{STEPS}"]  # keep_checkpoints=2

    # the data order continued: step s trained on the s-th mixed batch of the stage's dataset
    dataset, _ = stage_dataset(kit.MATH + kit.CODE, StageConfig(**stage), to_messages)
    seen = prompts_per_step(out)
    assert sorted(seen) == list(range(1, STEPS + 1))
    for step, prompts in seen.items():
        batch = dataset.select(range((step - 1) * 2, step * 2))
        assert prompts == sorted(r["prompt"][-1]["content"] for r in batch for _ in range(2)), step

    # one CPU process: RNG, optimizer and data are restored, so the resumed steps equal an uninterrupted run's
    # (trained here in-process: the same code, without the command's start-up)
    train_stages(tiny_model_dir, {"L1": kit.MATH + kit.CODE}, [StageConfig(**stage)], tmp_path / "ref", isolate=False)
    ref_rows = [json.loads(x) for x in kit.metric_lines(tmp_path / "ref")]
    for r, q in zip(rows, ref_rows):
        # equal up to float reduction order (several CPU threads may sum in another order)
        assert {k: r[k] for k in SAME} == pytest.approx({k: q[k] for k in SAME}, rel=1e-4, abs=1e-7), r["step"]
