"""Math reward (the paper's): the last ``\\boxed{}`` answer, checked against the gold with Math-Verify.

Score 1.0 when the final answer is equivalent to the ground truth, else 0.0; a wrong format (no
box, empty box, unclosed box) scores 0, and so does hedging (several values for a single-valued
gold). Fast paths decide certain cases in-process (see ``math_extract.fast_verdict``); the rest
goes to Math-Verify on a shared, self-healing process pool (``math_pool``) where every item is
time-bounded, so hostile input and non-main-thread callers are safe.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from threading import Lock

from .math_extract import fast_verdict, last_boxed, normalize
from .math_pool import run_math_verify, start_pool

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
    """Score one response: 1.0 if its last boxed answer is equivalent to ``gold`` (LaTeX), else 0.0.

    Time-bounded from any thread (Math-Verify runs in a worker process).
    """
    return math_rewards([response], [gold], workers=1)[0]


def math_rewards(responses: list[str], golds: list[str], workers: int | None = None,
                 timeout: float | None = None) -> list[float]:
    """Score ``responses[i]`` against ``golds[i]``; see ``math_reward``.

    ``workers``: Math-Verify processes (default: available CPUs). The pool is shared across calls
    and only grows; identical (answer, gold) pairs are graded once. ``timeout``: seconds Math-Verify
    may spend on one answer before it scores 0 (default ``math_pool.SOFT_TIMEOUT_S``).
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    out = [0.0] * len(responses)
    pending: dict[tuple[str, str], list[int]] = {}
    for i, (resp, gold) in enumerate(zip(responses, golds)):
        if not isinstance(resp, str) or not isinstance(gold, str):
            continue
        box = last_boxed(resp)
        v = fast_verdict(box, gold)
        if v is not None:
            out[i] = v
            continue
        assert box is not None
        key = (normalize(box), gold)
        v = _cached(key)
        if v is not None:
            out[i] = v
        else:
            pending.setdefault((box, gold), []).append(i)
    if pending:
        items = list(pending)
        n = default_workers() if workers is None else max(1, workers)
        scores = run_math_verify(items, n) if timeout is None else run_math_verify(items, n, float(timeout))
        for (box, gold), s in zip(items, scores):
            _remember((normalize(box), gold), s)
            for i in pending[(box, gold)]:
                out[i] = s
    return out


def warm_up(workers: int | None = None) -> float:
    """Start the Math-Verify worker pool now (it otherwise starts on first use); returns seconds."""
    return start_pool(default_workers() if workers is None else max(1, workers))
