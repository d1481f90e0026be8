"""Math reward: equivalence table, format errors, hedging, hostile input, threads and the pool.

Equivalence facts follow the public graders' test tables (Math-Verify's tests and README,
Qwen2.5-Math ``evaluation/grader.py``, PRM800K ``grader.py`` normalization cases), restated here
as (response, gold, expected score).
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from stagerl.rewards import math_reward, math_rewards
from stagerl.rewards.math.extract import fast_verdict, last_boxed, normalize
from stagerl.rewards.math.pool import pool_pids, run_math_verify

B = "\\boxed"
CASES: list[tuple[str, str, float]] = [
    # --- plain numbers, the last box counts -------------------------------------------------
    (f"so {B}{{5}}", "5", 1.0),
    (f"{B}{{4}} no wait {B}{{5}}", "5", 1.0),
    (f"{B}{{5}} no wait {B}{{4}}", "5", 0.0),
    ("$\\boxed{5}$.", "5", 1.0),
    ("\\(\\boxed{5}\\)", "5", 1.0),
    ("\\[\\boxed{-7}\\]", "-7", 1.0),
    ("\\fbox{12}", "12", 1.0),
    ("$\\boxed 5$", "5", 1.0),
    ("\\boxed 12\nand more", "12", 1.0),
    (f"{B}{{{{5}}}}", "5", 1.0),
    (f"{B}{{6}}", "5", 0.0),
    (f"{B}{{-5}}", "5", 0.0),
    (f"{B}{{5.0}}", "5", 1.0),
    (f"{B}{{005}}", "5", 1.0),
    (f"{B}{{0.5}}", "\\frac{1}{2}", 1.0),
    (f"{B}{{.5}}", "\\frac12", 1.0),
    (f"{B}{{1/2}}", "\\frac{1}{2}", 1.0),
    (f"{B}{{\\dfrac{{3}}{{4}}}}", "\\frac{3}{4}", 1.0),
    (f"{B}{{\\tfrac34}}", "\\dfrac{3}{4}", 1.0),
    (f"{B}{{\\frac{{6}}{{8}}}}", "\\frac{3}{4}", 1.0),
    (f"{B}{{-\\frac{{1}}{{3}}}}", "\\frac{-1}{3}", 1.0),
    (f"{B}{{\\frac{{1}}{{3}}}}", "-\\frac{1}{3}", 0.0),
    (f"{B}{{0.333333}}", "\\frac{1}{3}", 0.0),  # a 6-place rounding is not 1/3 (issue 25: relative 1e-9)
    (f"{B}{{0.33}}", "\\frac{1}{3}", 0.0),
    (f"{B}{{2.5}}", "2\\frac{1}{2}", 1.0),  # mixed number
    (f"{B}{{\\frac{{5}}{{2}}}}", "2\\frac{1}{2}", 1.0),
    (f"{B}{{3.5}}", "2\\frac{1}{2}", 0.0),
    (f"{B}{{1,000}}", "1000", 1.0),  # thousands separators
    (f"{B}{{10{{,}}080}}", "10080", 1.0),
    (f"{B}{{10080}}", "10,\\!080", 1.0),
    (f"{B}{{1,000,000}}", "1000000", 1.0),
    (f"{B}{{11, 111}}", "11,\\! 111", 0.0),  # Math-Verify: a list, not 11,111
    (f"{B}{{x = 5}}", "5", 1.0),  # assignment forms
    (f"{B}{{x=5}}", "x=5", 1.0),
    (f"{B}{{5}}", "x=5", 1.0),
    (f"{B}{{x = 6}}", "5", 0.0),
    (f"{B}{{30^\\circ}}", "30", 1.0),  # degrees
    (f"{B}{{30^{{\\circ}}}}", "30^\\circ", 1.0),
    (f"{B}{{30}}", "30^\\circ", 1.0),
    (f"{B}{{31^\\circ}}", "30^\\circ", 0.0),
    (f"{B}{{50\\%}}", "50", 1.0),  # percent
    (f"{B}{{50}}", "50\\%", 1.0),
    (f"{B}{{10\\%}}", "10\\%", 1.0),
    (f"{B}{{10 \\text{{ cm}}}}", "10", 1.0),  # units and text wrappers
    (f"{B}{{10\\text{{ inches}}}}", "10", 1.0),
    (f"{B}{{\\text{{10}}}}", "10", 1.0),
    (f"{B}{{\\mathrm{{10}}}}", "10", 1.0),
    (f"{B}{{11 \\text{{ cm}}}}", "10", 0.0),
    # --- choices and text answers ----------------------------------------------------------
    (f"{B}{{B}}", "\\text{(B)}", 1.0),
    (f"{B}{{(B)}}", "\\text{(B)}", 1.0),
    (f"{B}{{\\text{{(B)}}}}", "\\text{(B)}", 1.0),
    (f"{B}{{\\textbf{{(B)}}}}", "B", 1.0),
    (f"{B}{{C}}", "\\text{(B)}", 0.0),
    (f"{B}{{\\text{{Evelyn}}}}", "\\text{Evelyn}", 1.0),
    (f"{B}{{Evelyn}}", "\\text{Evelyn}", 1.0),
    (f"{B}{{\\text{{Monday}}}}", "\\text{Evelyn}", 0.0),
    # --- symbolic answers (Math-Verify decides) --------------------------------------------
    (f"{B}{{\\sqrt{{2}}/2}}", "\\frac{\\sqrt{2}}{2}", 1.0),
    (f"{B}{{\\frac{{1}}{{\\sqrt{{2}}}}}}", "\\frac{\\sqrt2}{2}", 1.0),
    (f"{B}{{\\sqrt{{3}}}}", "\\frac{\\sqrt{2}}{2}", 0.0),
    (f"{B}{{2\\pi}}", "2 \\pi", 1.0),
    (f"{B}{{\\pi}}", "2\\pi", 0.0),
    (f"{B}{{1 + x^2}}", "x^2+1", 1.0),
    (f"{B}{{x^2 - 1}}", "(x-1)(x+1)", 1.0),
    (f"{B}{{x^2 + 1}}", "(x-1)(x+1)", 0.0),
    (f"{B}{{9}}", "p - q", 0.0),
    (f"{B}{{3\\sqrt{{13}}}}", "\\sqrt{117}", 1.0),
    (f"{B}{{4i + 6}}", "6+4i", 1.0),
    (f"{B}{{6 - 4i}}", "6+4i", 0.0),
    (f"{B}{{(3, \\frac{{\\pi}}{{2}})}}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0),
    (f"{B}{{(3, \\pi)}}", "\\left( 3, \\frac{\\pi}{2} \\right)", 0.0),
    (f"{B}{{3}}", "\\left( 3, \\frac{\\pi}{2} \\right)", 0.0),
    (f"{B}{{[0, 1)}}", "[0,1)", 1.0),
    (f"{B}{{(0, 1)}}", "[0,1)", 0.0),
    (f"{B}{{1, 2, 3}}", "1,2,3", 1.0),
    (f"{B}{{3, 2, 1}}", "1, 2, 3", 1.0),
    (f"{B}{{1, 2}}", "1, 2, 3", 0.0),
    (f"{B}{{\\cot x}}", "\\cot x", 1.0),
    # --- hedging never pays ----------------------------------------------------------------
    (f"{B}{{1, 2, 3}}", "2", 0.0),
    (f"{B}{{2 \\text{{ or }} 3}}", "2", 0.0),
    (f"{B}{{2 or 3}}", "2", 0.0),
    (f"{B}{{\\pm 2}}", "2", 0.0),
    (f"{B}{{2, 3}}", "3", 0.0),
    (f"{B}{{58, 500}}", "58500", 0.0),  # a space after the comma: a list, not 58,500
    (f"{B}{{\\pm 2}}", "\\pm 2", 1.0),
    # --- format errors -----------------------------------------------------------------------
    ("The answer is 5.", "5", 0.0),
    ("$5$", "5", 0.0),
    (f"{B}{{}}", "5", 0.0),
    (f"{B}{{   }}", "5", 0.0),
    (f"{B}{{5", "5", 0.0),
    (f"{B}{{5}} then {B}{{6", "5", 0.0),  # the last box is unclosed
    (f"{B}", "5", 0.0),
    ("", "5", 0.0),
    # units with an exponent, and negative percents
    ("\\boxed{864}", "864 \\mbox{ inches}^2", 1.0),
    ("\\boxed{15}", "15\\mbox{ cm}^2", 1.0),
    ("\\boxed{-4\\%}", "-4", 1.0),  # as 4\\% is 4 (issue 25: signed percentages consistent)
]


def test_table_has_enough_cases() -> None:
    assert len(CASES) >= 80
    assert {s for _, _, s in CASES} == {0.0, 1.0}


def test_equivalence_table_batched() -> None:
    got = math_rewards([r for r, _, _ in CASES], [g for _, g, _ in CASES])
    wrong = [(r, g, want, have) for (r, g, want), have in zip(CASES, got) if want != have]
    assert not wrong, wrong


@pytest.mark.parametrize("response,gold,want", CASES[::9])
def test_single_item_agrees_with_batch(response: str, gold: str, want: float) -> None:
    assert math_reward(response, gold) == want


@pytest.mark.parametrize(
    "text,box",
    [
        (f"a {B}{{\\frac{{1}}{{2}}}} b", "\\frac{1}{2}"),
        (f"{B}{{\\{{1, 2\\}}}}", "\\{1, 2\\}"),  # escaped braces do not close the box
        (f"{B} {{7}}", "7"),
        (f"{B}{{1}} and \\fbox{{2}}", "2"),
        (f"{B}{{a", None),
        ("no box", None),
    ],
)
def test_last_boxed(text: str, box: str | None) -> None:
    assert last_boxed(text) == box


def test_normalize_forms() -> None:
    assert normalize("$\\dfrac{1}{2}$") == "\\frac{1}{2}"
    assert normalize("\\left( 1,2 \\right)") == "(1,2)"
    assert normalize("1{,}234") == "1234"
    assert normalize("\\pi r^2") == "\\pi r^2"  # a space after a command name is kept


def test_fast_paths_need_no_math_verify() -> None:
    assert fast_verdict("2.5", "2\\frac{1}{2}") == 1.0
    assert fast_verdict("7", "5") == 0.0
    assert fast_verdict("\\sqrt{2}", "5") is None  # Math-Verify must decide


HOSTILE = [
    ("exponent tower", f"{B}{{9^{{9^{{9^{{9^{{9}}}}}}}}}}", "3"),
    ("factorial tower", f"{B}{{(10^{{10}})!!}}", "3"),
    ("deep parentheses", f"{B}{{{'(' * 5000}1{')' * 5000}}}", "1"),
    ("deep braces", f"{B}{{{'{' * 3000}1{'}' * 3000}}}", "1"),
    ("megabyte of text", "x" * 1_000_000 + f"{B}{{5}}"[:-1], "5"),
    ("megabyte box", f"{B}{{{'1+' * 500_000}1}}", "5"),
    ("unclosed boxes", f"{B}{{" * 5000, "5"),
    ("huge integer", f"{B}{{{'9' * 100_000}}}", "5"),
]


def test_hostile_inputs_score_zero_within_seconds() -> None:
    t0 = time.monotonic()
    got = math_rewards([r for _, r, _ in HOSTILE], [g for _, _, g in HOSTILE])
    assert got == [0.0] * len(HOSTILE)
    assert time.monotonic() - t0 < 15
    assert math_rewards([f"{B}{{5}}"], ["5"]) == [1.0]  # the pool still works


def test_hung_worker_costs_only_its_item() -> None:
    """A tower sympy evaluates in C (no signal can stop it): the worker is killed, neighbours keep their scores."""
    items = [("2", "2"), ("10^{10^{10^{10}}}", "2"), ("\\sqrt{4}", "2")]
    t0 = time.monotonic()
    got = run_math_verify(items, workers=2, soft_timeout=0.5, hard_grace=0.5)
    assert got == [1.0, 0.0, 1.0]
    assert time.monotonic() - t0 < 12


def test_crashed_worker_is_replaced() -> None:
    math_rewards([f"{B}{{\\sqrt{{4}}}}"], ["2"])
    before = pool_pids()
    assert before
    os.kill(before[0], 9)
    assert math_rewards([f"{B}{{\\sqrt{{9}}}}", f"{B}{{\\sqrt{{16}}}}"], ["3", "4"]) == [1.0, 1.0]
    assert before[0] not in pool_pids()


def test_time_bounded_from_a_non_main_thread() -> None:
    out: dict[str, float] = {}

    def grade() -> None:
        out["tower"] = math_reward(f"{B}{{9^{{9^{{9^{{9}}}}}}}}", "3")
        out["ok"] = math_reward(f"{B}{{\\frac{{\\sqrt{{8}}}}{{2}}}}", "\\sqrt{2}")

    t0 = time.monotonic()
    th = threading.Thread(target=grade)
    th.start()
    th.join(timeout=30)
    assert not th.is_alive()
    assert out == {"tower": 0.0, "ok": 1.0}
    assert time.monotonic() - t0 < 15


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 gold"):
        math_rewards(["a", "b"], ["1"])


def test_no_orphans_after_exit(tmp_path) -> None:
    """A process that used the pool leaves no worker behind when it exits."""
    import subprocess
    import sys

    code = (
        "from stagerl.rewards import math_rewards\n"
        "from stagerl.rewards.math.pool import pool_pids\n"
        "print(math_rewards(['\\\\boxed{\\\\sqrt{4}}'], ['2'], workers=2))\n"
        "print(*pool_pids())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == "[1.0]"
    pids = [int(p) for p in lines[1].split()]
    assert len(pids) == 2
    time.sleep(0.5)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
