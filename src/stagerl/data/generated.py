"""Deterministic generated problem sets for the demo and for tests.

``demo_math``: arithmetic and short word problems in five graded levels (``meta["level"]``), the
demo's training data, ordered by how often the embedded SmolLM2-135M-Instruct solves them
(``scripts/calibrate_demo.py``, T=0.8, k=4, with ``prompts.FEWSHOT``): single-digit addition
~0.6-0.8, times tables ~0.75-0.9, one-step word problems 0-0.33, two-digit +/- 0-0.17, two-step
word problems ~0-0.04. Roughly 0.27-0.37 of problems land strictly between 0 and 1.
``demo_code``: easy stdin/stdout and function-call problems with tests in the APPS/TACO form.
The same ``seed`` always gives the same problems, byte for byte.
"""

from __future__ import annotations

import random

from .problem import Problem

NAMES = ["Ana", "Ben", "Carla", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jun"]
ITEMS = ["apples", "books", "marbles", "pencils", "stickers", "cookies", "coins", "cards"]


def _level1(r: random.Random) -> tuple[str, int]:
    """Single-digit addition."""
    a, b = r.randint(1, 9), r.randint(1, 9)
    return f"What is {a} + {b}?", a + b


def _level2(r: random.Random) -> tuple[str, int]:
    """Times tables."""
    a, b = r.randint(2, 9), r.randint(2, 10)
    return f"What is {a} times {b}?", a * b


def _level3(r: random.Random) -> tuple[str, int]:
    """One-step word problem: gets more or gives away."""
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randint(3, 20), r.randint(2, 15)
    if r.random() < 0.5:
        return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
    a += b
    return f"{name} has {a} {item} and gives away {b}. How many {item} are left?", a - b


def _level4(r: random.Random) -> tuple[str, int]:
    """Two-digit plus or minus one-digit."""
    a, b = r.randint(10, 60), r.randint(2, 9)
    return (f"What is {a} + {b}?", a + b) if r.random() < 0.5 else (f"What is {a} - {b}?", a - b)


def _level5(r: random.Random) -> tuple[str, int]:
    """Two-step word problem: boxes times items per box, plus extra items."""
    name, item = r.choice(NAMES), r.choice(ITEMS)
    boxes, per, extra = r.randint(2, 4), r.randint(2, 5), r.randint(1, 5)
    return (f"{name} buys {boxes} boxes of {item} with {per} {item} in each box, then finds {extra} more "
            f"{item}. How many {item} does {name} have in total?", boxes * per + extra)


LEVELS = [_level1, _level2, _level3, _level4, _level5]


def demo_math(n: int = 40, seed: int = 0) -> list[Problem]:
    """``n`` problems cycling through levels 1..5 (easiest first within each cycle)."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        level = i % len(LEVELS) + 1
        text, answer = LEVELS[level - 1](r)
        out.append(Problem(id=f"demo-math-{seed}-{i:04d}", domain="math", prompt=text, answer=str(answer),
                           source="demo_math", meta={"level": level, "seed": seed}))
    return out


def _stdin_cases(r: random.Random) -> list[tuple[str, str, list[tuple[str, str]]]]:
    pairs = [(r.randint(-50, 99), r.randint(-50, 99)) for _ in range(4)]
    lists = [[r.randint(-99, 99) for _ in range(r.randint(1, 6))] for _ in range(4)]
    words = ["level", "python", "stage", "a", "racecar", "reward"]
    ns = [r.randint(1, 200) for _ in range(4)]
    return [
        ("sum-two", "Read two integers a and b from one line of standard input and print a + b.",
         [(f"{a} {b}\n", f"{a + b}\n") for a, b in pairs]),
        ("max-of-list", "The first line holds an integer n, the second line n integers. Print the largest.",
         [(f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{max(xs)}\n") for xs in lists]),
        ("reverse-word", "Read one word from standard input and print it reversed.",
         [(f"{w}\n", f"{w[::-1]}\n") for w in r.sample(words, 4)]),
        ("triangle-number", "Read an integer n and print 1 + 2 + ... + n.",
         [(f"{k}\n", f"{k * (k + 1) // 2}\n") for k in ns]),
    ]


def _call_cases(r: random.Random) -> list[tuple[str, str, str, str, list[tuple[list, object]]]]:
    lists = [[r.randint(-20, 20) for _ in range(r.randint(0, 6))] for _ in range(4)]
    strings = ["hello world", "stagerl", "AEIOU", "rhythm", "banana"]
    return [
        ("add", "Write a function add(a, b) that returns the sum of the integers a and b.",
         "add", "def add(a, b):\n    ", [([a, b], a + b) for a, b in ((r.randint(-9, 99), r.randint(-9, 99)) for _ in range(4))]),
        ("is-even", "Return True if the integer n is even, False otherwise.",
         "isEven", "class Solution:\n    def isEven(self, n: int) -> bool:\n        ",
         [([k], k % 2 == 0) for k in (r.randint(-50, 50) for _ in range(4))]),
        ("count-vowels", "Return the number of vowels (a, e, i, o, u, either case) in the string s.",
         "countVowels", "class Solution:\n    def countVowels(self, s: str) -> int:\n        ",
         [([s], sum(c in "aeiouAEIOU" for c in s)) for s in r.sample(strings, 4)]),
        ("sorted-list", "Return the list nums sorted in increasing order.",
         "sortList", "class Solution:\n    def sortList(self, nums: list[int]) -> list[int]:\n        ",
         [([xs], sorted(xs)) for xs in lists]),
    ]


def demo_code(seed: int = 0) -> list[Problem]:
    """Eight easy code problems with tests: four stdin/stdout, four function-call."""
    r = random.Random(seed)
    out = []
    for slug, text, cases in _stdin_cases(r):
        out.append(Problem(id=f"demo-code-{seed}-{slug}", domain="code", prompt=text,
                           tests={"inputs": [c[0] for c in cases], "outputs": [c[1] for c in cases]},
                           source="demo_code", meta={"test_type": "stdin", "starter_code": ""}))
    for slug, text, fn, starter, cases in _call_cases(r):
        out.append(Problem(id=f"demo-code-{seed}-{slug}", domain="code", prompt=text,
                           tests={"inputs": [c[0] for c in cases], "outputs": [c[1] for c in cases], "fn_name": fn},
                           source="demo_code", meta={"test_type": "functional", "starter_code": starter}))
    return out
