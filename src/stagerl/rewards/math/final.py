"""Which boxes of a response are its final answer, and whether it hedges between several.

The paper's reward reads the last ``\\boxed{}``. A response *commits* to that box alone unless it
offers other candidates beside it as final answers; then the grader sees every candidate.

The rule (a careful grader's reading, linear in the text):

- Boxes are chained backwards from the last one: an earlier box joins the final group when the
  text between it and the next box is short (``MAX_GAP`` characters once math delimiters are
  dropped) and either holds only connectives and one-letter names (nothing, ``or``, ``and``,
  ``x =``, ``and also``: ``\\boxed{3}, \\boxed{4}``, ``x = \\boxed{2} and x = \\boxed{3}``) or offers
  an alternative (``or``, ``either``, ``maybe``, ``possibly``, ``could``, ...) without a correction
  word (``wait``, ``no``, ``actually``, ``wrong``, ``so``, ``therefore``, ``final``, ...). So
  ``\\boxed{4} or \\boxed{5}``, ``either \\boxed{4} or \\boxed{5}``, ``\\boxed{4}, but it could also be
  \\boxed{5}`` and three boxes in a row are one group of candidates, while a box of an intermediate
  result followed by more reasoning (``the area is \\boxed{12}, ... so the perimeter is
  \\boxed{14}``; ``the minimum is \\boxed{2} and the maximum is \\boxed{8}``), boxes labelled by
  different names (``x = \\boxed{2}, y = \\boxed{3}``), or a draft corrected later
  (``\\boxed{4}. Wait, ... \\boxed{5}``), is not part of the final answer.
- Text beside the final group can offer more candidates: a sentence that runs into the final box
  with ``or`` (``the answer is either 4 or \\boxed{5}``: ``4`` is a candidate) and an ``or`` right
  after it (``\\boxed{5} or 6``, ``\\boxed{\\frac12} (or 0.5)``). A candidate too long to cut out
  marks the answer as hedged (``text_hedge``), which scores 0 against a single-valued gold.
  ``Either way, the answer is \\boxed{5}`` or ``\\boxed{5}. Or, to check, ...`` offer nothing.

The caller then grades every distinct candidate (see ``math.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_GAP = 120
"""Characters of text (math delimiters dropped) that may separate two boxes of one final group."""

MAX_GROUP = 256
"""A final group of more boxes than this is no answer (scores 0, as a hedge does)."""

_BOX_CMDS = re.compile(r"\\boxed|\\fbox")
_ALTERNATIVE = frozenset("or either maybe perhaps possibly alternatively might could".split())
_FILLER = frozenset("or either and also maybe perhaps possibly alternatively equivalently".split())
_CORRECTION = frozenset(
    "wait no not actually instead mistake mistakes wrong error incorrect correct corrected correction fix fixed "
    "oops sorry recheck rechecking recalculate recalculating recompute redo check checking so therefore thus hence "
    "final finally answer hmm".split())
_DELIMS = re.compile(r"\$|\\[()\[\]]|\\(?:text|textbf|mathrm|mbox)\s*\{|[{}]|\\[,;:! ]|\\quad|\\qquad|~")
_WORD = re.compile(r"[a-zA-Z]+")


@dataclass
class Final:
    """The final answer part of a response: its candidates (boxes, and answers the text offers beside
    them, in order) and whether the text offers one that could not be cut out."""

    candidates: list[str]
    text_hedge: bool


def box_at(text: str, start: int) -> tuple[str | None, int]:
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
        content, end = box_at(text, m.start())
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
    if all(w in _FILLER or len(w) == 1 for w in words):  # "", "or", "and", "x =", "and also"
        return True
    return bool(_ALTERNATIVE.intersection(words)) and not _CORRECTION.intersection(words)


_MATH_DELIMS = re.compile(r"\$|\\[()\[\]]")
_LEAD_OR = re.compile(r"(?<![a-zA-Z])or(?:\s+(?:possibly|maybe|perhaps|even))?\s*$", re.I)
_LEAD_START = re.compile(r".*(?:^|(?<![a-zA-Z])(?:is|be|are|equals|either|get|gives)(?![a-zA-Z])|=|,|\()", re.I | re.S)
_TRAIL_OR = re.compile(
    r"^(?:[ \t]|\$|\\[)\]])*[,(]?[ \t]*or(?:\s+(?:possibly|maybe|perhaps|equivalently))?(?![a-zA-Z])\s*", re.I)
_TRAIL_END = re.compile(r"\)|[,;\n]|\.(?:\s|$)")


def _sentence_tail(s: str) -> str:
    """The last sentence of ``s`` (a ``.`` counts only before a space, so ``0.5`` stays whole)."""
    return re.split(r"[!?;:\n]|\.(?=\s)", s)[-1]


def _lead_candidate(lead: str) -> str | None:
    """``4`` in ``the answer is either 4 or \\boxed{5}``; ``""`` when the sentence ends in ``or`` but
    no short candidate can be cut out; ``None`` when it does not end in ``or``."""
    if "or" not in lead.lower():
        return None
    lead = _MATH_DELIMS.sub(" ", lead)
    m = _LEAD_OR.search(lead)
    if not m:
        return None
    before = lead[: m.start()].rstrip().rstrip(",")
    start = _LEAD_START.match(before)
    cand = _MATH_DELIMS.sub(" ", before[start.end() if start else 0 :]).strip().rstrip(",")
    return cand if 0 < len(cand) <= 60 else ""


def _trail_candidate(trail: str) -> str | None:
    """``6`` in ``\\boxed{5} or 6.``; ``""`` when no short candidate follows ``or``; ``None`` if none."""
    m = _TRAIL_OR.match(trail)
    if not m:
        return None
    rest = trail[m.end() :]
    if rest.startswith("$") or rest.startswith("\\("):
        close = "$" if rest.startswith("$") else "\\)"
        k = rest.find(close, 1 if close == "$" else 2)
        cand = rest[: k + len(close)] if k > 0 else ""
    else:
        e = _TRAIL_END.search(rest)
        cand = rest[: e.start()] if e else rest
    cand = _MATH_DELIMS.sub(" ", cand).strip()
    return cand if 0 < len(cand) <= 60 else ""


_LABEL = re.compile(r"([a-zA-Z]|\\[a-zA-Z]+)\s*=\s*(?:\$|\\[(\[])?\s*$")


def _same_label(text: str, a: int, b: int) -> bool:
    """False when the boxes starting at ``a`` and ``b`` are labelled by different names
    (``x = \\boxed{2}, y = \\boxed{3}``: two quantities, not two candidates)."""
    la, lb = (_LABEL.search(text[max(0, i - 30) : i]) for i in (a, b))
    return la is None or lb is None or la.group(1) == lb.group(1)


def final_answer(text: str) -> Final | None:
    """The final group of boxes of ``text`` with any candidates the text offers beside it (see the
    module docstring); ``None`` when the response has no box, or its last box is unclosed."""
    boxes = all_boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None
    k = len(boxes) - 1
    while k > 0 and joins(text[boxes[k - 1][1] : boxes[k][0]]) and _same_label(text, boxes[k - 1][0], boxes[k][0]):
        k -= 1
        if len(boxes) - k > MAX_GROUP:  # a flood of boxes is no answer
            return Final([], True)
    group = boxes[k:]
    cands = [c for _, _, c in group if c is not None]
    lead_from = boxes[k - 1][1] if k > 0 else 0
    lead = _sentence_tail(text[max(lead_from, group[0][0] - 200) : group[0][0]])
    before, after = _lead_candidate(lead), _trail_candidate(text[group[-1][1] : group[-1][1] + 100])
    hedge = before == "" or after == ""
    return Final(([before] if before else []) + cands + ([after] if after else []), hedge)
