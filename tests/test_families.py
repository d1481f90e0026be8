"""Generated task families (stagerl.data.families): seeded, answers exact, tests passed by a reference."""

from __future__ import annotations

import ast
import operator

import pytest

from stagerl.data import load_builtin
from stagerl.data.builtin import builtin_names
from stagerl.data.families import TEMPLATES, chain_math, gen_code
from stagerl.rewards import code_rewards, math_reward

OPS = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul}
WORD = {"add": "add ", "subtract": "subtract ", "multiply": "multiply by "}


def _recompute(prompt: str) -> int:
    """Parse the prompt's own words back into operations and evaluate them (independent of chain_value)."""
    head, rest = prompt.split(". Compute it step by step")[0].split(", ", 1)
    x = int(head.removeprefix("Start with "))
    for part in rest.split(", then "):
        op = next(o for o, w in WORD.items() if part.startswith(w))
        x = OPS[op](x, ast.literal_eval(part.removeprefix(WORD[op])))
    return x


def test_families_are_builtin_and_seeded():
    assert {"chain_math", "gen_code"} <= set(builtin_names())
    for name in ("chain_math", "gen_code"):
        a, b = load_builtin(name, n=40, seed=3), load_builtin(name, n=40, seed=3)
        assert [(p.id, p.prompt, p.answer, p.tests) for p in a] == [(p.id, p.prompt, p.answer, p.tests) for p in b]
        assert [p.prompt for p in load_builtin(name, n=40, seed=4)] != [p.prompt for p in a]
        assert len({p.id for p in a}) == 40


def test_chain_answers_are_the_prompts_arithmetic_and_graded_by_length():
    problems = chain_math(n=300, seed=7)
    for p in problems:
        assert p.answer == str(_recompute(p.prompt)), p.prompt
        assert math_reward(f"so the result is \\boxed{{{p.answer}}}", p.answer) == 1.0
        assert p.prompt.count(", then ") == p.meta["ops"] - 1 and p.meta["level"] == p.meta["ops"]
    assert {p.meta["level"] for p in problems} == {1, 2, 3, 4}
    assert {p.meta["ops"] for p in problems} == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="min_ops"):
        chain_math(n=2, min_ops=3, max_ops=2)


def test_generated_code_tests_pass_the_reference_in_the_real_sandbox():
    """One problem of every template (and both test forms): the reference passes all tests, and a
    wrong program (the reference with its answer off by one / another program) does not."""
    problems = gen_code(n=2 * len(TEMPLATES), seed=11)
    assert {p.meta["template"] for p in problems} == {t.__name__[2:] for t in TEMPLATES}
    assert len({p.prompt for p in problems}) > len(TEMPLATES)   # constants differ within a template
    good = [f"```python\n{p.meta['solution']}\n```" for p in problems]
    bad = [f"```python\n{problems[(i + 1) % len(problems)].meta['solution']}\n```" for i in range(len(problems))]
    rewards = code_rewards(good + bad, [p.tests for p in problems] * 2, workers=2)
    assert rewards[:len(problems)] == [1.0] * len(problems)
    assert max(rewards[len(problems):]) < 1.0
    assert {p.meta["test_type"] for p in problems} == {"stdin", "functional"}
    assert {p.meta["level"] for p in problems} == {1, 2, 3}


def test_generated_code_is_hundreds_of_distinct_problems():
    problems = gen_code(n=400, seed=0)
    assert len({p.id for p in problems}) == 400
    assert len({(p.prompt, str(p.tests)) for p in problems}) == 400
    assert len({p.prompt for p in problems}) >= 250
