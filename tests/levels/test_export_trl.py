"""Levels out for plain TRL (issue 23): the README's lines, run exactly as written (two steps of an
unmodified trl.GRPOTrainer with stagerl.rewards.trl_reward on the embedded model), on our verl export."""

import re
from pathlib import Path

from stagerl.levels import build_levels, load_rules
from stagerl.levels.export_verl import export_verl
from stagerl.scoring.published import read_published

from test_published import FIX, flat_problems

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    text = README.read_text()
    block = re.search(r"<!-- trl-example -->\s*```python\n(.*?)```\s*<!-- /trl-example -->", text, re.S).group(1)
    return "\n".join(line[2:] if line.startswith("  ") else line for line in block.splitlines())


def test_readme_trains_two_steps_with_plain_trl(tmp_path, monkeypatch, smollm2_dir):
    levels = build_levels(read_published(FIX / "flat.csv", "flat"), load_rules("paper"), problems=flat_problems())
    export_verl(levels, tmp_path / "levels-verl")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_block(), "README.md:trl-example", "exec"), scope)
    trainer = scope["trainer"]
    assert type(trainer).__module__.startswith("trl.") and trainer.state.global_step == 2
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    assert rewards and all(0.0 <= r <= 1.0 for r in rewards)  # our reward ran inside TRL's step
    assert (tmp_path / "grpo-L2").is_dir()
