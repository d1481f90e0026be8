"""Code reward (the paper's): run the response's program in a sandbox, score = passed tests / all tests.

The program is the last fenced code block (```python, ```py or bare ```); no code scores 0. Tests
use the APPS/TACO ``input_output`` form ``{"inputs": [...], "outputs": [...], "fn_name"?: str}``,
run as LiveCodeBench does:

- stdin mode (no ``fn_name``): each input is fed on stdin (a missing final newline is added); the
  program must exit with status 0 and its output match: lines compared after stripping, then
  token by token, numbers equal exactly or, when either is written as a non-integer, within an
  absolute or relative error of 1e-6.
- call mode (``fn_name``): a top-level function or a method of ``class Solution``; each input is an
  argument list (or LiveCodeBench's raw form, one JSON value per line), the output the return
  value; tuples equal lists, floats within 1e-6.

Verdicts are made here, in the caller; the sandbox (``sandbox.py``) never sees expected outputs.
A sandbox that cannot run raises ``SandboxError`` (before any program runs) instead of scoring 0;
no isolation at all needs ``rewards.sandbox: unsafe-limits`` (see ``docs/sandbox.md``).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation

from . import sandbox
from .sandbox import SandboxError, sandbox_record, sandbox_status

__all__ = ["code_reward", "code_rewards", "extract_code", "sandbox_status", "sandbox_record", "SandboxError"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n`]*\n(.*?)```", re.S)
_PY_LANGS = ("python", "py", "python3", "")
TOL = 1e-6
"""Absolute-or-relative tolerance for non-integer numbers."""


def extract_code(response: str) -> str | None:
    """The last ```python / ```py / bare ``` block of ``response``; None when there is none."""
    if not isinstance(response, str):
        return None
    blocks = [m.group(2) for m in _FENCE.finditer(response) if m.group(1).lower() in _PY_LANGS]
    if not blocks or not blocks[-1].strip():
        return None
    return blocks[-1]


def _as_text(v: object) -> str:
    if isinstance(v, list):
        return "\n".join(map(str, v))
    return v if isinstance(v, str) else str(v)


def _tuples_to_lists(v: object) -> object:
    if isinstance(v, (list, tuple)):
        return [_tuples_to_lists(x) for x in v]
    if isinstance(v, dict):
        return {k: _tuples_to_lists(x) for k, x in v.items()}
    return v


def normalize_tests(tests: dict) -> tuple[str | None, list, list]:
    """``(fn_name, inputs, outputs)`` ready to run and compare; ValueError naming the bad field."""
    if not isinstance(tests, dict):
        raise ValueError(f"tests: expected a dict with 'inputs' and 'outputs', got {type(tests).__name__}")
    ins, outs, fn = tests.get("inputs"), tests.get("outputs"), tests.get("fn_name")
    if not isinstance(ins, list) or not isinstance(outs, list):
        raise ValueError("tests: 'inputs' and 'outputs' must both be lists")
    if len(ins) != len(outs):
        raise ValueError(f"tests: 'inputs' has {len(ins)} cases but 'outputs' has {len(outs)}")
    if not ins:
        raise ValueError("tests: no test cases")
    if fn is not None and (not isinstance(fn, str) or not fn):
        raise ValueError(f"tests: 'fn_name' must be a non-empty string, got {fn!r}")
    if not fn:
        inputs = [_as_text(x) for x in ins]
        inputs = [x if not x or x.endswith("\n") else x + "\n" for x in inputs]
        return None, inputs, [_as_text(y) for y in outs]
    if all(isinstance(x, str) for x in ins):  # LiveCodeBench raw form: one JSON value per line
        try:
            inputs = [[json.loads(line) for line in x.split("\n") if line.strip()] for x in ins]
            outputs = [json.loads(y) if isinstance(y, str) else y for y in outs]
            return fn, inputs, [_tuples_to_lists(y) for y in outputs]
        except json.JSONDecodeError as e:
            raise ValueError(f"tests: call-mode input is a string but not JSON lines: {e}") from None
    for i, x in enumerate(ins):
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"tests: call-mode 'inputs'[{i}] must be an argument list, got {type(x).__name__}")
    return fn, [list(x) for x in ins], [_tuples_to_lists(y) for y in outs]


def _lines(s: str) -> list[str]:
    return [ln.strip() for ln in s.strip().split("\n")]


def _token_eq(a: str, b: str) -> bool:
    try:
        x, y = Decimal(a), Decimal(b)
    except InvalidOperation:
        return False
    if not (x.is_finite() and y.is_finite()):
        return False
    if x == y:
        return True
    if not any(c in t for t in (a, b) for c in ".eE"):
        return False  # integers compare exactly (big ones too)
    return abs(x - y) <= Decimal(TOL) * max(Decimal(1), abs(y))


def stdout_matches(got: str, expected: str) -> bool:
    """Line-by-line, then token-wise with numeric tolerance (see module docstring)."""
    g, e = _lines(got), _lines(expected)
    if len(g) != len(e):
        return False
    for a, b in zip(g, e):
        if a == b:
            continue
        ta, tb = a.split(), b.split()
        if len(ta) != len(tb) or not all(x == y or _token_eq(x, y) for x, y in zip(ta, tb)):
            return False
    return True


def value_matches(got: object, expected: object) -> bool:
    """Python equality with tuples as lists and floats within tolerance (recursively)."""
    if isinstance(expected, float) or isinstance(got, float):
        num = (int, float)
        if isinstance(got, num) and isinstance(expected, num) and not isinstance(got, bool) and not isinstance(expected, bool):
            return math.isclose(got, expected, rel_tol=TOL, abs_tol=TOL) or got == expected
        return False
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(value_matches, got, expected))
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(value_matches(got[k], expected[k]) for k in expected)
    return type(got) is not tuple and got == expected


def passed(report: dict, expected: object, call_mode: bool) -> bool:
    """Verdict for one sandbox report (see ``sandbox.run_tests``) against the expected output."""
    if report.get("status") != "ok" or report.get("exit") != 0:
        return False
    if call_mode:
        return bool(report.get("has_value")) and value_matches(report.get("value"), expected)
    return stdout_matches(report.get("stdout", ""), expected)


def code_reward(response: str, tests: dict) -> float:
    """Share of ``tests`` passed by the last Python code block of ``response`` (0 without code)."""
    return code_rewards([response], [tests], workers=1)[0]


def code_rewards(responses: list[str], tests: list[dict], workers: int | None = None) -> list[float]:
    """Score ``responses[i]`` against ``tests[i]``; see ``code_reward``.

    ``workers``: sandboxes run in parallel (default: available CPUs). Identical (program, tests)
    pairs run once. Thread- and process-safe. Raises ``ValueError`` for malformed tests (naming
    the item) and ``sandbox.SandboxError`` when the sandbox cannot run.
    """
    if len(responses) != len(tests):
        raise ValueError(f"{len(responses)} responses but {len(tests)} test sets")
    norm = []
    for i, t in enumerate(tests):
        try:
            norm.append(normalize_tests(t))
        except ValueError as e:
            raise ValueError(f"item {i}: {e}") from None
    out = [0.0] * len(responses)
    jobs: dict[tuple[str, str], list[int]] = {}
    for i, resp in enumerate(responses):
        code = extract_code(resp)
        if code is not None:
            key = (code, json.dumps(tests[i], sort_keys=True, default=str))
            jobs.setdefault(key, []).append(i)
    keys = list(jobs)
    reports = sandbox.run_batch([(k[0], norm[jobs[k][0]][1], norm[jobs[k][0]][0]) for k in keys], workers=workers)
    for key, reps in zip(keys, reports):
        fn, _, expected = norm[jobs[key][0]]
        score = sum(passed(r, e, fn is not None) for r, e in zip(reps, expected)) / len(expected)
        for i in jobs[key]:
            out[i] = score
    return out
