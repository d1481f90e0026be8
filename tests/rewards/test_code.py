"""Code reward: extraction, both LiveCodeBench modes, output comparison, integrity of verdicts.

Everything runs in the real sandbox. Test rows mirror the built-in LiveCodeBench rows' quirks
(stdin inputs with and without a final newline, an empty expected output, call-mode outputs that
are bare JSON values, ``class Solution`` starter code using ``List`` without importing it).
"""

from __future__ import annotations

import pytest

from stagerl.rewards import code_reward, code_rewards
from stagerl.rewards.code import extract_code, normalize_tests, stdout_matches, value_matches


def md(code: str, lang: str = "python") -> str:
    """A model-style response: reasoning, then a fenced block."""
    return f"Let me think about it.\n\nHere is my solution:\n```{lang}\n{code.strip()}\n```\nDone."


SUM = {"inputs": ["1 2\n", "10 20"], "outputs": ["3\n", "30\n"]}  # second input: no final newline
ADD = "a, b = map(int, input().split())\nprint(a + b)"


# ---------------------------------------------------------------- extraction
def test_extracts_last_python_block_of_any_accepted_fence():
    two = md("print(0)") + "\nWait, fix it:\n```py\nprint(1)\n```\n```cpp\nint main(){}\n```\n"
    assert extract_code(two).strip() == "print(1)"
    assert extract_code("```\nx = 1\n```").strip() == "x = 1"
    assert extract_code("no code at all") is None
    assert extract_code("```python\nprint(1)\n") is None  # unclosed (truncated) block
    assert extract_code("```python\n   \n```") is None


def test_no_code_or_wrong_language_scores_zero():
    assert code_rewards(["print(3)", md(ADD, "cpp"), ""], [SUM, SUM, SUM]) == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- stdin mode
def test_stdin_correct_partial_wrong_and_trailing_newline_quirk():
    partial = "a, b = map(int, input().split())\nprint(3 if a == 1 else 0)"
    assert code_rewards([md(ADD), md(partial), md("print(42)")], [SUM] * 3) == [1.0, 0.5, 0.0]
    # readline()[:-1] only works when the missing final newline is supplied
    strict = "s = __import__('sys').stdin.readline()[:-1]\na, b = map(int, s.split())\nprint(a + b)"
    assert code_reward(md(strict), SUM) == 1.0


def test_stdin_empty_expected_output_multiline_and_whitespace():
    tests = {"inputs": ["3 2\n2 1 3\n", "1 2\n1\n"], "outputs": ["1 1 2\n2 1 1\n", ""]}
    prog = """
n, k = map(int, input().split())
if n == 3:
    print("1 1 2   ")      # trailing spaces
    print("2 1 1\\t\\n")   # trailing tab and blank line
"""
    assert code_reward(md(prog), tests) == 1.0
    assert code_reward(md("print('1 1 2')\nprint('2 1 1')"), tests) == 0.5  # second test expects nothing
    assert code_reward(md("print('1 1 2 2 1 1')"), tests) == 0.0  # line structure matters


def test_stdin_float_tolerance_and_exact_integers():
    tests = {"inputs": ["1 3\n"], "outputs": ["0.3333333333\n"]}
    assert code_reward(md("a, b = map(int, input().split())\nprint(a / b)"), tests) == 1.0
    assert code_reward(md("print('0.3334')"), tests) == 0.0
    assert code_reward(md("print('1.0')"), {"inputs": ["\n"], "outputs": ["1\n"]}) == 1.0
    assert code_reward(md("print(1000000001)"), {"inputs": ["\n"], "outputs": ["1000000000\n"]}) == 0.0


def test_huge_integer_output_is_printed_and_compared_exactly():
    big = "1" + "0" * 19999 + "7"  # 10**20000 + 7: beyond Python's default 4300-digit limit
    tests = {"inputs": ["20000\n"], "outputs": [big + "\n"]}
    assert code_reward(md("print(10 ** int(input()) + 7)"), tests) == 1.0
    assert code_reward(md("print(10 ** int(input()) + 8)"), tests) == 0.0


def test_syntax_error_runtime_error_and_nonzero_exit_fail():
    tests = {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    assert code_reward(md("print(3"), tests) == 0.0
    assert code_reward(md("print(3)\nraise ValueError('late')"), tests) == 0.0
    assert code_reward(md("import sys\nprint(3)\nsys.exit(1)"), tests) == 0.0
    assert code_reward(md("print(3)\nexit()"), tests) == 1.0  # exiting cleanly after the answer is fine


def test_early_exit_before_printing_fails():
    tests = {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    assert code_reward(md("import sys\nsys.exit(0)\nprint(3)"), tests) == 0.0
    assert code_reward(md("import os\nos._exit(0)\nprint(3)"), tests) == 0.0
    # os._exit skips flushing, as in a real interpreter: the answer never left the buffer
    assert code_reward(md("import os\nprint(3)\nos._exit(0)"), tests) == 0.0


def test_deep_recursion_works_with_the_livecodebench_prelude():
    prog = "def d(n):\n    return 0 if n == 0 else 1 + d(n - 1)\nprint(d(int(input())))"
    assert code_reward(md(prog), {"inputs": ["20000\n"], "outputs": ["20000\n"]}) == 1.0


# ---------------------------------------------------------------- call mode
CALL = {"inputs": [[5, [[2, 4], [0, 2], [0, 4]]], [4, [[0, 3], [0, 2]]]], "outputs": [[3, 2, 1], [1, 1]], "fn_name": "shortestDistanceAfterQueries"}
SHORTEST = """
class Solution:
    def shortestDistanceAfterQueries(self, n: int, queries: List[List[int]]) -> List[int]:
        adj = [[i + 1] for i in range(n)]
        res = []
        for u, v in queries:
            adj[u].append(v)
            dist = [0] + [n] * (n - 1)
            for i in range(n - 1):
                for j in adj[i]:
                    dist[j] = min(dist[j], dist[i] + 1)
            res.append(dist[n - 1])
        return res
"""


def test_call_mode_solution_class_and_top_level_function():
    assert code_reward(md(SHORTEST), CALL) == 1.0
    top = {"inputs": [[2, 3], [5, 5]], "outputs": [5, 10], "fn_name": "add_two"}
    assert code_reward(md("def add_two(a, b):\n    return a + b"), top) == 1.0
    assert code_reward(md("def add_two(a, b):\n    return a * b"), top) == 0.0
    assert code_reward(md("def plus(a, b):\n    return a + b"), top) == 0.0  # wrong name


@pytest.mark.parametrize(
    "expected, body, ok",
    [
        (True, "return x > 0", True),
        (False, "return x > 0", False),
        ("bf", "return 'bf'", True),
        ("", "return ''", True),
        (5.5, "return 11 / 2", True),
        (5.5, "return 5.5000000001", True),
        (5.5, "return 5.6", False),
        ([1, 2], "return (1, 2)", True),
        ([[1, 2]], "return [[1, 2], []]", False),
    ],
)
def test_call_mode_bare_json_outputs(expected, body, ok):
    tests = {"inputs": [[1]], "outputs": [expected], "fn_name": "f"}
    prog = f"class Solution:\n    def f(self, x):\n        {body}"
    assert code_reward(md(prog), tests) == (1.0 if ok else 0.0)


def test_call_mode_raw_livecodebench_string_form():
    tests = {"inputs": ["[1, 2, 3]\n2"], "outputs": ["[2, 4, 6]"], "fn_name": "scale"}
    assert code_reward(md("def scale(a, k):\n    return [x * k for x in a]"), tests) == 1.0


def test_call_mode_cannot_be_faked():
    tests = {"inputs": [[1], [2]], "outputs": [7, 9], "fn_name": "f"}
    always_equal = "class E(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n" \
                   "class Solution:\n    def f(self, x):\n        return E(0)"
    odd_object = "class E:\n    def __eq__(self, o): return True\nclass Solution:\n    def f(self, x):\n        return E()"
    patch = (
        "import builtins, json, marshal, sys, os\n"
        "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: int\n"
        "json.dumps = lambda *a, **k: '7'\nmarshal.dumps = lambda *a, **k: marshal.loads.__self__ and b'x'\n"
        "class Solution:\n    def f(self, x):\n        return 0"
    )
    forged = (
        "import os, struct, marshal\n"
        "for fd in range(3, 10):\n"
        "    for msg in (b'{\"status\": \"ok\", \"passed\": true}', struct.pack('>I', 5) + marshal.dumps(True)):\n"
        "        try: os.write(fd, msg)\n        except OSError: pass\n"
        "os._exit(0)\n"
    )
    exit_in_call = "import sys\nclass Solution:\n    def f(self, x):\n        sys.exit(0)"
    scores = code_rewards([md(p) for p in (always_equal, odd_object, patch, forged, exit_in_call)], [tests] * 5)
    assert scores == [0.0] * 5


def test_value_matching_and_normalisation_helpers():
    assert value_matches([1, [2.0000001]], [1, [2]]) and not value_matches([1], [1, 2])
    assert not value_matches("1", 1) and not value_matches(None, 0)
    assert stdout_matches("1 2  \r\n3\n\n", "1 2\n3") and not stdout_matches("1 2 3", "1 2\n3")
    assert normalize_tests({"inputs": ["5"], "outputs": ["5"]}) == (None, ["5\n"], ["5"])
    with pytest.raises(ValueError, match="'outputs' has 1"):
        normalize_tests({"inputs": ["1", "2"], "outputs": ["1"]})
    with pytest.raises(ValueError, match="item 1"):
        code_rewards([md("print(1)")] * 2, [SUM, {"inputs": []}])


def test_identical_submissions_in_a_batch_get_identical_scores():
    partial = "a, b = map(int, input().split())\nprint(3 if a == 1 else 0)"
    resp = [md(ADD), md(partial), md(ADD), md(partial), "no code"]
    assert code_rewards(resp, [SUM] * 5, workers=2) == [1.0, 0.5, 1.0, 0.5, 0.0]
