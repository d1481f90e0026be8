import itertools
import random

import pytest

from stagerl.evaluate import mean_pass_at_k, pass_at_k


def brute_force(n, c, k):
    """Fraction of k-subsets of n samples (c correct) that contain a correct one."""
    items = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(items[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(n, c, k) for n in range(1, 7) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k))


def test_pass_at_1_is_the_mean_fraction_correct():
    rng = random.Random(0)
    counts = [(16, rng.randint(0, 16)) for _ in range(30)]
    assert mean_pass_at_k(counts, 1) == pytest.approx(sum(c / n for n, c in counts) / 30)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_invalid_counts_raise(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
