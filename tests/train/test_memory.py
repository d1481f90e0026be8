"""Stages do not leak: each trains in its own process, so the command's memory returns to where it was."""

import resource
from pathlib import Path

import pytest

from stagerl.config import StageConfig
from stagerl.train import train_stages


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def two_stages(**kw) -> list[StageConfig]:
    base = dict(levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2, max_completion_length=6,
                max_steps=1, math_code_ratio=None, plateau=None)
    return [StageConfig(name="s1", **{**base, **kw}), StageConfig(name="s2", **{**base, **kw}, seed=1)]


def check_released(policy: str, problems, tmp_path, trained_mb: float) -> None:
    before = rss_mb()
    results = train_stages(policy, {"L1": problems}, two_stages(), tmp_path / "run", isolate=True)
    after = rss_mb()
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert [r["steps"] for r in results] == [1, 1]
    assert after - before < 64, (before, after)                   # the command's memory is back near its start
    assert children_peak > before + trained_mb, (children_peak, before)   # the training itself lived elsewhere


def test_two_stages_release_their_memory(kit, tiny_model_dir, tmp_path):
    check_released(tiny_model_dir, kit.MATH[:3], tmp_path, trained_mb=0)


@pytest.mark.slow
def test_two_smollm2_stages_release_their_memory(kit, smollm2_dir, tmp_path):
    # policy + reference model + Adam states of 135M parameters: well over 1 GB while a stage trains
    check_released(smollm2_dir, kit.MATH[:3], tmp_path, trained_mb=1000)
