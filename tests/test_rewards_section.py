"""One ``rewards:`` section for scoring, training and evaluation; ``scoring.reward_workers`` is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loopback_server import CountingServer

from stagerl.config import ConfigError, load_recipe
from stagerl.engines import make_engine
from stagerl.rewards.math import default_workers

EVAL = """
import json, sys
from stagerl.config import BenchmarkConfig, EvalConfig, RewardsConfig, SamplingConfig
from stagerl.evaluate import evaluate_checkpoint
from stagerl.rewards.math.pool import pool_pids
url, data, out, workers = sys.argv[1:5]
cfg = EvalConfig(benchmarks=[BenchmarkConfig(name="mini", source=data, k=2)], engine="openai",
                 options={"base_url": url, "api_key_env": ""}, sampling=SamplingConfig(max_tokens=8))
res = evaluate_checkpoint("served", "m", cfg, out, rewards=RewardsConfig(workers=int(workers)))
print(json.dumps({"pass@1": res["mini"]["pass@1"], "workers": len(pool_pids())}))
"""


def test_reward_workers_under_scoring_is_an_error_naming_the_new_key():
    with pytest.raises(ConfigError, match=r"scoring.reward_workers: deprecated.*rewards: \{workers: 3\}"):
        load_recipe({"scoring": {"reward_workers": 3}})
    assert load_recipe({"rewards": {"workers": 3}}).rewards.workers == 3


def test_evaluation_grades_with_rewards_workers(tmp_path):
    # an answer only Math-Verify settles (sqrt(49) = 7), so the grading pool starts: with the
    # workers the rewards section asks for, not one per CPU
    data = tmp_path / "mini.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "domain": "math", "prompt": f"{i}?", "answer": "7"}) + "\n"
                            for i in range(3)))
    want = default_workers() + 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                          os.environ.get("PYTHONPATH", "")])}
    with CountingServer(content="So \\boxed{\\sqrt{49}}", delay=0.0) as server:
        done = subprocess.run([sys.executable, "-c", EVAL, server.url, str(data), str(tmp_path / "eval"), str(want)],
                              capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"pass@1": 1.0, "workers": want}


def test_engines_are_context_managers(tiny_model_dir):
    with make_engine("transformers", tiny_model_dir, device="cpu") as engine:
        assert len(engine.generate(["hi"], n=2, max_tokens=2, seed=0)[0]) == 2
    assert engine.model is None  # closed on leaving the block
