"""Pure-string half of the math reward: answer extraction, normalization and certain fast verdicts.

Nothing here calls Math-Verify or sympy; every function is linear (or close) in its input, so it is
safe on hostile text. ``fast_verdict`` returns a score only where the reward's verdict is certain
(same normalized string; both sides exact rationals, compared by ``close``: exactly, or to a
relative ``REL_TOL`` when one is a decimal; percents; a hedged answer to a single-valued gold);
otherwise ``None`` and the caller asks Math-Verify (whose float rule the pool's workers replace
with the same relative one, see ``pool.relative_float_rule``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from .final import box_at

MAX_BOX_CHARS = 2000
"""Boxes longer than this (and longer than 10x the gold) are not answers: score 0 without parsing."""
MAX_DEPTH = 64
"""Brace/parenthesis nesting deeper than this is hostile: score 0 without parsing."""

_BOX_CMDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced, escaped braces skipped).

    Also accepts the ``\\boxed 5`` form (up to the next ``$`` or line end). Returns ``None`` when
    there is no box or the last box is unclosed; the content is stripped (may be empty). (The
    reward itself reads the final group of boxes: ``final.final_answer``.)
    """
    start = max(text.rfind(c) for c in _BOX_CMDS)
    return None if start < 0 else box_at(text, start)[0]


def nesting_depth(s: str) -> int:
    """Maximum nesting depth of ``{}``, ``()`` and ``[]`` in ``s`` (brackets counted together)."""
    depth = best = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "})]":
            depth -= 1
    return best


_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_DROP = re.compile(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle|\\[!,;:]|\\quad|\\qquad|~|\\ ")
_TEXT = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_DEG = re.compile(r"\^\s*\{?\\circ\}?|°|\\degree")
_ASSIGN = re.compile(r"^[a-zA-Z]\s*=\s*(?=[^=]*$)")
_SPACED_THOUSANDS = re.compile(r"^([+-]?\d{1,3})((?:(?:\\[,;: !]|~|\s)+\d{3})+)(\.\d+)?$")
_THOUSANDS = re.compile(r"^([+-]?\d{1,3})((?:,\d{3})+)(\.\d+)?$")
_UNIT = re.compile(r"^(.*?\d)\s*\\(?:text|mbox|mathrm)\s*\{\s*[a-zA-Z][a-zA-Z .^2/]*\}$")
_SPACE = re.compile(r"\s+")


def strip_wrappers(s: str) -> str:
    """``s`` without surrounding ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and whitespace."""
    s = s.strip()
    changed = True
    while changed and s:
        changed = False
        for a, b in _WRAPPERS:
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                s, changed = s[len(a) : -len(b)].strip(), True
                break
    return s


def normalize(s: str) -> str:
    """Canonical string form of an answer (see ``_normalize``); answers of up to ``MAX_BOX_CHARS``
    characters are remembered, as every grade normalizes the same gold and forms several times."""
    return _normalize_cached(s) if len(s) <= MAX_BOX_CHARS else _normalize(s)


def _normalize(s: str) -> str:
    """Canonical string form of an answer: wrappers, spacing, ``\\dfrac``, units, degrees, ``x =``.

    Percent signs are kept (Math-Verify treats ``50\\%`` and ``0.5`` as equal but ``0.5\\%`` and
    ``0.5`` as different, so stripping them would not be certain).
    """
    s = strip_wrappers(s)
    m = _SPACED_THOUSANDS.match(s)  # "1\,000", "1 000": digit groups of three (a list needs commas)
    if m:
        s = m.group(1) + re.sub(r"\D", "", m.group(2)) + (m.group(3) or "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",").replace("\\$", "")
    s = re.sub(r",\\!\s*", ",", s)
    m = _THOUSANDS.match(s)  # before spacing is dropped: "58, 500" is a list, "58,500" a number
    if m:
        s = m.group(1) + m.group(2).replace(",", "") + (m.group(3) or "")
    s = _DROP.sub(" ", s)
    s = _DEG.sub("", s)
    m = _UNIT.match(s.strip())
    if m:
        s = m.group(1)
    s = _TEXT.sub(lambda m: m.group(1), s)
    s = _ASSIGN.sub("", s.strip())
    s = s.strip().rstrip(".").strip()
    s = _SPACE.sub(" ", s)
    # Spaces only matter between letters (``\pi r``) and between digits (``2 3`` is not ``23``
    # for Math-Verify): drop the rest.
    # A space after a comma stays: Math-Verify reads "58, 500" as a list but "58,500" as a number.
    s = re.sub(r"(?<!,)(?:(?<![a-zA-Z0-9]) | (?![a-zA-Z0-9])|(?<=[a-zA-Z]) (?=[0-9])|(?<=[0-9]) (?=[a-zA-Z]))", "", s)
    while len(s) >= 2 and s[0] == "{" and s[-1] == "}" and last_balanced(s, 0) == len(s) - 1:
        s = s[1:-1]
    m = re.fullmatch(r"\(([A-Ea-e])\)", s)
    if m:
        s = m.group(1)
    return s


_normalize_cached = lru_cache(maxsize=1 << 16)(_normalize)


def last_balanced(s: str, i: int) -> int:
    """Index of the brace closing the ``{`` at ``s[i]``, or -1."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{":
            depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def top_level_split(s: str, seps: str = ",;") -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        if ch in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_HEDGE_WORDS = re.compile(r"\\pm|\\mp|±|\\lor|\\vee|(?<![a-zA-Z])(?:or|and)(?![a-zA-Z])")


def is_multi(norm: str) -> bool:
    """True when a normalized answer lists several values (top-level ``,``/``;``, ``\\pm``, ``or``)."""
    if len(top_level_split(norm)) > 1:
        return True
    return bool(_HEDGE_WORDS.search(norm))


def is_single_valued(norm_gold: str) -> bool:
    """True when a normalized gold is one value (not a list, set, interval, tuple or ``\\pm``)."""
    if is_multi(norm_gold) or "\\cup" in norm_gold or "\\{" in norm_gold:
        return False
    return not (norm_gold[:1] in "([" and norm_gold[-1:] in ")]" and "," in norm_gold)


_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+)"
_FRAC = re.compile(r"([+-]?)\\frac(?:\{\s*([+-]?\d+)\s*\}|(\d))(?:\{\s*([+-]?\d+)\s*\}|(\d))")
_MIXED = re.compile(r"([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")
_SLASH = re.compile(r"([+-]?\d+)/([+-]?\d+)")
_SCI = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+)|\\(?:times|cdot)10\^\{?([+-]?\d+)\}?)")


def to_rational(norm: str) -> tuple[Fraction, bool, bool] | None:
    """Exact value of a normalized number: ``(value, is_decimal, is_percent)`` or ``None``.

    Accepts integers, decimals, ``\\frac{a}{b}``, ``\\frac ab``, ``a/b``, mixed numbers
    (``2\\frac{1}{2}``), scientific notation (``1e3``, ``1.5\\times10^{-3}``; counted as decimals)
    and a trailing ``\\%``. Anything else (radicals, symbols, huge literals)
    is ``None``.
    """
    s, pct = norm, False
    if s.endswith("\\%") or s.endswith("%"):
        s, pct = s[: -2 if s.endswith("\\%") else -1], True
    if len(s) > 60 or not s:
        return None
    try:
        if re.fullmatch(_INT, s):
            return Fraction(int(s)), False, pct
        if re.fullmatch(_DEC, s):
            return Fraction(s), True, pct
        m = _FRAC.fullmatch(s)
        if m:
            num, den = int(m.group(2) or m.group(3)), int(m.group(4) or m.group(5))
            if den == 0:
                return None
            v = Fraction(num, den)
            return (-v if m.group(1) == "-" else v), False, pct
        m = _MIXED.fullmatch(s)
        if m and int(m.group(4)) != 0:
            v = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
            return (-v if m.group(1) == "-" else v), False, pct
        m = _SLASH.fullmatch(s)
        if m and int(m.group(2)) != 0:
            return Fraction(int(m.group(1)), int(m.group(2))), False, pct
        m = _SCI.fullmatch(s)
        if m and abs(int(m.group(2) or m.group(3))) <= 400:
            return Fraction(m.group(1)) * Fraction(10) ** int(m.group(2) or m.group(3)), True, pct
    except (ValueError, ZeroDivisionError):
        return None
    return None


_NOT_SCALAR = re.compile(r"=|<|>|\\le|\\ge|\\in|\\cup|\\cap|\\\{|\\begin|\\infty|\\pm|\\mp|\\to")


def shape(norm: str) -> str:
    """Coarse shape of a normalized answer: ``tuple`` (bracketed, with a comma), ``list``
    (top-level comma), ``scalar`` (plain expression) or ``other`` (relations, sets, matrices...)."""
    if not norm or _NOT_SCALAR.search(norm) or _HEDGE_WORDS.search(norm):
        return "other"
    if len(top_level_split(norm)) > 1:
        return "list"
    if norm[0] in "([" and norm[-1] in ")]":
        inner = norm[1:-1]
        if nesting_depth(inner) >= 0 and "," in inner and len(top_level_split(inner)) > 1:
            balanced = 0
            for ch in inner:
                balanced += ch in "([{"
                balanced -= ch in ")]}"
                if balanced < 0:
                    return "other"
            return "tuple"
    return "scalar"


def oversized(box: str, gold: str) -> bool:
    """An answer too long (``MAX_BOX_CHARS``, or 10x the gold) or too nested (``MAX_DEPTH``) to be one."""
    return len(box) > max(MAX_BOX_CHARS, 10 * len(gold)) or nesting_depth(box) > MAX_DEPTH


def fast_verdict(box: str | None, gold: str) -> float | None:
    """Score for ``box`` (the extracted answer) against ``gold`` when certain without Math-Verify.

    Returns 0.0 for a format error (no box, empty box), an oversized or over-nested box, or a
    hedged box (several values) for a single-valued gold; 1.0 for equal normalized strings; an
    exact comparison when both sides are rationals; ``None`` when Math-Verify must decide.
    """
    if box is None or not box.strip():
        return 0.0
    if oversized(box, gold):
        return 0.0
    nb, ng = normalize(box), normalize(gold)
    if not nb:
        return 0.0
    if nb == ng:
        return 1.0
    if is_single_valued(ng) and is_multi(nb):
        return 0.0
    rb, rg = to_rational(nb), to_rational(ng)
    sb, sg = shape(nb), shape(ng)
    if "scalar" in (sb, sg) and {sb, sg} <= {"scalar", "tuple", "list"} and sb != sg:
        return 0.0  # Math-Verify never equates a number with a tuple, interval or list
    if rb is not None and not rb[1] and rg is None and sg == "scalar":
        letters = set(re.sub(r"\\[a-zA-Z]+", "", ng)) & set("abcdfghjklmnopqrstuvwxyzABCDFGHJKLMNOPQRSTUVWXYZ")
        if letters and not re.search(r"\\(?:text|mbox|mathrm)", gold):
            # an exact number never equals a gold with free variables (e, i excluded); letters of a
            # unit the normalizer could not strip (``864 \mbox{ inches}^2``) go to Math-Verify
            return 0.0
    if rb is None or rg is None:
        return None
    (vb, db, pb), (vg, dg, pg) = rb, rg
    if pb != pg:  # "4\\%" answers a gold of 4 (the percent sign as a unit) or of 0.04, whatever the sign
        p, q = (vb, vg) if pb else (vg, vb)
        return 1.0 if close(p, q, db or dg) or close(p / 100, q, db or dg) else 0.0
    return 1.0 if close(vb, vg, db or dg) else 0.0


REL_TOL = Fraction(1, 10**9)
"""Relative tolerance between a decimal and the value it approximates (see ``close``)."""


def close(a: Fraction, b: Fraction, decimal: bool) -> bool:
    """Equality of two exact values; when one was written as a decimal (a possibly rounded value),
    within ``REL_TOL`` relative. Terminating decimals equal their fractions exactly (0.25 = 1/4);
    ``0.333333`` is not 1/3 (relative error 1e-6, a rounding), ``0.3333333333`` is (1e-10)."""
    if a == b:
        return True
    return decimal and abs(a - b) <= REL_TOL * max(abs(a), abs(b))
