"""Verdicts decided exactly over a box of pass-rate ranges, where Kleene logic leaves them open.

``rules.decide`` evaluates each atom alone (three-valued), which is sound but not complete: it leaves
open a verdict that holds at every rate of the box only through two atoms of one model together, e.g.
the paper's ``L3: large in [0,0] or (large in (0,1] and retained)`` for a retained problem (true
whatever the 32B does), so adaptive scoring went on sampling the 32B there. ``exact`` decides such a
verdict: each model of an open atom has its range cut by the atoms' interval ends into points and
open gaps, on each of which every atom is constant; the verdict is evaluated at one rate of every
combination of pieces (the range's ends, the cut points inside it, a midpoint of each gap), and it
is decided when all agree. Rates are continuous here: the k-sample rate's grid j/k is not used, so
this stays sound for any box.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from .tree import nodes

MAX_POINTS = 4096
"""Combinations evaluated at most; beyond that the verdict stays open (sound, as Kleene logic)."""


def _grid(rules: Any, parts: list[tuple[Any, str]], bounds: dict, problem_id: str,
          domain: str) -> tuple[list[str], dict[tuple, bool]] | None:
    """The models of open atoms and the conjunction of ``parts`` at every combination of their
    pieces' rates (None when there are more than ``MAX_POINTS``)."""
    from .rules import _eval

    cuts: dict[str, set[float]] = {}

    for part, level in parts:
        for node in nodes(part):
            if node[0] == "atom" and _eval(node, rules, bounds, level, problem_id, domain) is None:
                cuts.setdefault(rules.models[node[1]], set()).update((node[2].lo, node[2].hi))
    reps = {}
    for model, ends in cuts.items():
        lo, hi = bounds.get(model, (0.0, 1.0))
        pts = sorted({lo, hi, *(e for e in ends if lo < e < hi)})
        reps[model] = pts + [(a + b) / 2 for a, b in zip(pts, pts[1:])]
    if math.prod(len(v) for v in reps.values()) > MAX_POINTS:
        return None
    grid = {}
    for combo in itertools.product(*reps.values()):
        at = {**bounds, **{m: (x, x) for m, x in zip(reps, combo)}}
        vals = [_eval(node, rules, at, level, problem_id, domain) for node, level in parts]
        if None in vals and False not in vals:  # cannot happen: every open atom is at a point
            return None
        grid[combo] = False not in vals
    return list(reps), grid


def exact(rules: Any, parts: list[tuple[Any, str]], bounds: dict, problem_id: str, domain: str) -> bool | None:
    """The conjunction of ``parts`` (``(condition, level)``: each is evaluated as its own level, so a
    ``retain`` draw keeps its level) over ``bounds``: True or False when constant there, else None."""
    got = _grid(rules, parts, bounds, problem_id, domain)
    if got is None or not got[1]:
        return None
    seen = set(got[1].values())
    return seen.pop() if len(seen) == 1 else None


def relevant(rules: Any, parts: list[tuple[Any, str]], bounds: dict, problem_id: str,
             domain: str) -> set[str] | None:
    """The models on whose rate the conjunction of ``parts`` depends inside ``bounds``: those for
    which some rates of the others give two values as this one's rate moves (None: too many points).
    A model left out cannot change the verdict whatever the others do, so it may stop (the verdict
    then depends only on the models still relevant, and stays so as their ranges shrink)."""
    got = _grid(rules, parts, bounds, problem_id, domain)
    if got is None:
        return None
    names, grid = got
    out = set()
    for i, name in enumerate(names):
        seen: dict[tuple, set] = {}
        for combo, v in grid.items():
            seen.setdefault(combo[:i] + combo[i + 1:], set()).add(v)
        if any(len(vals) > 1 for vals in seen.values()):
            out.add(name)
    return out
