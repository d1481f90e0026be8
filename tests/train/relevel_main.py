"""Re-levelling of one stage's candidates, run as one process or under ``accelerate launch`` with several
(used by test_relevel_processes.py). Arguments: model folder, run folder, ``fewshot`` or ``plain``."""

import sys

import torch

from stagerl.config import PromptConfig, RelevelConfig, StageConfig
from stagerl.data.generated import demo_math
from stagerl.data.prompts import to_messages
from stagerl.store import SampleStore
from stagerl.train.relevel import relevel_stage

LEVELS = {"L": demo_math(n=7, seed=0)}  # 7: the two processes get shares of 4 and 3
STAGE = StageConfig(name="s2", levels=["L"], max_completion_length=32, temperature=0.8, seed=0,
                    relevel=RelevelConfig(k=4, round_size=2))


def run(model: str, run_dir: str, prompt: str) -> list[str]:
    messages = PromptConfig(fewshot=True).messages if prompt == "fewshot" else to_messages
    SampleStore(f"{run_dir}/samples.sqlite").set_meta("scoring", {"k": 4, "models": ["ref"]})
    return [p.id for p in relevel_stage(model, STAGE, LEVELS, run_dir, 2, messages=messages, progress=False)]


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(*sys.argv[1:4])
