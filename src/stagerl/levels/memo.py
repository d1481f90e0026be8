"""Verdicts remembered: ``rules.decide`` and ``rules.relevant_models`` computed once per distinct case.

Both depend on a problem only through the bounds of each model's rate, its domain and the outcome
of the rules' seeded ``retain`` draws for it; the problem id enters nowhere else (error messages
aside: an error is raised, never remembered). Adaptive scoring asks them about every open pair in
every round, and the statistical stopping rules once per sample still to be drawn, while the bounds
take few values (``s`` successes of ``m`` samples of ``k``): in the own-model simulation of
``tests/scoring/test_joint_stop.py`` 79,207 calls of ``relevant_models`` held 3,283 cases, and the
box evaluation behind each call (``box.py``) was 97% of the time. Each ``Rules`` instance keeps its
own table (rules are not changed after parsing: ``bind`` makes a new instance); a table is emptied
when it reaches ``MAX_ENTRIES``. A call whose case cannot be keyed (bounds that are not pairs of
numbers, a domain the ``retain`` fractions do not list) is computed as before, unremembered.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from .tree import nodes

MAX_ENTRIES = 100_000
"""Cases remembered per function and rules instance before the table starts over (about 1 KB a case: a
simulated scoring of 3,000 problems on the paper's four-model ladder, k=16, rounds of 1, left 12,221 cases
of ``decide`` and 9,449 of ``relevant_models``, 17 MB in all)."""
ENABLED = True
"""False: every call computed (the anchor of ``benchmarks/verdicts.py``)."""


def _draws(rules: Any, problem_id: str, domain: str) -> tuple[bool, ...]:
    """The problem's outcome of every ``retain`` draw of the rules (each as the level it counts for)."""
    from .rules import _retain_fraction, retained

    specs = rules.__dict__.get("_memo_retain")
    if specs is None:
        specs = [(level, node) for level, cond in [("keep", rules.keep), *rules.levels.items()]
                 for node in nodes(cond) if node[0] == "retain"]
        rules.__dict__["_memo_retain"] = specs
    return tuple(retained(rules.seed, level, problem_id, _retain_fraction(node, level, domain)) for level, node in specs)


def memoized(fn: Callable) -> Callable:
    """``fn(rules, bounds, problem_id, domain)`` remembered per rules instance (see the module docstring);
    each call returns its own copy of the result."""

    @functools.wraps(fn)
    def wrapper(rules: Any, bounds: dict, problem_id: str, domain: str) -> Any:
        if not ENABLED:
            return fn(rules, bounds, problem_id, domain)
        try:
            key = (tuple(sorted((m, float(lo), float(hi)) for m, (lo, hi) in bounds.items())), domain,
                   _draws(rules, problem_id, domain))
        except Exception:  # not a case a table can hold: computed as before (and any error raised by fn)
            return fn(rules, bounds, problem_id, domain)
        table = rules.__dict__.setdefault("_memo", {}).setdefault(fn.__name__, {})
        got = table.get(key)
        if got is None:
            got = fn(rules, bounds, problem_id, domain)
            if len(table) >= MAX_ENTRIES:
                table.clear()
            table[key] = got
        return type(got)(got)

    wrapper.uncached = fn  # type: ignore[attr-defined]
    return wrapper
