"""docs/verl.md is generated (issue 23): `stagerl export-plan paper --format verl` prints it byte for
byte, and every override it passes to verl is a key of verl's own PPO config (where verl is installed)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "verl.md"


def plan() -> str:
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "export-plan", "paper", "--format", "verl"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_docs_verl_is_the_generated_plan():
    text = plan()
    assert text == DOC.read_text(), "docs/verl.md is stale: run `stagerl export-plan paper --format verl > docs/verl.md`"
    for stage, length, entropy in (("stage1", 16384, "0.001"), ("stage2", 24576, "0")):
        block = text.split(f"trainer.default_local_dir=$CKPT/{stage}")[0].rsplit("python -m verl.trainer.main_ppo", 1)[1]
        assert f"data.max_response_length={length}" in block and f"actor_rollout_ref.actor.entropy_coeff={entropy}" in block
        assert "actor_rollout_ref.actor.kl_loss_coef=0.001" in block
    assert text.count("truncated samples out of the loss") == 1  # stage 2 masks them; verl cannot


@pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl is not installed")
def test_every_override_is_a_verl_config_key():
    from omegaconf import OmegaConf

    spec = importlib.util.find_spec("verl")
    config = OmegaConf.load(Path(spec.origin).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml")
    keys = set(re.findall(r"^    ([a-z_.]+)=", plan(), re.M))
    assert len(keys) >= 15
    for key in keys:
        node = config
        for part in key.split("."):
            assert part in node, f"{key}: not a key of verl's PPO config"
            node = node[part]


def test_keep_best_is_named_as_a_gap():
    from stagerl.config import load_recipe
    from stagerl.curriculum.verl_plan import verl_plan

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "src" / "stagerl" / "recipes" / "paper.yaml")
    assert "keep_best" not in verl_plan(recipe)                        # the paper hands on the last policy
    recipe.train.stages[0].keep_best = True
    text = verl_plan(recipe)
    assert text.count("the policy of the best dev score (`keep_best`)") == 1
    assert text.index("keep_best") < text.index("## Stage 2")          # under stage 1, where it is set
