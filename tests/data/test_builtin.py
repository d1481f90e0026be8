"""Built-in sets load with their documented row counts and valid problems; prompts for them."""

import pytest

from stagerl.data import builtin_names, load_builtin, to_messages
from stagerl.data.problem import validate

COUNTS = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "math_train": 8421, "lcb_test": 279, "lcb_train": 580}


@pytest.mark.parametrize("name,count", COUNTS.items())
def test_stored_sets(name, count):
    ps = load_builtin(name)
    assert len(ps) == count and len({p.id for p in ps}) == count
    assert all(not validate(p) for p in ps)
    domain = "code" if name.startswith("lcb") else "math"
    assert {p.domain for p in ps} == {domain}


def test_code_sets_keep_both_test_types():
    ps = load_builtin("lcb_test")
    kinds = {p.meta["test_type"] for p in ps}
    assert kinds == {"stdin", "functional"}
    fn = [p for p in ps if p.meta["test_type"] == "functional"]
    assert all(p.tests["fn_name"] and p.tests["fn_name"] in p.meta["starter_code"] for p in fn)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="aime24"):
        load_builtin("aime2024")
    assert "demo_math" in builtin_names()


def test_prompts():
    math = to_messages(load_builtin("aime24")[0])
    assert math[-1]["role"] == "user" and "\\boxed{}" in math[-1]["content"]
    fn = next(p for p in load_builtin("lcb_test") if p.tests.get("fn_name"))
    text = to_messages(fn, system="be brief")
    assert text[0] == {"role": "system", "content": "be brief"}
    assert fn.meta["starter_code"].strip() in text[1]["content"] and "```python" in text[1]["content"]
    stdin = next(p for p in load_builtin("lcb_test") if not p.tests.get("fn_name"))
    assert "standard input" in to_messages(stdin)[0]["content"]


def test_fewshot_prompt_shows_worked_exchanges_of_the_same_domain():
    from stagerl.config import PromptConfig
    from stagerl.data.prompts import FEWSHOT

    math, code = load_builtin("demo_math", n=1)[0], load_builtin("demo_code")[0]
    for p in (math, code):
        plain, shot = to_messages(p), PromptConfig(system="sys", fewshot=True).messages(p)
        assert [m["role"] for m in shot] == ["system"] + ["user", "assistant"] * len(FEWSHOT[p.domain]) + ["user"]
        assert shot[-1] == plain[-1] and shot[1]["content"] != p.prompt
    assert "\\boxed{7}" in PromptConfig(fewshot=True).messages(math)[1]["content"]
    assert "```python" in PromptConfig(fewshot=True).messages(code)[1]["content"]


def test_one_converter_between_a_problem_and_a_table_row():
    import json
    import math

    from stagerl.data.problem import ROW_FIELDS, Problem

    code = Problem("c", "code", "echo", tests={"inputs": ["x\n"], "outputs": ["x\n"], "fn_name": None}, source="s",
                   meta={"level": 2})
    math_p = Problem("m", "math", "1+1?", answer="2")
    for p in (code, math_p):
        row = p.to_row()
        assert tuple(row) == ROW_FIELDS and all(not isinstance(v, (dict, list)) for v in row.values())
        assert Problem.from_row(row) == p
    row = code.to_row()
    assert json.loads(row["tests"]) == code.tests
    assert Problem.from_row({**math_p.to_row(), "tests": math.nan, "source": None, "meta": None}) == math_p
