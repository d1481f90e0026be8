"""Run under ``torchrun --standalone --nproc_per_node 2`` (two CPU processes, gloo): the online trainer
(dynamic sampling) trains 2 steps on the tiny model with a reward whose ``hard*`` problems always score
0, so each process drops and refills its own groups. Each rank writes, per generation round, the step
and the problem ids it generated to ``<out>/rank<i>.json`` (used by test_online_processes.py)."""

import json
import sys
from pathlib import Path

from stagerl.config import OnlineConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.data.prompts import to_messages
from stagerl.train.callbacks import StageMetricsCallback
from stagerl.train.grpo import grpo_config, stage_dataset
from stagerl.train.online import OnlineGRPOTrainer, pool_rows

from parity import ParityReward  # tests/train, this script's folder, is on the path

model_dir, out = sys.argv[1], Path(sys.argv[2])
POOL = [Problem(id=f"{kind}{i}", domain="math", prompt=f"Problem {kind}{i}: what is 2 + 2?", answer="4")
        for i in range(4) for kind in ("hard", "ok")]


stage = StageConfig(name="s", levels=["L"], learning_rate=1e-3, num_generations=4, prompts_per_step=4,
                    max_completion_length=6, max_steps=2, plateau=None, math_code_ratio=None, seed=0, beta=0.0,
                    online=OnlineConfig(dynamic_sampling=True, max_extra_rounds=4))
dataset, pool = stage_dataset(POOL, stage)
reward = ParityReward()
trainer = OnlineGRPOTrainer(model=model_dir, reward_funcs=[reward], args=grpo_config(stage, out / "trainer"),
                            train_dataset=dataset, callbacks=[StageMetricsCallback(out / "metrics.jsonl")],
                            online=stage.online, pool_rows=pool_rows(pool, to_messages))
reward.trainer = trainer
trainer.train()
rank = trainer.accelerator.process_index
rounds = [{"step": step, "ids": ids} for step, ids in zip(reward.steps, reward.calls)]
(out / f"rank{rank}.json").write_text(json.dumps({"rounds": rounds, "world": trainer.accelerator.num_processes}))

# leave the gloo group before exit: tearing it down in interpreter shutdown can abort rank 0 (it hosts
# the rendezvous store) with "terminate called without an active exception" (seen once in CI)
import torch.distributed as dist  # noqa: E402

if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
