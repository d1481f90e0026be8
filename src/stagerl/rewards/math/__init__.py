"""Math reward (the paper's): the final ``\\boxed{}`` answer, checked against the gold.

Score 1.0 when the final answer is equivalent to the ground truth, else 0.0. The rules, each a
careful human grader's verdict (tests: ``tests/rewards/test_math.py``, ``test_math_rules.py``):

- **Format.** No box, an empty box or an unclosed last box scores 0.
- **One final answer.** The last box is the answer, and a box of an intermediate result or a
  draft corrected later does not count against it. But a response that commits to several final
  candidates (``\\boxed{4} or \\boxed{5}``, ``either \\boxed{4} or \\boxed{5}``, three boxes in a row,
  ``\\boxed{4 \\text{ or } 5}``, ``either 4 or \\boxed{5}``) scores 1 only if every candidate is right,
  so hedging between different values scores 0 and repeating the same value does not hurt.
  Which boxes form the final group: ``final``. Against a gold with several values (roots
  ``2, 3``, ``x=2 \\text{ or } x=3``), the final group's boxes together are the answer
  (``x=\\boxed{2} \\text{ or } x=\\boxed{3}`` is right).
- **Units, variables, inequalities** (``forms``): units must agree when both sides give one
  (a bare number answers a gold with a unit, and a unit on the answer is accepted against a bare
  gold); ``x = 3`` does not answer ``y = 3``; ``x \\le 3`` equals ``(-\\infty,3]``.
- **Numbers** (``extract``): exact values compare exactly (``0.25`` = ``\\frac14``,
  ``1\\,000`` = ``1,000`` = ``1e3`` = 1000); a decimal that approximates a value must agree to a
  relative ``REL_TOL`` = 1e-9 (``0.333333`` is not ``\\frac13``, ``0.3333333333`` is), also inside
  Math-Verify (``pool.relative_float_rule``); ``p\\%`` answers a gold of ``p`` or of ``p/100``,
  whatever the sign.
- Everything else is Math-Verify's verdict on the two values.

Fast paths decide certain cases in-process (see ``extract.fast_verdict``); the rest goes to
Math-Verify on a shared, self-healing process pool (``pool``) where every item is
time-bounded, so hostile input and non-main-thread callers are safe.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from threading import Lock

from .extract import MAX_BOX_CHARS, fast_verdict, is_multi, normalize, oversized
from .final import final_answer
from .forms import prepare
from .pool import run_math_verify, start_pool

MAX_CANDIDATES = 64
"""A final answer part with more distinct candidates than this scores 0 without grading them."""
_CACHE_SIZE = 200_000
_CACHE: OrderedDict[tuple[str, str], float] = OrderedDict()
_CACHE_LOCK = Lock()


def default_workers() -> int:
    """Worker processes used when ``workers`` is None: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cached(key: tuple[str, str]) -> float | None:
    with _CACHE_LOCK:
        v = _CACHE.get(key)
        if v is not None:
            _CACHE.move_to_end(key)
        return v


def _remember(key: tuple[str, str], v: float) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = v
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def math_reward(response: str, gold: str) -> float:
    """Score one response: 1.0 if its final boxed answer is equivalent to ``gold`` (LaTeX), else 0.0.

    Time-bounded from any thread (Math-Verify runs in a worker process).
    """
    return math_rewards([response], [gold], workers=1)[0]


def candidates(response: str, gold: str) -> list[str] | None:
    """The answers ``response`` commits to, each to be graded against ``gold`` (all must be right);
    ``None`` for a format error, ``[]`` for a hedge that cannot be graded (an ``or`` with no
    candidate to cut out, or more than ``MAX_CANDIDATES``) unless the gold lists several values.
    Against such a gold the candidates are joined into one list answer."""
    final = final_answer(response)
    if final is None:
        return None
    several = is_multi(normalize(gold))  # a list of values (roots "2, 3", "x=2 or x=3")
    if final.text_hedge and not several:
        return []
    if len(final.candidates) == 1:
        return final.candidates
    distinct: dict[str, str] = {}
    for c in final.candidates:
        distinct.setdefault(normalize(c) if len(c) <= MAX_BOX_CHARS else c, c)
        if len(distinct) > MAX_CANDIDATES:
            return []
    if len(distinct) > 1 and several:
        return [", ".join(distinct.values())]
    return list(distinct.values())


def _verdict(box: str, gold: str) -> float | tuple[str, str]:
    """A certain score, or the (answer value, gold value) pair Math-Verify must compare."""
    if not box.strip() or oversized(box, gold):
        return 0.0
    prepared = prepare(box, gold)
    if isinstance(prepared, float):
        return prepared
    value, gold_value = prepared
    v = fast_verdict(value, gold_value)
    return (value, gold_value) if v is None else v


def math_rewards(responses: list[str], golds: list[str], workers: int | None = None,
                 timeout: float | None = None) -> list[float]:
    """Score ``responses[i]`` against ``golds[i]``; see ``math_reward``.

    ``workers``: Math-Verify processes (default: available CPUs). The pool is shared across calls
    and only grows; identical (answer, gold) pairs are graded once. ``timeout``: seconds Math-Verify
    may spend on one answer before it scores 0 (default ``pool.SOFT_TIMEOUT_S``).
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    out = [0.0] * len(responses)
    waiting: dict[int, list[tuple[str, str]]] = {}  # response -> pairs Math-Verify must grade
    for i, (resp, gold) in enumerate(zip(responses, golds)):
        if not isinstance(resp, str) or not isinstance(gold, str):
            continue
        boxes = candidates(resp, gold)
        if not boxes:
            continue
        score, asks = 1.0, []
        for box in boxes:
            v = _verdict(box, gold)
            if isinstance(v, tuple):
                cached = _cached((normalize(v[0]), v[1]))
                if cached is None:
                    asks.append(v)
                    continue
                v = cached
            score = min(score, v)
        out[i] = score
        if asks and score > 0:
            waiting[i] = asks
    if waiting:
        items = list({k: None for asks in waiting.values() for k in asks})
        n = default_workers() if workers is None else max(1, workers)
        scores = run_math_verify(items, n) if timeout is None else run_math_verify(items, n, float(timeout))
        got = dict(zip(items, scores))
        for (value, gold_value), s in got.items():
            _remember((normalize(value), gold_value), s)
        for i, asks in waiting.items():
            out[i] = min([out[i]] + [got[k] for k in asks])
    return out


def warm_up(workers: int | None = None) -> float:
    """Start the Math-Verify worker pool now (it otherwise starts on first use); returns seconds."""
    return start_pool(default_workers() if workers is None else max(1, workers))
