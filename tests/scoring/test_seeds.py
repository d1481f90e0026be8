"""Per-sample seeds through a real engine: rounds of any size draw the fixed protocol's samples."""

from __future__ import annotations

import pytest

from contextlib import nullcontext

from stagerl.config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig
from stagerl.data.problem import Problem
from stagerl.engines.hf import TransformersEngine
from stagerl.scoring import score
from stagerl.store import SampleStore
from seeded import draw_rounds, together_alone_other

K = 8
PROBLEMS = [Problem(id="short", domain="math", prompt="1+1?", answer="2"),
            Problem(id="long", domain="math", prompt="What is the sum of the first ten odd numbers? Show it.",
                    answer="100"),
            Problem(id="mid", domain="math", prompt="Compute 12 * 12.", answer="144")]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    with TransformersEngine(tiny_model_dir, device="cpu", batch_size=5) as eng:  # closed after the module
        yield eng


def test_rounds_of_1_and_4_draw_exactly_the_fixed_runs_samples(tmp_path, engine):
    # the tiny random model never answers right, so L1 = "m in (0,1)" stays open until all k are
    # drawn: every round size ends with all K samples of every problem, drawn in other calls
    runs = draw_rounds(PROBLEMS, engine, tmp_path, K, (("fixed", False, K, 24), ("r1", True, 1, 2), ("r4", True, 4, 7)))
    assert len(runs["fixed"]) == len(PROBLEMS) * K
    assert runs["r1"] == runs["fixed"] and runs["r4"] == runs["fixed"]
    assert len(set(runs["fixed"].values())) > len(PROBLEMS)  # real sampling: samples differ


def test_engine_sample_depends_on_its_seed_not_on_its_call(engine):
    prompts = [p.prompt for p in PROBLEMS]
    seeds, together, alone, other = together_alone_other(PROBLEMS, engine)
    assert [[c.text for c in r] for r in together] == [[c.text for c in r] for r in alone]
    assert other[0][0].text != together[0][0].text
    with pytest.raises(ValueError, match="seeds must hold"):
        engine.generate(prompts, n=2, max_tokens=4, seeds=seeds)


def test_a_models_own_max_tokens_is_used_and_stored_with_its_settings(tmp_path, engine):
    from stagerl.scoring import ScoringError

    store = SampleStore(tmp_path / "s.sqlite")
    ladder = [ModelRef(name="short", temperature=1.0, max_tokens=3), ModelRef(name="long", temperature=1.0)]
    cfg = ScoringConfig(models=ladder, k=2, adaptive=False, sampling=SamplingConfig(max_tokens=12))
    score(PROBLEMS[:2], store, cfg, rewards=RewardsConfig(workers=1), progress=False,
          engine_factory=lambda ref: nullcontext(engine))
    tokens = {m: max(r["tokens"] for r in store.samples(model=m)) for m in ("short", "long")}
    assert tokens["short"] <= 3 < tokens["long"]
    assert store.get_meta("model/short")["max_tokens"] == 3 and store.get_meta("model/long")["max_tokens"] == 12
    with pytest.raises(ScoringError, match=r"model 'short' made with other settings.*max_tokens"):
        cfg = ScoringConfig(models=[ModelRef(name="short", temperature=1.0, max_tokens=5)], k=2, adaptive=False,
                            sampling=SamplingConfig(max_tokens=12))
        score(PROBLEMS[:2], store, cfg, progress=False, engine_factory=lambda ref: nullcontext(engine))
