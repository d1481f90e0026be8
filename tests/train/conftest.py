"""Shared by the training tests: one torch thread, run folders with levels written as the pipeline writes
them, a recipe file for the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from stagerl.data.problem import Problem
from stagerl.levels.build import write_levels

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: helpers (parity.py) beside the tests



@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core box OpenMP spin-waits make 2 threads 2x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SRC = str(Path(__file__).resolve().parents[2] / "src")

MATH = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1)) for i in range(6)]
CODE = [Problem(id=f"echo{i}", domain="code", prompt=f"Read a number and print it plus {i}.",
                tests={"inputs": ["1\n"], "outputs": [f"{1 + i}\n"]}) for i in range(3)]


def tiny_stage(**kw) -> dict:
    base = dict(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                max_completion_length=8, max_steps=4, math_code_ratio=2.0, seed=0, plateau=None)
    return {**base, **kw}


@pytest.fixture()
def make_run(tmp_path):
    """``make_run(policy, stages, levels=None) -> (recipe path, run folder)``; levels default to L1/L2 of MATH+CODE."""

    def make(policy: str, stages: list[dict], levels: dict[str, list[Problem]] | None = None,
             name: str = "r") -> tuple[Path, Path]:
        levels = levels or {"L1": MATH + CODE, "L2": MATH[:4] + CODE[:2]}
        run_dir = tmp_path / "runs" / name
        write_levels({k: pd.DataFrame([p.to_row() for p in v]) for k, v in levels.items()}, run_dir / "levels")
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(yaml.safe_dump({
            "name": name, "runs_dir": str(tmp_path / "runs"),
            # the recipe checks want the level rules' models scored: the policy itself, as in the demo
            "scoring": {"models": [{"name": "tiny", "model": policy}]},
            "levels": {"rules": {"models": {"policy": "tiny"},
                                 "levels": {"L1": "policy in [0,1]", "L2": "policy in [0,1]"}}},
            "train": {"policy": policy, "stages": stages}}))
        return recipe, run_dir

    return make


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def stagerl(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """``python -m stagerl.cli ARGS`` in a real subprocess (output captured)."""
    return subprocess.run([sys.executable, "-m", "stagerl.cli", *args], env=cli_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


def metric_lines(run_dir: Path, stage: str = "1_s1") -> list[str]:
    return (run_dir / "stages" / stage / "metrics.jsonl").read_text().splitlines()


def stage_json(run_dir: Path, stage: str = "1_s1") -> dict:
    return json.loads((run_dir / "stages" / stage / "stage.json").read_text())


@pytest.fixture()
def kit():
    """This module's helpers (``stagerl``, ``metric_lines``, ``tiny_stage``, ``MATH``, ...) for the tests."""
    return sys.modules[__name__]
