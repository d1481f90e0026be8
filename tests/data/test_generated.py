"""Generated sets: deterministic byte for byte, valid, graded, and their answers/tests are right."""

import contextlib
import io
import json
import re
import sys


from stagerl.data import demo_code, demo_math, load_builtin, to_messages
from stagerl.data.problem import validate
from stagerl.data.prompts import FEWSHOT


def dump(problems):
    return json.dumps([p.to_dict() for p in problems], sort_keys=True)


def test_demo_code_is_deterministic_and_mixes_both_test_styles():
    a = demo_code(seed=0)
    assert dump(a) == dump(demo_code(seed=0)) == dump(load_builtin("demo_code"))
    assert dump(a) != dump(demo_code(seed=1))
    assert 6 <= len(a) <= 10 and len({p.id for p in a}) == len(a) and all(not validate(p) for p in a)
    calls = [p for p in a if "fn_name" in p.tests]
    assert 0 < len(calls) < len(a)
    assert all(p.meta["test_type"] == ("functional" if p in calls else "stdin") for p in a)
    # both call styles appear: a top-level function and a method of class Solution
    assert any(p.meta["starter_code"].startswith("class Solution") for p in calls)
    assert any(p.meta["starter_code"].startswith("def ") for p in calls)


# Reference solutions written from the problem statements, not from the generator.
STDIN_SOLUTIONS = {
    "sum-two": "a, b = map(int, input().split())\nprint(a + b)",
    "max-of-list": "input()\nprint(max(map(int, input().split())))",
    "reverse-word": "print(input().strip()[::-1])",
    "triangle-number": "n = int(input())\nprint(sum(range(1, n + 1)))",
}
CALL_SOLUTIONS = {
    "add": "def add(a, b):\n    return a + b",
    "is-even": "class Solution:\n    def isEven(self, n):\n        return n % 2 == 0",
    "count-vowels": "class Solution:\n    def countVowels(self, s):\n        return sum(c.lower() in 'aeiou' for c in s)",
    "sorted-list": "class Solution:\n    def sortList(self, nums):\n        return sorted(nums)",
}


def run_stdin(src: str, stdin: str) -> str:
    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out):
            exec(src, {"__name__": "__main__"})
    finally:
        sys.stdin = old
    return out.getvalue()


def test_demo_code_tests_accept_correct_solutions_and_reject_a_wrong_one():
    for seed in (0, 1):
        for p in demo_code(seed=seed):
            slug = p.id.rsplit(f"-{seed}-", 1)[1]
            t = p.tests
            if "fn_name" not in t:
                for i, o in zip(t["inputs"], t["outputs"]):
                    assert run_stdin(STDIN_SOLUTIONS[slug], i) == o, (p.id, i)
                continue
            ns: dict = {}
            exec(CALL_SOLUTIONS[slug], ns)
            fn = getattr(ns["Solution"](), t["fn_name"]) if "Solution" in ns else ns[t["fn_name"]]
            for args, expected in zip(t["inputs"], t["outputs"]):
                assert fn(*args) == expected, (p.id, args)
    # the tests discriminate: a constant answer fails at least one case of every problem
    for p in demo_code():
        assert len(set(map(json.dumps, p.tests["outputs"]))) > 1, p.id


def test_code_prompts_say_how_to_answer():
    for p in demo_code():
        text = to_messages(p)[-1]["content"]
        assert "```python" in text
        if "fn_name" in p.tests:
            assert p.meta["starter_code"].strip() in text and p.tests["fn_name"] in text
        else:
            assert "standard input" in text and "standard output" in text


def solve(text: str) -> int:
    """Answer a demo_math problem from its wording alone (independent of the generator)."""
    nums = [int(x) for x in re.findall(r"\d+", text)]
    if m := re.fullmatch(r"What is (\d+) (\+|-|times) (\d+)\?", text):
        a, op, b = int(m[1]), m[2], int(m[3])
        return a + b if op == "+" else a - b if op == "-" else a * b
    if "boxes" in text:
        boxes, per, extra = nums
        return boxes * per + extra
    if "more" in text:
        return nums[0] + nums[1]
    assert "gives away" in text, text
    return nums[0] - nums[1]


def test_demo_math_is_deterministic_valid_graded_and_right():
    a = demo_math(n=40, seed=3)
    assert dump(a) == dump(demo_math(n=40, seed=3)) == dump(load_builtin("demo_math", n=40, seed=3))
    assert dump(a) != dump(demo_math(n=40, seed=4))
    assert dump(demo_math(n=10, seed=3)) == dump(a[:10])  # a longer set extends a shorter one
    assert len(a) == 40 and len({p.id for p in a}) == 40 and all(not validate(p) for p in a)
    assert [p.meta["level"] for p in a[:10]] == [1, 2, 3, 4, 5] * 2
    for p in a:
        assert p.answer == str(solve(p.prompt)), p.prompt
    # harder levels have bigger or more numbers
    assert max(int(p.answer) for p in a if p.meta["level"] == 1) <= 18


def test_demo_math_prompt_with_the_worked_exchange():
    p = demo_math(n=1)[0]
    msgs = to_messages(p, system="sys", fewshot=True)
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * len(FEWSHOT["math"]) + ["user"]
    assert all("\\boxed{" in m["content"] for m in msgs[2:-1:2]) and p.prompt not in msgs[1]["content"]
    assert msgs[-1]["content"].startswith(p.prompt) and msgs[-1]["content"].endswith(
        "put your final answer within \\boxed{}.")
    assert to_messages(p) == msgs[-1:]  # no examples unless asked
