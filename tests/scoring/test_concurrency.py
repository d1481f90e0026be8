"""Scoring keeps a served model's ``concurrency`` requests in flight (real loopback HTTP server)."""

from __future__ import annotations

import pytest
from loopback_server import CountingServer

from stagerl.config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig
from stagerl.data.problem import Problem
from stagerl.levels.rules import bind, load_rules
from stagerl.scoring import score
from stagerl.store import SampleStore


@pytest.mark.parametrize("concurrency, call_size", [(32, 64), (24, 8)])
def test_scoring_keeps_concurrency_requests_in_flight(tmp_path, concurrency, call_size):
    # rounds of 4 (adaptive; answers are always wrong, so every pair draws all k = 8 in two rounds):
    # main kept at most call_size // 4 requests in flight (16 and 2 here)
    problems = [Problem(id=f"p{i}", domain="math", prompt=f"What is {i} + 7?", answer=str(i + 7)) for i in range(40)]
    rules = bind(load_rules("demo"), {"policy": "served"})
    with CountingServer(expect=concurrency) as server:
        ref = ModelRef(name="served", model="m", engine="openai",
                       options={"base_url": server.url, "concurrency": concurrency, "api_key_env": ""})
        store = SampleStore(tmp_path / "samples.sqlite")
        cfg = ScoringConfig(models=[ref], k=8, adaptive=True, round_size=4, call_size=call_size,
                            sampling=SamplingConfig(max_tokens=8))
        table = score(problems, store, cfg, rules=rules, rewards=RewardsConfig(workers=1), progress=False)
    assert len(store) == 40 * 8 and (table["samples"] == 8).all()
    assert server.peak == concurrency
    assert all(b.get("n", 1) == 1 and "seed" in b for b in server.bodies)  # one seeded request per sample
    assert len({b["seed"] for b in server.bodies}) == 40 * 8
