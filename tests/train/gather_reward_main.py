"""Run under ``torchrun --standalone --nproc_per_node 2`` (two CPU processes, gloo): each rank grades its own completions with the
stage reward function and writes what it logged to ``<out>/rank<i>.json`` (used by test_reward_gather.py)."""

import json
import sys
from pathlib import Path

from accelerate import PartialState

from stagerl.config import RewardsConfig
from stagerl.data.problem import Problem
from stagerl.train.reward import make_reward

POOL = [Problem(id="m", domain="math", prompt="1+1?", answer="2"),
        Problem(id="c", domain="code", prompt="print 1", tests={"inputs": [""], "outputs": ["1"]})]
RIGHT = {0: "so \\boxed{2}", 1: "```python\nprint(1)\n```"}
WRONG = {0: "\\boxed{3}", 1: "```python\nprint(2)\n```"}

state = PartialState(cpu=True)  # as transformers sets it up on a machine without a GPU
# global batch in process order, groups of G=2: [m+ m+ | m+ c- | c- c-]
if state.process_index == 0:
    local = [(0, RIGHT), (0, RIGHT), (0, RIGHT)]
else:
    local = [(1, WRONG), (1, WRONG), (1, WRONG)]
logged: dict[str, float] = {}
reward = make_reward(POOL, RewardsConfig(workers=1), num_generations=2)
scores = reward(completions=[[{"role": "assistant", "content": texts[i]}] for i, texts in local],
                problem_index=[i for i, _ in local], completion_ids=[[1] * (state.process_index + 2)] * 3,
                log_metric=logged.__setitem__)
Path(sys.argv[1], f"rank{state.process_index}.json").write_text(json.dumps({"scores": scores, "logged": logged}))

# leave the gloo group before exit: tearing it down in interpreter shutdown can abort rank 0 (it hosts
# the rendezvous store) with "terminate called without an active exception" (seen once in CI)
import torch.distributed as dist  # noqa: E402

if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
