"""``levels/tree.nodes`` walks a parsed condition: every node once, parents before children, and a skipped
node takes everything under it along (the rules' open-model search relies on that pruning)."""

from __future__ import annotations

from stagerl.levels.rules import load_rules
from stagerl.levels.tree import nodes

RULES = load_rules({"models": {"a": "a", "b": "b"}, "seed": 0,
                    "keep": {"any": ["b in (0,1]", {"retain": 0.3}]},
                    "levels": {"X": {"all": ["a in (0,1)", {"not": {"any": ["b in [0,0]", {"retain": 0.5}]}}]}}})


def _label(node):
    return node[0] if node[0] != "atom" else f"atom {node[1]}"


def test_every_node_once_parents_first():
    got = [_label(n) for n in nodes(RULES.levels["X"])]
    assert got == ["all", "atom a", "not", "any", "atom b", "retain"]
    assert [_label(n) for n in nodes(RULES.keep)] == ["any", "atom b", "retain"]


def test_a_skipped_node_takes_its_subtree_along():
    got = [_label(n) for n in nodes(RULES.levels["X"], skip=lambda n: n[0] == "not")]
    assert got == ["all", "atom a"]
    assert list(nodes(RULES.levels["X"], skip=lambda n: n[0] == "all")) == []


def test_no_condition_has_no_nodes():
    assert list(nodes(None)) == []
