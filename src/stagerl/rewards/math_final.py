"""Which boxes of a response are its final answer, and whether it hedges between several.

The paper's reward reads the last ``\\boxed{}``. A response *commits* to that box alone unless it
offers other candidates beside it as final answers; then the grader sees every candidate.

The rule (a careful grader's reading, linear in the text):

- Boxes are chained backwards from the last one: an earlier box joins the final group when the
  text between it and the next box is short (``MAX_GAP`` characters once math delimiters are
  dropped) and either has no words at all (``\\boxed{3}, \\boxed{4}``) or offers an alternative
  (``or``, ``either``, ``and``, ``maybe``, ``possibly``, ``could``, ...) without a correction word
  (``wait``, ``no``, ``actually``, ``wrong``, ``so``, ``therefore``, ``final``, ...). So
  ``\\boxed{4} or \\boxed{5}``, ``either \\boxed{4} or \\boxed{5}`` and three boxes in a row are one
  group of candidates, while a box of an intermediate result followed by more reasoning, or a
  draft corrected later (``\\boxed{4}. Wait, ... \\boxed{5}``), is not part of the final answer.
- The sentence that leads into the final group is a hedge when it says ``either`` or ends in
  ``or`` (``either 4 or \\boxed{5}``, ``4 or \\boxed{5}``); so is a final box followed by ``or``
  (``\\boxed{5} or 6``). Text hedges count only against a single-valued gold (the caller decides).

The caller then grades every distinct candidate (see ``math.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_GAP = 120
"""Characters of text (math delimiters dropped) that may separate two boxes of one final group."""

_BOX_CMDS = re.compile(r"\\boxed|\\fbox")
_ALTERNATIVE = frozenset("or either and maybe perhaps possibly alternatively might could also".split())
_CORRECTION = frozenset(
    "wait no not actually instead mistake mistakes wrong error incorrect correct corrected correction fix fixed "
    "oops sorry recheck rechecking recalculate recalculating recompute redo check checking so therefore thus hence "
    "final finally answer hmm".split())
_DELIMS = re.compile(r"\$|\\[()\[\]]|\\(?:text|textbf|mathrm|mbox)\s*\{|[{}]|\\[,;:! ]|\\quad|\\qquad|~")
_WORD = re.compile(r"[a-zA-Z]+")


@dataclass
class Final:
    """The final answer part of a response: its candidate boxes (in order) and whether the text
    around them hedges (``either 4 or \\boxed{5}``)."""

    candidates: list[str]
    text_hedge: bool


def _box_at(text: str, start: int) -> tuple[str | None, int]:
    """Content of the box whose command starts at ``start`` and the index after it (``None`` if unclosed)."""
    i = start + (len("\\boxed") if text.startswith("\\boxed", start) else len("\\fbox"))
    n = len(text)
    if i < n and text[i] in " \t" and not text[i:i + 200].lstrip(" \t").startswith("{"):
        while i < n and text[i] in " \t":
            i += 1
        end = n
        for stop in ("$", "\n", "\\]", "\\)"):
            k = text.find(stop, i)
            if 0 <= k < end:
                end = k
        return text[i:end].strip().rstrip("."), end
    while i < n and text[i] in " \t":
        i += 1
    if i >= n or text[i] != "{":
        return None, n
    depth, j = 0, i + 1
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return text[i + 1 : j].strip(), j + 1
            depth -= 1
        j += 1
    return None, n


def all_boxes(text: str) -> list[tuple[int, int, str | None]]:
    """``(start, end, content)`` of every top-level box, left to right (a box inside a box is part of
    its content); an unclosed box ends the list with content ``None``. Linear in ``len(text)``."""
    out: list[tuple[int, int, str | None]] = []
    pos = 0
    while True:
        m = _BOX_CMDS.search(text, pos)
        if m is None:
            return out
        content, end = _box_at(text, m.start())
        out.append((m.start(), end, content))
        if content is None:
            return out
        pos = max(end, m.end())


def _words(gap: str) -> list[str] | None:
    """Lower-case words of a gap between boxes, or ``None`` when the gap is too long to join them."""
    if len(gap) > 4 * MAX_GAP:
        return None
    clean = _DELIMS.sub(" ", gap)
    if len(clean.strip()) > MAX_GAP:
        return None
    return [w.lower() for w in _WORD.findall(clean)]


def joins(gap: str) -> bool:
    """True when ``gap`` (the text between two boxes) offers the boxes as alternatives."""
    words = _words(gap)
    if words is None:
        return False
    if not words:
        return True
    return bool(_ALTERNATIVE.intersection(words)) and not _CORRECTION.intersection(words)


_LEAD_HEDGE = re.compile(r"(?:^|[^a-z])either(?![a-z])(?!\s*(?:way|case|of|side|one)\b)|(?:^|[^a-z])or\s*$")
_TRAIL_HEDGE = re.compile(r"^\s*[,(]?\s*or(?:[^a-z]|$)")


def final_answer(text: str) -> Final | None:
    """The final group of boxes of ``text`` (see the module docstring); ``None`` when the response has
    no box, or its last box is unclosed (a format error)."""
    boxes = all_boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None
    k = len(boxes) - 1
    while k > 0 and joins(text[boxes[k - 1][1] : boxes[k][0]]):
        k -= 1
    group = boxes[k:]
    lead_from = boxes[k - 1][1] if k > 0 else 0
    lead = _DELIMS.sub(" ", text[max(lead_from, group[0][0] - 200) : group[0][0]]).lower()
    lead = re.split(r"[.!?:\n]", lead)[-1]  # the sentence that leads into the final box
    trail = _DELIMS.sub(" ", text[group[-1][1] : group[-1][1] + 40]).lower()
    hedge = bool(_LEAD_HEDGE.search(lead)) or bool(_TRAIL_HEDGE.search(trail))
    return Final([c for _, _, c in group if c is not None], hedge)
