"""Rules syntax: interval mappings, key-path errors, YAML round trip, and random nested rules
checked for decide()/relevant_models() soundness against label()."""

import random
import re

import pytest
import yaml

from stagerl.levels import RulesError, bind, decide, label, load_rules, relevant_models
from stagerl.levels.rules import parse_interval

GRID = [i / 8 for i in range(9)] + [1e-9, 1 - 1e-9]


@pytest.mark.parametrize("text, mapping", [
    ("(0,1)", {"min_open": True, "max_open": True}),
    ("[0,0]", {"max": 0}),
    ("(0,1]", {"min": 0, "min_open": True}),
    ("[0.25,0.5)", {"min": 0.25, "max": 0.5, "max_open": True}),
    ("[0,1]", {}),
])
def test_interval_mapping_equals_string(text, mapping):
    s = load_rules({"models": {"a": "A"}, "levels": {"X": f"a in {text}"}})
    m = load_rules({"models": {"a": "A"}, "levels": {"X": {"a": mapping}}})
    m2 = load_rules({"models": {"a": "A"}, "levels": {"X": {"a": text}}})
    assert parse_interval(text) == parse_interval(mapping)
    for r in GRID:
        want = label(s, {"A": r}, "p", "math")["X"]
        assert label(m, {"A": r}, "p", "math")["X"] is want and label(m2, {"A": r}, "p", "math")["X"] is want


@pytest.mark.parametrize("spec, message", [
    ({"models": {"a": "A"}, "levels": {"X": {"a": {"minn": 0}}}}, "rules.levels.X.a.minn: unknown key"),
    ({"models": {"a": "A"}, "levels": {"X": {"any": [{"a": {"min_open": "yes"}}]}}},
     "rules.levels.X.any[0].a.min_open: expected true or false"),
    ({"models": {"a": "A"}, "levels": {"X": "a in (0,0]"}}, "rules.levels.X: interval (0,0] is empty"),
    ({"models": {"a": "A"}, "levels": {"X": "a in (0;1)"}}, "rules.levels.X: cannot read interval '(0;1)'"),
    ({"models": {"all": "A"}, "levels": {"X": "all in (0,1)"}}, "rules.models.all: an alias is a word"),
    ({"models": {"a": ""}, "levels": {"X": "a in (0,1)"}}, "rules.models.a: expected a model name"),
    ({"models": {"a": "A"}, "seed": "x", "levels": {"X": "a in (0,1)"}}, "rules.seed: expected an integer"),
    ({"models": {"a": "A"}, "levels": {"L/1": "a in (0,1)"}}, "rules.levels.L/1: a level name"),
    ({"models": {"a": "A"}, "levels": {"X": "a in (0,1)"}, "keep": {"nope": 1}}, "rules.keep: expected an atom"),
    ({"models": "A", "levels": {"X": "a in (0,1)"}}, "rules.models: expected a mapping"),
])
def test_more_errors_name_the_key(spec, message):
    with pytest.raises(RulesError, match=re.escape(message)):
        load_rules(spec)


def test_files_presets_and_retain_domains(tmp_path):
    with pytest.raises(RulesError, match=r"no preset of that name \(presets: demo, paper, paper-strict\)"):
        load_rules("papr")
    bad = tmp_path / "r.yaml"
    bad.write_text("models: {a: A}\nlevels:\n  X: {all: ['a in (0,1)']}\n  Y: 'b in (0,1)'\n")
    with pytest.raises(RulesError, match=re.escape(f"{bad}.levels.Y: unknown model alias 'b'")):
        load_rules(bad)
    bad.write_text("models: {a: A}\nlevels:\n  X: {all: [a in (0,1)]}\n")  # unquoted: YAML splits at the comma
    with pytest.raises(RulesError, match=re.escape("levels.X.all[0]: cannot read interval '(0'") + ".*quote each"):
        load_rules(bad)
    only_math = load_rules({"models": {"a": "A"}, "levels": {"X": {"retain": {"math": 1.0}}}})
    assert label(only_math, {}, "p", "math")["X"] is True
    with pytest.raises(RulesError, match="levels.X.retain: no fraction for domain 'code'"):
        label(only_math, {}, "p", "code")
    everywhere = load_rules({"models": {"a": "A"}, "levels": {"X": {"retain": 0.0}}})
    assert label(everywhere, {}, "p", "code")["X"] is False


def test_yaml_round_trip_keeps_bindings(tmp_path):
    paper = bind(load_rules("paper"), {"policy": "mine"})
    path = tmp_path / "rules.yaml"
    path.write_text(paper.to_yaml())
    again = load_rules(path)
    assert again.models == paper.models and again.level_names == ["L1", "L2", "L3"] and again.seed == 0
    rng = random.Random(1)
    for i in range(200):
        rates = {m: rng.choice(GRID) for m in set(paper.models.values())}
        assert label(again, rates, f"p{i}", "code") == label(paper, rates, f"p{i}", "code")
    assert yaml.safe_load(paper.to_yaml())["models"]["policy"] == "mine"


def _random_cond(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.3:
        if rng.random() < 0.1:
            return {"retain": rng.choice([0.0, 0.5, 1.0])}
        lo, hi = sorted(rng.choice(GRID[:9]) for _ in range(2))
        lb, rb = rng.choice("[("), rng.choice("])")
        if lo == hi:
            lb, rb = "[", "]"
        return f"{rng.choice('abc')} in {lb}{lo},{hi}{rb}"
    op = rng.choice(["all", "any", "any", "not"])
    if op == "not":
        return {"not": _random_cond(rng, depth - 1)}
    return {op: [_random_cond(rng, depth - 1) for _ in range(rng.randint(1, 3))]}


def test_random_nested_rules_decide_is_sound():
    """For random nested rules and bounds: a decided verdict equals label() at every rate inside
    the bounds, lo == hi equals label(), and a model outside relevant_models() changes nothing."""
    rng = random.Random(7)
    names = {"a": "A", "b": "B", "c": "C"}
    for trial in range(150):
        spec = {"models": names, "levels": {f"X{i}": _random_cond(rng, 3) for i in range(3)}}
        if rng.random() < 0.5:
            spec["keep"] = _random_cond(rng, 2)
        rules = load_rules(spec)
        for _ in range(10):
            bounds = {}
            for m in "ABC":
                if rng.random() < 0.8:
                    lo, hi = sorted(rng.choice(GRID[:9]) for _ in range(2))
                    bounds[m] = (lo, hi)
            pid = f"p{trial}"
            verdicts = decide(rules, bounds, pid, "math")
            relevant = relevant_models(rules, bounds, pid, "math")
            assert (not relevant) == (None not in verdicts.values())
            inside = {m: [g for g in GRID if bounds.get(m, (0, 1))[0] <= g <= bounds.get(m, (0, 1))[1]] for m in "ABC"}
            for _ in range(8):
                rates = {m: rng.choice(inside[m]) for m in "ABC"}
                truth = label(rules, rates, pid, "math")
                assert all(truth[k] == v for k, v in verdicts.items() if v is not None), (spec, bounds, rates)
                for m in set("ABC") - relevant:
                    assert label(rules, {**rates, m: rng.choice(inside[m])}, pid, "math") == truth
                assert decide(rules, {m: (r, r) for m, r in rates.items()}, pid, "math") == truth
