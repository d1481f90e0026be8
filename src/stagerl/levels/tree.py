"""Walking a parsed level condition: the nested tuples of ``rules._parse`` (``("atom", alias, Interval)``,
``("all" | "any", [children])``, ``("not", child)``, ``("retain", fraction)``)."""

from __future__ import annotations

from typing import Any, Callable, Iterator


def nodes(node: Any, skip: Callable[[Any], bool] | None = None) -> Iterator[Any]:
    """Every node of a condition, depth first, each parent before its children; a node for which
    ``skip(node)`` is true is left out with everything under it. ``None`` (no condition) has no nodes."""
    if node is None or (skip is not None and skip(node)):
        return
    yield node
    if node[0] == "not":
        yield from nodes(node[1], skip)
    elif node[0] in ("all", "any"):
        for child in node[1]:
            yield from nodes(child, skip)
