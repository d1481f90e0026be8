"""Mixed-domain batches: math and code prompts in every batch at a set ratio (paper: ~2.1:1).

Batch ``b`` holds ``round((b+1)·x) − round(b·x)`` math prompts, with ``x = P·r/(1+r)`` math prompts
per batch on average (``P`` prompts per step, ``r`` the math:code ratio, halves rounded up), and
code fills the rest. Rounding the *running total* rather than each batch keeps the long-run ratio
exact: with ``P = 128`` and ``r = 2.1``, ``x ≈ 86.7``, so batches hold 87 + 41, then 86 + 42, ...
averaging 86.7 + 41.3. Each domain is a stream of shuffled passes over its pool (a new shuffle per
pass), so the smaller pool cycles while the larger one is still on its first pass. When one domain
is empty (or ``ratio`` is None) the batches are consecutive slices of one stream over all problems.
Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from ..data.problem import Problem


def math_per_batch(prompts_per_step: int, ratio: float, steps: int) -> list[int]:
    """Math prompts in each of ``steps`` batches for a math:code ``ratio`` (the rest is code)."""
    if ratio <= 0 or math.isinf(ratio) or math.isnan(ratio):
        raise ValueError(f"math_code_ratio must be a positive finite number, got {ratio}")
    x = prompts_per_step * ratio / (1.0 + ratio)
    total = [math.floor(b * x + 0.5) for b in range(steps + 1)]
    return [total[b + 1] - total[b] for b in range(steps)]


def _stream(pool: Sequence[Problem], rng: random.Random) -> Iterator[Problem]:
    """Endless shuffled passes over ``pool``."""
    while True:
        order = list(pool)
        rng.shuffle(order)
        yield from order


def mixed_order(problems: Sequence[Problem], prompts_per_step: int, ratio: float | None, seed: int,
                steps: int) -> list[Problem]:
    """``steps`` consecutive batches of ``prompts_per_step`` problems, math:code at ``ratio`` per batch.

    Returns a flat list of ``prompts_per_step * steps`` problems: batch ``b`` is
    ``out[b*P:(b+1)*P]``. Problems repeat when a pool is smaller than what the steps need.
    """
    if prompts_per_step < 1 or steps < 0:
        raise ValueError(f"need prompts_per_step >= 1 and steps >= 0, got {prompts_per_step} and {steps}")
    if not problems:
        raise ValueError("no problems to order")
    rng = random.Random(seed)
    pools = {d: [p for p in problems if p.domain == d] for d in ("math", "code")}
    if ratio is None or not pools["math"] or not pools["code"]:
        if ratio is not None:
            math_per_batch(prompts_per_step, ratio, 0)  # still reject a bad ratio
        stream = _stream(list(problems), rng)
        return [next(stream) for _ in range(prompts_per_step * steps)]
    streams = {d: _stream(pool, random.Random(f"{seed}:{d}")) for d, pool in pools.items()}
    out: list[Problem] = []
    for n_math in math_per_batch(prompts_per_step, ratio, steps):
        batch = [next(streams["math"]) for _ in range(n_math)]
        batch += [next(streams["code"]) for _ in range(prompts_per_step - n_math)]
        rng.shuffle(batch)
        out += batch
    return out
