"""Run under ``torchrun --standalone --nproc_per_node 2`` (two CPU processes, gloo): the online trainer
(dynamic sampling) trains 2 steps on the tiny model with a reward whose ``hard*`` problems always score
0, so each process drops and refills its own groups. Each rank writes, per generation round, the step
and the problem ids it generated to ``<out>/rank<i>.json`` (used by test_online_processes.py)."""

import hashlib
import json
import sys
from pathlib import Path

from stagerl.config import OnlineConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.data.prompts import to_messages
from stagerl.train.callbacks import StageMetricsCallback
from stagerl.train.grpo import grpo_config, stage_dataset
from stagerl.train.online import OnlineGRPOTrainer, pool_rows

model_dir, out = sys.argv[1], Path(sys.argv[2])
POOL = [Problem(id=f"{kind}{i}", domain="math", prompt=f"Problem {kind}{i}: what is 2 + 2?", answer="4")
        for i in range(4) for kind in ("hard", "ok")]


class Parity:
    """0 for ``hard*`` problems; otherwise the parity of a hash of the completion (groups differ)."""

    __name__ = "parity"

    def __init__(self) -> None:
        self.rounds: list[dict] = []
        self.trainer = None

    def __call__(self, completions, problem_id, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        self.rounds.append({"step": self.trainer.state.global_step, "ids": list(problem_id)})
        return [0.0 if p.startswith("hard") else float(hashlib.sha256(t.encode()).digest()[0] % 2)
                for p, t in zip(problem_id, texts)]


stage = StageConfig(name="s", levels=["L"], learning_rate=1e-3, num_generations=4, prompts_per_step=4,
                    max_completion_length=6, max_steps=2, plateau=None, math_code_ratio=None, seed=0, beta=0.0,
                    online=OnlineConfig(dynamic_sampling=True, max_extra_rounds=4))
dataset, pool = stage_dataset(POOL, stage)
reward = Parity()
trainer = OnlineGRPOTrainer(model=model_dir, reward_funcs=[reward], args=grpo_config(stage, out / "trainer"),
                            train_dataset=dataset, callbacks=[StageMetricsCallback(out / "metrics.jsonl")],
                            online=stage.online, pool_rows=pool_rows(pool, to_messages))
reward.trainer = trainer
trainer.train()
rank = trainer.accelerator.process_index
(out / f"rank{rank}.json").write_text(json.dumps({"rounds": reward.rounds, "world": trainer.accelerator.num_processes}))
