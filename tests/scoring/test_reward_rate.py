"""Level rules that measure a domain by mean reward (``rate: {code: reward}``): partial credit counts.

Real code problems graded in the real sandbox; a scripted engine decides which program each sample
is (all tests pass, half of them, none), so the expected draws and labels are known exactly.
"""

from __future__ import annotations

import json
import random

import pytest

from stagerl.config import ModelRef, SamplingConfig, ScoringConfig, StopConfig
from stagerl.data.problem import Problem
from stagerl.engines.base import Completion
from stagerl.levels.build import label_table
from stagerl.levels.rules import RulesError, label, load_rules
from stagerl.scoring import ScoringError, needs_samples, score
from stagerl.scoring.adaptive import stats_of
from stagerl.scoring.run import _messages
from stagerl.store import SampleStore

K = 8
PROGRAMS = {  # echo the number: all 4 tests, the first 2 (x <= 2), none
    "1": "```python\nprint(int(input()))\n```",
    "h": "```python\nx = int(input())\nprint(x if x <= 2 else -1)\n```",
    "0": "```python\nprint(-1)\n```",
}
SPEC = {"models": {"policy": "m"}, "levels": {"L1": "policy in (0,1)"}}


class CodeScript:
    """Sample i of problem p is the program ``PROGRAMS[script[p][i]]`` (a math problem: right or wrong)."""

    name = "script"

    def __init__(self, script: dict[str, str], problems: list[Problem]) -> None:
        self.script, self.next = script, {p.id: 0 for p in problems}
        self.ids = {json.dumps(_messages(p)): p for p in problems}

    def generate(self, prompts, n=1, seeds=None, **kw):
        out = []
        for prompt in prompts:
            p = self.ids[json.dumps(prompt)]
            start, self.next[p.id] = self.next[p.id], self.next[p.id] + n
            out.append([Completion(PROGRAMS[c] if p.domain == "code" else
                                   f"\\boxed{{{p.answer if c == '1' else 'no'}}}", 12, "stop")
                        for c in self.script[p.id][start:start + n]])
        return out

    def close(self) -> None:
        pass


def _problems(script: dict[str, str]) -> list[Problem]:
    tests = {"inputs": ["1\n", "2\n", "3\n", "4\n"], "outputs": ["1", "2", "3", "4"]}
    return [Problem(id=pid, domain="math", prompt=f"1 + 6? ({pid})", answer="7") if pid.startswith("math")
            else Problem(id=pid, domain="code", prompt=f"Echo the number ({pid}).", tests=tests) for pid in script]


def test_the_rate_key_is_read_and_checked():
    assert load_rules(SPEC).measure("code") == "pass"
    rules = load_rules({**SPEC, "rate": {"code": "reward"}})
    assert (rules.measure("code"), rules.measure("math")) == ("reward", "pass")
    with pytest.raises(RulesError, match=r"rules\.rate\.code: expected a mapping domain -> pass \| reward"):
        load_rules({**SPEC, "rate": {"code": "partial"}})
    with pytest.raises(RulesError, match=r"rules\.rate: expected a mapping"):
        load_rules({**SPEC, "rate": "reward"})
    assert stats_of({0: 0.5, 1: 0.25, 2: 1.0, 9: 1.0}, 8, "reward") == (1.75, 3)
    assert stats_of({0: 0.5, 1: 0.25, 2: 1.0}, 8) == (1, 3)


def test_adaptive_scoring_by_mean_reward_gives_the_fixed_runs_labels(tmp_path):
    script = {"partial": "0h000000", "flat": "hhhhhhhh", "none": "00000000", "mixed": "10000000",
              "all": "11111111", "math-none": "00000000", "math-mixed": "01111111"}
    problems = _problems(script)
    by_reward = load_rules({**SPEC, "rate": {"code": "reward"}})
    ladder = [ModelRef(name="m")]
    tables = {}
    for name, rules, adaptive in (("fixed", by_reward, False), ("reward", by_reward, True),
                                  ("pass", load_rules(SPEC), True)):
        cfg = ScoringConfig(models=ladder, k=K, adaptive=adaptive, round_size=2, sampling=SamplingConfig(max_tokens=64))
        table = score(problems, SampleStore(tmp_path / f"{name}.sqlite"), cfg, rules=rules, progress=False,
                      engine_factory=lambda ref: CodeScript(script, problems))
        tables[name] = table
    fixed = tables["fixed"].set_index("problem_id")
    assert fixed.loc["partial", "mean_reward"] == pytest.approx(0.5 / 8)
    assert fixed.loc["flat", ["pass_rate", "mean_reward"]].tolist() == [0.0, 0.5]
    drawn = tables["reward"].set_index("problem_id")["samples"].to_dict()
    # partial credit settles "in (0,1)" as soon as it is seen; a pass rate of 0 needs all k samples to say no
    assert drawn == {"partial": 2, "flat": 2, "none": 8, "mixed": 2, "all": 8, "math-none": 8, "math-mixed": 2}
    assert tables["pass"].set_index("problem_id")["samples"].to_dict()["partial"] == 8
    labels = {name: label_table(tables[name], rules).set_index("problem_id")["L1"].to_dict()
              for name, rules in (("fixed", by_reward), ("reward", by_reward), ("pass", load_rules(SPEC)))}
    want = {pid: label(by_reward, {"m": fixed.loc[pid, "mean_reward" if pid[:4] != "math" else "pass_rate"]},
                       pid, fixed.loc[pid, "domain"])["L1"] for pid in script}
    assert labels["fixed"] == labels["reward"] == want
    assert want == {"partial": True, "flat": True, "none": False, "mixed": True, "all": False,
                    "math-none": False, "math-mixed": True}
    assert labels["pass"] == {**want, "partial": False, "flat": False}  # what pass rates say of the same samples
    assert label_table(tables["reward"], by_reward).set_index("problem_id").loc["flat", "rate_m"] == 0.5


def test_the_bounds_hold_the_k_sample_mean_reward_for_random_rewards():
    """For random partial rewards, stopping where ``needs_samples`` says gives the k-sample labels."""
    rules = load_rules({"models": {"a": "small", "b": "big"}, "rate": {"code": "reward"},
                        "levels": {"L1": "a in (0,0.5]", "L2": {"all": ["a in [0,0.2]", "b in (0.3,1)"]}}})
    rng = random.Random(0)
    for trial in range(300):
        rewards = {m: [rng.choice([0.0, 0.0, 0.25, 0.5, 1.0]) * (rng.random() < 0.7) for _ in range(K)]
                   for m in ("small", "big")}
        full = {m: sum(r) / K for m, r in rewards.items()}
        drawn = {"small": 0, "big": 0}
        while True:
            stats = {m: stats_of(dict(enumerate(rewards[m][:drawn[m]])), K, "reward") for m in drawn}
            need = needs_samples(rules, stats, ["small", "big"], K, f"p{trial}", "code")
            if not need:
                break
            for m in need:
                drawn[m] = min(K, drawn[m] + 2)
        bounds = {m: (s / K, (s + K - n) / K) for m, (s, n) in stats.items()}
        from stagerl.levels.rules import decide
        assert decide(rules, bounds, f"p{trial}", "code") == label(rules, full, f"p{trial}", "code")


def test_a_statistical_stop_and_a_table_without_mean_rewards_are_refused(tmp_path):
    import pandas as pd

    rules = load_rules({**SPEC, "rate": {"code": "reward"}})
    problems = _problems({"c": "0"})
    cfg = ScoringConfig(models=[ModelRef(name="m")], k=K, adaptive=True, sampling=SamplingConfig(max_tokens=64),
                        stop=StopConfig(rule="bayes", error=0.01))
    with pytest.raises(ScoringError, match=r"stop\.rule 'bayes' counts successes.*needs scoring\.stop\.rule: exact"):
        score(problems, SampleStore(tmp_path / "s.sqlite"), cfg, rules=rules, progress=False,
              engine_factory=lambda ref: pytest.fail("no engine before the check"))
    table = pd.DataFrame({"problem_id": ["c"], "domain": ["code"], "model": ["m"], "pass_rate": [0.0]})
    with pytest.raises(RulesError, match=r"measure \['code'\] by mean reward.*no mean_reward column"):
        label_table(table, rules)
    assert label_table(table, load_rules(SPEC))["L1"].tolist() == [False]
