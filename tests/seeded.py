"""Shared by the per-sample seed tests of every engine (tests/scoring/test_seeds.py: transformers,
tests/engines/test_vllm.py: vLLM): the same two experiments, each test keeping its own assertions."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from stagerl.config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig
from stagerl.data.problem import Problem
from stagerl.levels.rules import bind, load_rules
from stagerl.scoring import score
from stagerl.scoring.run import sample_seed
from stagerl.store import SampleStore


def draw_rounds(problems: list[Problem], engine, tmp_path: Path, k: int,
                runs: tuple[tuple[str, bool, int, int], ...]) -> dict[str, dict[tuple[str, int], str]]:
    """Score ``problems`` once per ``(name, adaptive, round_size, call_size)`` with ``engine`` (the demo's
    rules, policy "m" at T=1, 10 tokens, seed 3); each run's stored texts by (problem id, sample index)."""
    rules = bind(load_rules("demo"), {"policy": "m"})
    ladder = [ModelRef(name="m", temperature=1.0)]
    sampling = SamplingConfig(max_tokens=10, seed=3)
    out = {}
    for name, adaptive, round_size, call_size in runs:
        store = SampleStore(tmp_path / f"{name}.sqlite")
        cfg = ScoringConfig(models=ladder, k=k, adaptive=adaptive, round_size=round_size, sampling=sampling,
                            call_size=call_size)
        score(problems, store, cfg, rules=rules, rewards=RewardsConfig(workers=1), progress=False,
              engine_factory=lambda ref: nullcontext(engine))
        out[name] = {(r["problem_id"], r["idx"]): r["text"] for r in store.samples()}
    return out


def together_alone_other(problems: list[Problem], engine) -> tuple[list, list, list, list]:
    """The seeds (3 per problem), the samples of those seeds asked in one call, the same asked one
    call each, and the first problem's first seed + 1."""
    prompts = [p.prompt for p in problems]
    seeds = [[sample_seed(0, "m", p.id, j) for j in range(3)] for p in problems]
    together = engine.generate(prompts, n=3, temperature=1.0, max_tokens=10, seeds=seeds)
    alone = [[engine.generate([prompts[i]], n=1, temperature=1.0, max_tokens=10, seeds=[[s]])[0][0]
              for s in row] for i, row in enumerate(seeds)]
    other = engine.generate(prompts[:1], n=1, temperature=1.0, max_tokens=10, seeds=[[seeds[0][0] + 1]])
    return seeds, together, alone, other
