"""Level rules: the paper preset at its boundaries, syntax, retention, and decide() soundness."""

import random

import pytest

from stagerl.levels import RulesError, bind, decide, label, load_rules, relevant_models, retained

S, M, L, R = "r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-qwen-32b", "deepseek-r1"


@pytest.fixture(scope="module")
def paper():
    return load_rules("paper")


def lab(rules, s, m, l, r, pid="p", domain="math"):
    return label(rules, {S: s, M: m, L: l, R: r}, pid, domain)


@pytest.mark.parametrize("s,m,l,r,keep,l1,l2", [
    (0.5, 0.5, 0.5, 0.0, False, False, False),   # the strongest never solves: dropped from everything
    (0.5, 0.5, 0.5, 0.01, True, True, True),     # just inside keep
    (0.0, 1.0, 1, 1, True, False, True),         # small fails, 7B fully right
    (0.0, 0.5, 1, 1, True, False, True),         # small fails, 7B partly right
    (0.0, 0.0, 1, 1, True, False, False),        # both fail
    (0.5, 0.5, 1, 1, True, True, True),          # both partial
    (0.5, 1.0, 1, 1, True, True, False),         # small partial, 7B full
    (1.0, 1.0, 1, 1, True, False, False),        # small always right
    (1 / 16, 15 / 16, 1, 1, True, True, True),   # just inside the open ends
])
def test_paper_l1_l2_boundaries(paper, s, m, l, r, keep, l1, l2):
    v = lab(paper, s, m, l, r)
    assert (v["keep"], v["L1"], v["L2"]) == (keep, l1, l2)


def test_paper_l3_all_failures_plus_seeded_fraction(paper):
    ids = [f"q{i}" for i in range(2000)]
    assert all(lab(paper, 0, 0, 0.0, 1, pid)["L3"] for pid in ids[:50])  # the 32B fails: always in
    for domain, frac in (("math", 0.5), ("code", 0.1)):
        kept = [pid for pid in ids if lab(paper, 0, 0, 0.5, 1, pid, domain)["L3"]]
        assert abs(len(kept) / len(ids) - frac) < 0.04
        again = [pid for pid in reversed(ids) if lab(paper, 0, 0, 1.0, 1, pid, domain)["L3"]]
        assert sorted(again) == sorted(kept)  # same draw whatever the order and the rate in (0,1]
    assert retained(0, "L3", "x", 1.0) and not retained(0, "L3", "x", 0.0)
    assert [retained(1, "L3", i, 0.5) for i in ids[:64]] != [retained(0, "L3", i, 0.5) for i in ids[:64]]


@pytest.mark.parametrize("cond,rate,want", [
    ("a in (0,1)", 0.0, False), ("a in (0,1)", 1.0, False), ("a in (0,1)", 0.5, True),
    ("a in [0,0]", 0.0, True), ("a in [0,0]", 1e-9, False), ("a in (0,1]", 1.0, True),
    ("a in [0.25,0.5)", 0.25, True), ("a in [0.25,0.5)", 0.5, False),
    ({"not": "a in [0,0]"}, 0.0, False), ({"all": ["a in (0,1]", "a in [0,0.5]"]}, 0.5, True),
    ({"any": ["a in [1,1]", {"all": ["a in [0,0]", "a in [0,0]"]}]}, 0.0, True),
])
def test_interval_ends_and_combinations(cond, rate, want):
    rules = load_rules({"models": {"a": "A"}, "levels": {"X": cond}})
    assert label(rules, {"A": rate}, "p", "math")["X"] is want


@pytest.mark.parametrize("spec, where", [
    ({"models": {"a": "A"}, "levels": {"X": "b in (0,1)"}}, "rules.levels.X: unknown model alias 'b'"),
    ({"models": {"a": "A"}, "levels": {"X": "a between 0 and 1"}}, "rules.levels.X: cannot read"),
    ({"models": {"a": "A"}, "levels": {"X": {"all": ["a in (0,1)", "a in (2,3)"]}}}, "rules.levels.X.all[1]: interval"),
    ({"models": {"a": "A"}, "levels": {"X": {"retain": {"math": 2}}}}, "rules.levels.X.retain"),
    ({"models": {"a": "A"}, "levels": {}}, "rules.levels: expected"),
    ({"models": {"a": "A"}, "levels": {"X": "a in (0,1)"}, "kep": 1}, "rules.kep: unknown key"),
])
def test_errors_name_the_key(spec, where):
    with pytest.raises(RulesError, match=__import__("re").escape(where)):
        load_rules(spec)


def test_bind_and_missing_rates(paper):
    bound = bind(paper, {"small": "mine"})
    assert bound.models["small"] == "mine" and paper.models["small"] == S
    with pytest.raises(RulesError, match="cannot bind unknown alias"):
        bind(paper, {"tiny": "x"})
    with pytest.raises(RulesError, match="needs the rate"):
        label(paper, {S: 0.5}, "p", "math")


def test_decide_is_sound_and_exact_when_known(paper):
    """Any decided verdict holds for every rate inside the bounds; known rates equal label()."""
    rng = random.Random(0)
    k = 8
    grid = [i / k for i in range(k + 1)]
    for trial in range(400):
        bounds = {}
        for m in (S, M, L, R):
            if rng.random() < 0.25:
                continue  # unscored: [0, 1]
            drawn = rng.randint(0, k)
            s = rng.randint(0, drawn)
            bounds[m] = (s / k, (s + k - drawn) / k)
        pid = f"p{trial}"
        verdicts = decide(paper, bounds, pid, "math")
        relevant = relevant_models(paper, bounds, pid, "math")
        for _ in range(30):
            rates = {m: rng.choice([g for g in grid if lo <= g <= hi]) for m, (lo, hi) in
                     ((m, bounds.get(m, (0.0, 1.0))) for m in (S, M, L, R))}
            truth = label(paper, rates, pid, "math")
            for name, v in verdicts.items():
                if v is not None:
                    assert truth[name] == v, (bounds, rates, name)
            if not relevant:  # nothing left to sample: every verdict decided
                assert None not in verdicts.values()
        exact = {m: rng.choice(grid) for m in (S, M, L, R)}
        assert decide(paper, {m: (r, r) for m, r in exact.items()}, pid, "math") == label(paper, exact, pid, "math")


def test_relevant_models_skip_what_cannot_matter(paper):
    # the strongest already solved it; small always right -> L1, L2 false; only the 32B matters (L3)
    assert relevant_models(paper, {R: (0.25, 0.5), S: (1, 1)}, "p", "math") == {L}
    # the strongest never solves it (known): dropped, nobody else matters
    assert relevant_models(paper, {R: (0, 0)}, "p", "math") == set()


@pytest.mark.parametrize("l,r,keep,always_in", [
    (0.0, 1.0, True, True),       # the 32B never solves it: always in L3
    (0.0, 1 / 16, True, True),    # ... with the strongest just inside keep
    (0.0, 0.0, False, False),     # dropped by keep even though the 32B fails
    (1 / 16, 1.0, True, False),   # just inside (0,1]: retained by the draw only
    (1.0, 1.0, True, False),      # exactly 1: retained by the draw only
])
def test_paper_l3_boundaries(paper, l, r, keep, always_in):
    ids = [f"q{i}" for i in range(400)]
    got = [lab(paper, 0.5, 0.5, l, r, pid, "math")["L3"] for pid in ids]
    assert lab(paper, 0.5, 0.5, l, r)["keep"] is keep
    if always_in or not keep:
        assert all(got) is always_in and any(got) is always_in
    else:
        draws = [retained(0, "L3", pid, 0.5) for pid in ids]
        assert got == draws and 0.4 < sum(got) / len(ids) < 0.6


def test_paper_policy_alias_binds_l1_only(paper):
    mine = bind(paper, {"policy": "my-policy"})
    rates = {S: 0.0, M: 0.5, L: 0.0, R: 1.0, "my-policy": 0.5}
    v = label(mine, rates, "p", "math")
    assert (v["L1"], v["L2"], v["L3"]) == (True, True, True)  # L1 from my-policy; L2 from the 1.5B (0) and 7B
    assert label(mine, {**rates, "my-policy": 1.0}, "p", "math")["L1"] is False
    with pytest.raises(RulesError, match=r"needs the rate of model\(s\) \['my-policy'\]"):
        label(mine, {S: 0.5, M: 0.5, L: 0.5, R: 1.0}, "p", "math")
    assert load_rules("demo").models == {"policy": "smollm2-135m"} and load_rules("demo").keep is None
