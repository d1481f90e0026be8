"""Run under ``torchrun --standalone --nproc_per_node 2``: one tiny GRPO stage with a dev set, two CPU
processes (used by test_dev_eval_multiprocess.py). Arguments: model folder, run folder."""

import sys

import torch

from stagerl.config import DevConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.train import train_stages

# guarded: train_stages runs the stage in a spawned child process, which imports this file again
if __name__ == "__main__":
    torch.set_num_threads(1)
    MATH = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1)) for i in range(8)]
    stage = StageConfig(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                        max_completion_length=8, max_steps=2, math_code_ratio=None, seed=0, plateau=None,
                        eval_every=2, dev=DevConfig(holdout=3, max_tokens=6), dev_k=2, keep_best=True, report_to="none")
    train_stages(sys.argv[1], {"L1": MATH}, [stage], sys.argv[2])
