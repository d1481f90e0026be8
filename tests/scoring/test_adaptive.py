"""Adaptive stopping with real level rules (the ``demo`` preset's L1 = policy in (0, 1))."""

from __future__ import annotations

import json

import pytest

from stagerl.config import ModelRef, SamplingConfig, ScoringConfig
from stagerl.data.problem import Problem
from stagerl.engines.base import Completion
from stagerl.scoring import needs_samples, score, verdicts
from stagerl.scoring.adaptive import next_indices, stats_of
from stagerl.scoring.run import _messages
from stagerl.store import SampleStore

K = 8


@pytest.fixture
def rules_mod():
    return pytest.importorskip("stagerl.levels.rules")  # skipped only until the levels package lands


@pytest.fixture
def rules(rules_mod):
    # level 1 of the demo preset (which also has a level 2 since the demo trains two stages)
    return rules_mod.load_rules({"models": {"policy": "m"}, "levels": {"L1": "policy in (0,1)"}})


def test_a_pair_stops_once_its_verdicts_are_decided(rules):
    models = ["m"]
    assert needs_samples(rules, {}, models, K, "p", "math") == {"m"}
    assert needs_samples(rules, {"m": (1, 2)}, models, K, "p", "math") == set()  # one success, one failure
    assert verdicts(rules, {"m": (1, 2)}, models, K, "p", "math")["L1"] is True
    assert needs_samples(rules, {"m": (2, 2)}, models, K, "p", "math") == {"m"}  # could still be 8/8
    assert needs_samples(rules, {"m": (0, 7)}, models, K, "p", "math") == {"m"}  # could still be 1/8
    assert verdicts(rules, {"m": (0, 7)}, models, K, "p", "math")["L1"] is None
    assert needs_samples(rules, {"m": (0, 8)}, models, K, "p", "math") == set()  # all drawn
    assert verdicts(rules, {"m": (0, 8)}, models, K, "p", "math")["L1"] is False
    assert verdicts(rules, {"m": (8, 8)}, models, K, "p", "math")["L1"] is False


def test_next_indices_and_stats():
    assert next_indices({}, 8, 4) == [0, 1, 2, 3]
    assert next_indices({0: 1.0, 1: 0.0, 3: 1.0}, 8, 2) == [2, 4]
    assert next_indices(range(8), 8, 4) == []
    assert stats_of({0: 1.0, 1: 0.5, 2: 1.0, 9: 1.0}, 8) == (2, 3)


class ScriptEngine:
    """Answers problem ``pid`` at sample index i with ``SCRIPT[pid][i]`` (graded by the real math reward)."""

    name = "script"

    def __init__(self, script: dict[str, str], problems: list[Problem]) -> None:
        self.script, self.next = script, {p.id: 0 for p in problems}
        self.ids = {json.dumps(_messages(p)): p for p in problems}
        self.calls = 0

    def generate(self, prompts, n=1, temperature=0.6, top_p=0.95, max_tokens=1024, seed=None, seeds=None):
        self.calls += 1
        out = []
        for prompt in prompts:
            p = self.ids[json.dumps(prompt)]
            start, self.next[p.id] = self.next[p.id], self.next[p.id] + n
            out.append([Completion(f"\\boxed{{{p.answer}}}" if c == "1" else "\\boxed{wrong}", 3, "stop")
                        for c in self.script[p.id][start:start + n]])
        return out

    def close(self) -> None:
        pass


def test_adaptive_run_draws_a_prefix_of_the_fixed_run_and_gives_its_labels(tmp_path, rules, rules_mod):
    script = {"mixed": "10110101", "late": "00000001", "none": "00000000", "all": "11111111", "early": "01000000"}
    problems = [Problem(id=pid, domain="math", prompt=f"Problem {pid}?", answer="7") for pid in script]
    ladder = [ModelRef(name="m"), ModelRef(name="extra")]  # 'extra' appears in no rule
    run = {}
    for name, adaptive in (("fixed", False), ("adaptive", True)):
        store = SampleStore(tmp_path / f"{name}.sqlite")
        cfg = ScoringConfig(models=ladder, k=K, adaptive=adaptive, round_size=2, sampling=SamplingConfig(max_tokens=8))
        table = score(problems, store, cfg, rules=rules, progress=False,
                      engine_factory=lambda ref: ScriptEngine(script, problems), out_dir=tmp_path / name)
        run[name] = (store, table.set_index(["problem_id", "model"]))
    (fs, ft), (ast, at) = run["fixed"], run["adaptive"]
    assert len(fs) == 2 * K * len(script)
    drawn = {pid: at.loc[(pid, "m"), "samples"] for pid in script}
    assert drawn == {"mixed": 2, "late": 8, "none": 8, "all": 8, "early": 2}
    assert (at.xs("extra", level="model")["samples"] == 0).all()
    assert at.loc[("mixed", "m"), "decided_early"] and not at.loc[("late", "m"), "decided_early"]
    fixed_rows = {(r["problem_id"], r["model"], r["idx"]): r["text"] for r in fs.samples()}
    for r in ast.samples():  # a prefix of the fixed run's samples, index for index
        assert fixed_rows[(r["problem_id"], r["model"], r["idx"])] == r["text"] and r["idx"] < drawn[r["problem_id"]]
    for pid in script:
        want = rules_mod.label(rules, {"m": ft.loc[(pid, "m"), "pass_rate"]}, pid, "math")
        bounds = {m: (at.loc[(pid, m), "rate_lo"], at.loc[(pid, m), "rate_hi"]) for m in ("m", "extra")}
        assert rules_mod.decide(rules, bounds, pid, "math") == want
        assert rules_mod.label(rules, {"m": at.loc[(pid, "m"), "pass_rate"]}, pid, "math") == want
    # resuming a finished adaptive run generates nothing
    cfg = ScoringConfig(models=ladder, k=K, adaptive=True, round_size=2, sampling=SamplingConfig(max_tokens=8))
    again = score(problems, ast, cfg, rules=rules, progress=False,
                  engine_factory=lambda ref: pytest.fail("no engine should be built"))
    assert again.attrs["generated"] == 0


def test_store_made_with_other_settings_is_refused(tmp_path):
    from stagerl.scoring import ScoringError

    store = SampleStore(tmp_path / "s.sqlite")
    p = [Problem(id="a", domain="math", prompt="1+1?", answer="2")]
    score(p, store, ScoringConfig(models=[ModelRef(name="m")], k=2, adaptive=False,
                                  sampling=SamplingConfig(max_tokens=8)), progress=False,
          engine_factory=lambda ref: ScriptEngine({"a": "10"}, p))
    with pytest.raises(ScoringError, match=r"model 'm' made with other settings.*max_tokens"):
        score(p, store, ScoringConfig(models=[ModelRef(name="m")], k=2, adaptive=False,
                                      sampling=SamplingConfig(max_tokens=16)), progress=False,
              engine_factory=lambda ref: ScriptEngine({"a": "10"}, p))
