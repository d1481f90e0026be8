"""Generated task families for the toy experiments (docs/results.md, "Next run"; issue #24).

``chain_math``: multi-step arithmetic worked step by step. A chain starts from a number and applies
``meta["level"] + 1`` operations (add, subtract, multiply by a small number); the prompt asks for every
intermediate result, so a worked answer grows with the chain: long chains do not fit a short completion
limit, which is what claim B's longer stage-2 limit is about. The answer is computed exactly
(``chain_value``), never typed. First pilot (docs/next-run.md): with 2-6 operations on numbers up to
19 SmolLM2-135M-Instruct truncated 24% of samples at 64 tokens but solved almost none (0.4%), so the
family now has 1-4 operations on one-digit numbers, and its prompts show a worked chain first
(``prompts.FEWSHOT_BY_SOURCE``) instead of the one-line sums.

``gen_code``: stdin/stdout and function-call problems from parameterised templates (constants, characters
and thresholds drawn from the seed), with tests in the APPS/TACO ``input_output`` form computed by a
reference implementation in Python; ``meta["solution"]`` holds a reference program that passes them
(``tests/test_families.py`` runs it through the real sandbox). ``meta["level"]`` is the template's tier
(1 one operation, 2 a loop or filter, 3 two combined ideas). Hundreds of distinct problems per seed.

The same ``n`` and ``seed`` always give the same problems, byte for byte.
"""

from __future__ import annotations

import random
from typing import Callable

from .problem import Problem

OPS = ("add", "subtract", "multiply")
WORDS = {"add": "add {v}", "subtract": "subtract {v}", "multiply": "multiply by {v}"}


def chain_value(start: int, steps: list[tuple[str, int]]) -> int:
    """The result of applying ``steps`` ((op, value) pairs) to ``start``, left to right."""
    x = start
    for op, v in steps:
        x = x + v if op == "add" else x - v if op == "subtract" else x * v
    return x


def _chain(r: random.Random, n_ops: int) -> tuple[int, list[tuple[str, int]]]:
    start = r.randint(2, 9)
    steps, x = [], start
    for _ in range(n_ops):
        op = r.choice(OPS if abs(x) <= 30 else OPS[:2])   # keep values small enough to multiply by hand
        v = r.randint(2, 5) if op == "multiply" else r.randint(2, 9)
        steps.append((op, v))
        x = chain_value(x, [(op, v)])
    return start, steps


def chain_math(n: int = 200, seed: int = 0, min_ops: int = 1, max_ops: int = 4) -> list[Problem]:
    """``n`` chains cycling through ``min_ops..max_ops`` operations (level 1 = ``min_ops``)."""
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"chain_math: need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
    r = random.Random(f"chain_math-{seed}")
    out = []
    span = max_ops - min_ops + 1
    for i in range(n):
        n_ops = min_ops + i % span
        start, steps = _chain(r, n_ops)
        said = ", then ".join(WORDS[op].format(v=v) for op, v in steps)
        text = (f"Start with {start}, {said}. Compute it step by step, writing the result after each "
                f"operation. What is the final result?")
        out.append(Problem(id=f"chain-math-{seed}-{i:04d}", domain="math", prompt=text,
                           answer=str(chain_value(start, steps)), source="chain_math",
                           meta={"level": n_ops - min_ops + 1, "ops": n_ops, "seed": seed}))
    return out


# ----------------------------------------------------------------------------------------- code

Template = Callable[[random.Random], dict]
CHARS = "abcdefghijklmnopqrstuvwxyz"


def _ints(r: random.Random, lo: int = -30, hi: int = 60, size: tuple[int, int] = (1, 7)) -> list[int]:
    return [r.randint(lo, hi) for _ in range(r.randint(*size))]


def _word(r: random.Random, letters: str = "abcde", size: tuple[int, int] = (1, 9)) -> str:
    return "".join(r.choice(letters) for _ in range(r.randint(*size)))


def _stdin(slug, level, text, solution, cases):
    return {"slug": slug, "level": level, "text": text, "solution": solution,
            "tests": {"inputs": [c[0] for c in cases], "outputs": [c[1] for c in cases]}, "starter": ""}


def t_linear(r):
    a, b = r.randint(2, 9), r.randint(-20, 20)
    xs = [r.randint(-50, 50) for _ in range(4)]
    return _stdin(f"linear-{a}-{b}", 1, f"Read an integer x from standard input and print {a} * x + ({b}).",
                  f"x = int(input())\nprint({a} * x + ({b}))", [(f"{x}\n", f"{a * x + b}\n") for x in xs])


def t_mod(r):
    m = r.randint(2, 40)
    xs = [r.randint(0, 500) for _ in range(4)]
    return _stdin(f"mod-{m}", 1, f"Read a non-negative integer x and print the remainder of x divided by {m}.",
                  f"print(int(input()) % {m})", [(f"{x}\n", f"{x % m}\n") for x in xs])


def t_repeat(r):
    c, sep = r.randint(2, 6), r.choice(["-", "+", ",", ":", "."])
    ws = [_word(r, CHARS, (1, 5)) for _ in range(4)]
    return _stdin(f"repeat-{c}-{sep}", 1, f"Read one word and print it {c} times, joined by '{sep}'.",
                  f"print('{sep}'.join([input().strip()] * {c}))", [(f"{w}\n", f"{sep.join([w] * c)}\n") for w in ws])


def t_count_char(r):
    letters = "".join(r.sample(CHARS, 4))
    ch = letters[0]
    ws = [_word(r, letters) for _ in range(4)]
    return _stdin(f"count-{ch}", 2, f"Read one word and print how many times the letter '{ch}' occurs in it.",
                  f"print(input().count('{ch}'))", [(f"{w}\n", f"{w.count(ch)}\n") for w in ws])


def t_sum_above(r):
    t = r.randint(-10, 30)
    lists = [_ints(r) for _ in range(4)]
    return _stdin(f"sum-above-{t}", 2,
                  f"The first line holds an integer n, the second line n integers. Print the sum of the "
                  f"integers that are greater than {t} (0 if there are none).",
                  f"input()\nprint(sum(v for v in map(int, input().split()) if v > {t}))",
                  [(f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{sum(v for v in xs if v > t)}\n") for xs in lists])


def t_multiples(r):
    d = r.randint(2, 19)
    ns = [r.randint(1, 99) for _ in range(4)]
    return _stdin(f"multiples-{d}", 2,
                  f"Read an integer n and print how many of the numbers 1, 2, ..., n are divisible by {d}.",
                  f"print(int(input()) // {d})", [(f"{k}\n", f"{k // d}\n") for k in ns])


def t_replace(r):
    letters = "".join(r.sample(CHARS, 5))
    a, b = letters[:2]
    ws = [_word(r, letters) for _ in range(4)]
    return _stdin(f"replace-{a}-{b}", 2, f"Read one word and print it with every '{a}' replaced by '{b}'.",
                  f"print(input().strip().replace('{a}', '{b}'))", [(f"{w}\n", f"{w.replace(a, b)}\n") for w in ws])


def t_even_odd_diff(r):
    k = r.randint(2, 4)
    lists = [_ints(r, 0, 40) for _ in range(4)]
    def f(xs): return sum(v for v in xs if v % k == 0) - sum(v for v in xs if v % k)
    return _stdin(f"div-minus-rest-{k}", 3,
                  f"The first line holds an integer n, the second line n non-negative integers. Print the sum of "
                  f"those divisible by {k} minus the sum of the others.",
                  f"input()\nxs = list(map(int, input().split()))\n"
                  f"print(sum(v for v in xs if v % {k} == 0) - sum(v for v in xs if v % {k}))",
                  [(f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{f(xs)}\n") for xs in lists])


def t_call_scale_max(r):
    c = r.randint(2, 7)
    lists = [_ints(r) for _ in range(4)]
    return {"slug": f"scale-max-{c}", "level": 2, "text": f"Return the largest element of the non-empty list nums times {c}.",
            "solution": f"class Solution:\n    def scaleMax(self, nums):\n        return max(nums) * {c}",
            "starter": "class Solution:\n    def scaleMax(self, nums: list[int]) -> int:\n        ",
            "tests": {"inputs": [[xs] for xs in lists], "outputs": [max(xs) * c for xs in lists], "fn_name": "scaleMax"}}


def t_call_count_less(r):
    t = r.randint(-5, 30)
    lists = [_ints(r, size=(0, 7)) for _ in range(4)]
    return {"slug": f"count-less-{t}", "level": 3,
            "text": f"Return how many elements of nums are less than {t}, plus the number of elements equal to {t} times 2.",
            "solution": f"def countLess(nums):\n    return sum(v < {t} for v in nums) + 2 * nums.count({t})",
            "starter": "def countLess(nums):\n    ",
            "tests": {"inputs": [[xs] for xs in lists],
                      "outputs": [sum(v < t for v in xs) + 2 * xs.count(t) for xs in lists], "fn_name": "countLess"}}


TEMPLATES: list[Template] = [t_linear, t_mod, t_repeat, t_count_char, t_sum_above, t_multiples, t_replace,
                             t_even_odd_diff, t_call_scale_max, t_call_count_less]


def gen_code(n: int = 200, seed: int = 0) -> list[Problem]:
    """``n`` code problems cycling through ``TEMPLATES``; a template's constants come from the seed, and a
    drawn duplicate (same slug) is drawn again, so problem ids are unique."""
    r = random.Random(f"gen_code-{seed}")
    out, seen = [], set()
    for i in range(n):
        tpl = TEMPLATES[i % len(TEMPLATES)]
        for _ in range(50):
            d = tpl(r)
            if d["slug"] not in seen:
                break
        seen.add(d["slug"])   # a template with few distinct constants may repeat after 50 draws
        out.append(Problem(id=f"gen-code-{seed}-{i:04d}-{d['slug']}", domain="code", prompt=d["text"], tests=d["tests"],
                           source="gen_code", meta={"level": d["level"], "template": tpl.__name__[2:], "seed": seed,
                                                    "test_type": "functional" if "fn_name" in d["tests"] else "stdin",
                                                    "starter_code": d["starter"], "solution": d["solution"]}))
    return out
