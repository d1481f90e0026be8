"""The worked exchanges shown before a problem are right: each example's answer earns full reward from
the real reward functions (Math-Verify; the bubblewrap sandbox for code), and a family's own examples
replace the domain's only for that family."""

from __future__ import annotations

import pytest

from stagerl.data import load_builtin, to_messages
from stagerl.data.prompts import FEWSHOT, FEWSHOT_BY_SOURCE
from stagerl.rewards import code_rewards, math_rewards

EXAMPLES = [(name, p, a) for name, ex in [*FEWSHOT.items(), *FEWSHOT_BY_SOURCE.items()] for p, a in ex]


@pytest.mark.parametrize("name,problem,answer", EXAMPLES, ids=[f"{n}:{p.id}" for n, p, _ in EXAMPLES])
def test_every_worked_example_earns_full_reward(name, problem, answer):
    if problem.domain == "math":
        assert math_rewards([answer], [problem.answer]) == [1.0]
    else:
        assert code_rewards([answer], [problem.tests], workers=1) == [1.0]


@pytest.mark.parametrize("source", sorted(FEWSHOT_BY_SOURCE))
def test_a_familys_examples_replace_the_domains(source):
    problem = load_builtin(source, n=1, seed=0)[0]
    shown = [m["content"] for m in to_messages(problem, fewshot=True) if m["role"] == "assistant"]
    assert shown == [a for _, a in FEWSHOT_BY_SOURCE[source]]
    other = load_builtin("demo_math", n=1, seed=0)[0] if problem.domain == "math" else load_builtin("demo_code")[0]
    assert [m["content"] for m in to_messages(other, fewshot=True) if m["role"] == "assistant"] == \
        [a for _, a in FEWSHOT[problem.domain]]
