"""Mixed-domain order: per-batch math:code counts, the long-run ratio, cycling and determinism."""

from collections import Counter

import pytest

from stagerl.curriculum import math_per_batch, mixed_order
from stagerl.data.problem import Problem


def pool(n_math: int, n_code: int) -> list[Problem]:
    maths = [Problem(id=f"m{i}", domain="math", prompt=f"{i}+1?", answer=str(i + 1)) for i in range(n_math)]
    codes = [Problem(id=f"c{i}", domain="code", prompt=f"print {i}", tests={"inputs": [""], "outputs": [f"{i}\n"]})
             for i in range(n_code)]
    return maths + codes


def batches(order: list[Problem], size: int) -> list[list[Problem]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_paper_batch_is_87_plus_41_and_the_long_run_ratio_holds():
    counts = math_per_batch(128, 2.1, 1000)
    assert counts[0] == 87
    assert set(counts) == {86, 87}
    total_math = sum(counts)
    assert total_math / (128 * 1000 - total_math) == pytest.approx(2.1, abs=1e-3)
    # the running total never drifts more than half a prompt from the exact share
    exact = 128 * 2.1 / 3.1
    running = 0
    for b, c in enumerate(counts, start=1):
        running += c
        assert abs(running - b * exact) <= 0.5


@pytest.mark.parametrize("size,ratio,steps", [(128, 2.1, 12), (8, 2.1, 20), (3, 1.0, 9), (4, 3.0, 5)])
def test_each_batch_holds_the_planned_counts(size, ratio, steps):
    order = mixed_order(pool(200, 90), size, ratio, seed=3, steps=steps)
    assert len(order) == size * steps
    for batch, n_math in zip(batches(order, size), math_per_batch(size, ratio, steps)):
        c = Counter(p.domain for p in batch)
        assert (c["math"], c["code"]) == (n_math, size - n_math)


def test_deterministic_by_seed():
    problems = pool(30, 10)
    a = [p.id for p in mixed_order(problems, 8, 2.1, seed=7, steps=10)]
    b = [p.id for p in mixed_order(problems, 8, 2.1, seed=7, steps=10)]
    c = [p.id for p in mixed_order(problems, 8, 2.1, seed=8, steps=10)]
    assert a == b and a != c


def test_smaller_pool_cycles_in_full_passes():
    order = mixed_order(pool(40, 3), 4, 1.0, seed=0, steps=6)   # 12 code slots from 3 problems
    codes = [p.id for p in order if p.domain == "code"]
    assert len(codes) == 12
    assert Counter(codes) == {"c0": 4, "c1": 4, "c2": 4}         # full passes: each problem equally often
    maths = [p.id for p in order if p.domain == "math"]
    assert len(set(maths)) == len(maths) == 12                  # the larger pool is still on its first pass


@pytest.mark.parametrize("n_math,n_code,domain", [(5, 0, "math"), (0, 5, "code")])
def test_one_domain_only(n_math, n_code, domain):
    order = mixed_order(pool(n_math, n_code), 4, 2.1, seed=0, steps=3)
    assert len(order) == 12 and {p.domain for p in order} == {domain}


def test_no_ratio_keeps_the_data_mix():
    problems = pool(6, 2)
    order = mixed_order(problems, 4, None, seed=0, steps=2)     # one pass over all 8
    assert sorted(p.id for p in order) == sorted(p.id for p in problems)


def test_errors():
    with pytest.raises(ValueError, match="no problems"):
        mixed_order([], 4, 2.1, seed=0, steps=1)
    with pytest.raises(ValueError, match="math_code_ratio"):
        mixed_order(pool(2, 2), 4, 0.0, seed=0, steps=1)
