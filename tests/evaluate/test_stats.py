"""Intervals and paired tests: checked against their definitions and against simulated truth."""

import random

import numpy as np
import pytest

from stagerl.evaluate import mean_pass_at_k, paired_difference, pass1_interval, pass_at_ks


def test_interval_brackets_the_mean_and_is_seeded():
    rng = random.Random(0)
    counts = [(16, rng.randint(0, 16)) for _ in range(30)]
    r = pass1_interval(counts)
    assert r["pass@1"] == pytest.approx(mean_pass_at_k(counts, 1))
    lo, hi = r["ci95"]
    assert lo < r["pass@1"] < hi
    assert pass1_interval(counts) == r  # same counts, same seed: same interval
    rates = np.array([c / n for n, c in counts])
    assert r["stderr"] == pytest.approx(rates.std(ddof=1) / np.sqrt(30))
    # the bootstrap also redraws samples, so it is at least as wide as the across-problem interval
    assert hi - lo > 0.9 * 2 * 1.96 * r["stderr"]


def test_interval_covers_the_truth_about_95_percent_of_the_time():
    """Simulate benchmarks of 30 problems with known per-problem solve rates, k=4 samples each."""
    rng = np.random.default_rng(1)
    truth_rates = rng.uniform(0, 1, size=30)
    covered = 0
    trials = 120
    for t in range(trials):
        c = rng.binomial(4, truth_rates)
        lo, hi = pass1_interval([(4, int(x)) for x in c], seed=t, resamples=500)["ci95"]
        covered += lo <= truth_rates.mean() <= hi
    assert 0.85 <= covered / trials <= 1.0


def test_pass_at_ks_is_the_unbiased_estimator_for_every_k():
    counts = [(4, 0), (4, 1), (4, 3), (4, 4)]
    r = pass_at_ks(counts)
    assert list(r) == ["1", "2", "3", "4"]
    for k in range(1, 5):
        assert r[str(k)]["value"] == pytest.approx(mean_pass_at_k(counts, k))
    values = [r[str(k)]["value"] for k in range(1, 5)]
    assert values == sorted(values)  # pass@k never falls as k grows


def test_paired_difference_finds_a_real_gain_and_not_a_null_one():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 0.7, size=60)
    ids = [f"p{i}" for i in range(60)]
    base = {i: (8, int(rng.binomial(8, q))) for i, q in zip(ids, p)}
    better = {i: (8, int(rng.binomial(8, min(1.0, q + 0.2)))) for i, q in zip(ids, p)}
    same = {i: (8, int(rng.binomial(8, q))) for i, q in zip(ids, p)}
    gain = paired_difference(better, base)
    assert gain["problems"] == 60 and gain["p_value"] < 0.01
    assert gain["ci95"][0] > 0 and gain["diff"] == pytest.approx(gain["a"] - gain["b"])
    null = paired_difference(same, base)
    assert null["p_value"] > 0.05 and null["ci95"][0] < 0 < null["ci95"][1]
    assert gain["wins"] + gain["losses"] + gain["ties"] == 60


def test_paired_difference_pairs_by_problem_id():
    a = {"x": (4, 4), "y": (4, 0), "only_a": (4, 4)}
    b = {"y": (4, 0), "x": (4, 2), "only_b": (4, 0)}
    r = paired_difference(a, b)
    assert r["problems"] == 2 and r["diff"] == pytest.approx(0.25)
    assert r["wins"] == 1 and r["ties"] == 1
    with pytest.raises(ValueError, match="share no problem"):
        paired_difference({"x": (4, 1)}, {"y": (4, 1)})


def test_identical_checkpoints_have_p_value_one():
    a = {"x": (4, 1), "y": (4, 3)}
    assert paired_difference(a, dict(a))["p_value"] == 1.0


@pytest.mark.parametrize("bad", [[], [(0, 0)], [(4, 5)]])
def test_bad_counts_raise(bad):
    with pytest.raises(ValueError):
        pass1_interval(bad)


def test_paired_reward_difference_sees_partial_credit_that_pass_rates_miss():
    """Code-like rewards (share of tests passed): the trained side passes more tests, rarely all of them."""
    from stagerl.evaluate.stats import paired_reward_difference

    rng = np.random.default_rng(3)
    ids = [f"c{i}" for i in range(80)]
    base = {i: list(rng.choice([0.0, 0.0, 0.0, 0.25], size=4)) for i in ids}
    better = {i: list(rng.choice([0.0, 0.25, 0.5, 0.75], size=4)) for i in ids}
    same = {i: list(rng.choice([0.0, 0.0, 0.0, 0.25], size=4)) for i in ids}
    gain = paired_reward_difference(better, base)
    assert gain["diff"] == pytest.approx(np.mean([np.mean(better[i]) - np.mean(base[i]) for i in ids]))
    assert gain["p_value"] < 0.01 and gain["ci95"][0] > 0
    assert paired_difference({i: (4, int(sum(r == 1.0 for r in better[i]))) for i in ids},
                             {i: (4, 0) for i in ids})["diff"] == 0  # no sample passes every test
    null = paired_reward_difference(same, base)
    assert null["p_value"] > 0.05 and null["ci95"][0] < 0 < null["ci95"][1]
    assert paired_reward_difference(base, {**base})["p_value"] == 1.0
    assert paired_reward_difference(better, base, seed=5) == paired_reward_difference(better, base, seed=5)
    with pytest.raises(ValueError, match="share no problem"):
        paired_reward_difference({"x": [0.5]}, {"y": [0.5]})


def test_compare_pair_adds_the_reward_comparison_only_for_partial_credit(tmp_path):
    """Real sample stores in the eval layout (``<checkpoint>/<benchmark>.sqlite`` + results.json)."""
    import json

    from stagerl.evaluate.compare import compare_pair
    from stagerl.store import SampleStore

    def write(ckpt: str, bench: str, rewards: dict[str, list[float]]) -> None:
        folder = tmp_path / ckpt
        folder.mkdir(exist_ok=True)
        with SampleStore(folder / f"{bench}.sqlite") as store:
            store.register_problems((pid, "code") for pid in rewards)
            store.add([dict(problem_id=pid, model=ckpt, idx=i, text="x", reward=r, tokens=3, finish="stop",
                                 seconds=0.1, domain="code") for pid, rs in rewards.items() for i, r in enumerate(rs)])
        results = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else {}
        (folder / "results.json").write_text(json.dumps({**results, bench: {"k": 4}}))

    write("base", "code", {"a": [0, 0, 0.5, 0], "b": [0, 0, 0, 0]})
    write("1_s", "code", {"a": [0.5, 1, 0.5, 0.5], "b": [0.25, 0, 0, 0]})
    write("base", "math", {"a": [0, 0, 1, 0], "b": [0, 0, 0, 0]})
    write("1_s", "math", {"a": [1, 1, 1, 0], "b": [0, 0, 0, 0]})
    code = compare_pair(tmp_path, "1_s", tmp_path, "base", "code")
    assert code["diff"] == pytest.approx(0.125) and code["reward"]["diff"] == pytest.approx((2.0 / 4 + 0.25 / 4) / 2)
    assert code["reward"]["a"] == pytest.approx((2.5 / 4 + 0.25 / 4) / 2) and code["reward"]["wins"] == 2
    assert "reward" not in compare_pair(tmp_path, "1_s", tmp_path, "base", "math")  # 0/1 rewards: pass@1 says it all
