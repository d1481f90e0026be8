"""What an answer says beyond its value: its unit, the variable it names, an inequality's interval.

Pure string work, linear in the input (no sympy). ``prepare(answer, gold)`` applies the rules
below and returns either a certain verdict (0.0) or the two *values* left to compare:

- **Units.** A trailing unit (``5 \\text{ cm}``, ``5\\,\\mathrm{kg}``, ``15 \\mbox{ cm}^2``, ``5 kg``,
  ``10 inches``, ``30^\\circ``, ``\\$5``) is split from the value; spellings are folded (``cm`` =
  ``centimeters``, ``ft^2`` = ``square feet``, ``mph`` = ``miles per hour``). When both sides
  carry a unit, they must be the same unit (no conversion: ``0.05 \\text{ m}`` is not an answer
  to a gold of ``5 \\text{ cm}``; the gold's unit is the one the problem asked for). When only one
  side carries a unit, the values are compared (a careful grader accepts ``15`` for
  ``15 \\text{ cm}^2`` when the problem asked "how many square centimetres", and ``10 \\text{ cm}``
  for a bare ``10``). ``units`` / ``square units`` are placeholders that match any unit, and a
  counted noun (``12 \\text{ ways}``, ``5 \\text{ apples}``) is no unit of measure: only two known
  units (lengths, areas, masses, times, volumes, speeds, angles, money) can disagree.
  A bare one-letter unit (``m``, ``g``, ``s``, ``h``, ``L``) counts only after a space
  (``5 m``), since ``5m`` is an expression in ``m``.
- **Variables.** ``x = 3`` names ``x``. When both sides name variables for constant values
  (``x = 3`` vs ``y = 3``; ``x = 2 \\text{ or } x = 3``), the sets of names must be equal; when only
  one side names one, the values are compared (``x = 5`` vs ``5``). An equation whose right side
  still has a variable (``y = 2x + 1``) is left to Math-Verify.
- **Inequalities** in one variable become intervals (``x \\le 3`` is ``(-\\infty,3]``,
  ``1 < x \\le 2`` is ``(1,2]``, ``x < -1 \\text{ or } x > 2`` is ``(-\\infty,-1)\\cup(2,\\infty)``),
  so they equal the interval a gold states; two inequalities in different variables differ.
"""

from __future__ import annotations

import re

from .extract import normalize, strip_wrappers, top_level_split

_SYNONYMS = {
    "m": "meter meters metre metres", "cm": "centimeter centimeters centimetre centimetres",
    "mm": "millimeter millimeters millimetre millimetres", "km": "kilometer kilometers kilometre kilometres",
    "in": "inch inches", "ft": "foot feet", "yd": "yard yards", "mi": "mile miles",
    "g": "gram grams gm", "kg": "kilogram kilograms kgs kilo kilos", "mg": "milligram milligrams",
    "lb": "lbs pound pounds", "oz": "ounce ounces", "t": "ton tons tonne tonnes",
    "s": "sec secs second seconds", "min": "mins minute minutes", "h": "hr hrs hour hours",
    "day": "days", "week": "weeks", "month": "months", "year": "years yr yrs",
    "l": "liter liters litre litres", "ml": "milliliter milliliters millilitre millilitres",
    "deg": "degree degrees", "rad": "radian radians", "dollar": "dollars usd", "cent": "cents",
    "unit": "units", "mi/h": "mph", "km/h": "kph kmh",
}
_CANON = {w: k for k, v in _SYNONYMS.items() for w in v.split()} | {k: k for k in _SYNONYMS}
_ONE_LETTER = frozenset("m g s h l t".split())
_OPERATOR_END = re.compile(r"(?:[-+*/=^,;(]|\\(?:times|cdot|div|pm|mp|le|ge|leq|geq|in))$")

_EXP = r"(?:\^\s*\{?\s*([23])\s*\}?)?"
_TEXT_UNIT = re.compile(r"(?:\\[,;: !]|~|\s)*\\(?:text|mbox|mathrm|textrm|rm)\s*\{([^{}]*)\}\s*" + _EXP + r"\s*$")
_BARE_UNIT = re.compile(r"((?:\\[,;: !]|~|\s)*)([a-zA-Z]+(?:\s*/\s*[a-zA-Z]+)?)\s*" + _EXP + r"\s*$")
_DEGREES = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree)\s*$")
_WHOLE_TEXT = re.compile(r"\\(?:text|mbox|mathrm|textrm)\s*\{([^{}]*)\}")
_DOLLAR = re.compile(r"^\s*(?:\\\$|\\textdollar)\s*")


def canonical_unit(text: str, exp: str | None = None) -> str | None:
    """Canonical spelling of a unit phrase (``square feet`` -> ``ft^2``), or ``None`` if it is not one."""
    words = re.findall(r"[a-zA-Z]+|/", text.lower().replace(" per ", "/"))
    power = exp
    if words[:1] in (["square"], ["sq"]):
        words, power = words[1:], "2"
    elif words[:1] == ["cubic"]:
        words, power = words[1:], "3"
    if words[-1:] == ["squared"]:
        words, power = words[:-1], "2"
    if not words or words[0] == "/" or words[-1] == "/" or words[0] in ("or", "and", "if", "for", "when"):
        return None
    parts = []
    for w in words:
        if w == "/":
            parts.append("/")
            continue
        c = _CANON.get(w)
        if c is None:  # an unknown word (apples, people): singular, lower case
            c = w[:-2] if w.endswith("ches") else w[:-1] if w.endswith("s") and len(w) > 3 else w
        parts.append(c)
    unit = "".join(parts)
    unit = _CANON.get(unit, unit)  # mi/h, km/h
    return unit + (f"^{power}" if power else "")


def split_unit(s: str) -> tuple[str, str | None]:
    """``(value, unit)`` of an answer; ``unit`` is ``None`` when it has none (see the module docstring)."""
    s = strip_wrappers(s)
    whole = _WHOLE_TEXT.fullmatch(s)  # "\\text{5 cm}"
    if whole:
        value, unit = split_unit(whole.group(1))
        if unit:
            return value, unit
    m = _DOLLAR.match(s)
    if m:
        return s[m.end():].strip(), "dollar"
    m = _DEGREES.search(s)
    if m and m.start() > 0:
        return s[: m.start()].strip(), "deg"
    m = _TEXT_UNIT.search(s)
    if m and m.start() > 0:
        value, unit = s[: m.start()].strip(), canonical_unit(m.group(1), m.group(2))
        if unit and re.search(r"[\d\\]", value) and not _OPERATOR_END.search(value):
            return value, unit
    m = _BARE_UNIT.search(s)
    if m and m.start() > 0:
        value, word = s[: m.start()].strip(), re.sub(r"\s+", "", m.group(2)).lower()
        bare_value = re.sub(r"\\[a-zA-Z]+", "", value)
        known = word in _CANON or all(w in _CANON for w in word.split("/"))
        spaced = bool(m.group(1))
        if (known and value and not re.search(r"[a-zA-Z]", bare_value) and re.search(r"\d", value)
                and (spaced or (word not in _ONE_LETTER and len(word) > 1))):
            return value, canonical_unit(word.replace("/", " / "), m.group(3))
    return s, None


def _known(unit: str) -> bool:
    """A unit of measure we know (``cm^2``, ``mi/h``), not a counted noun (``ways``, ``apples``)."""
    return all(re.sub(r"\^\d$", "", u) in _SYNONYMS for u in unit.split("/"))


def units_agree(a: str | None, b: str | None) -> bool:
    """Whether two canonical units can name the same quantity: either missing, equal, generic
    (``units``), or either one a counted noun (``12 ways`` answers ``12 arrangements``)."""
    if a is None or b is None or a == b:
        return True
    if a.split("^")[0] == "unit" or b.split("^")[0] == "unit":
        return True
    return not (_known(a) and _known(b))


_NAME = r"(?:[a-zA-Z]|\\(?!infty|pi\b)[a-zA-Z]+)(?:_\{?[a-zA-Z0-9]+\}?)?"
_ASSIGNMENT = re.compile(r"^\s*(" + _NAME + r")\s*=\s*([^=<>]+)$")
_PART_SEP = re.compile(r"\\text\s*\{\s*(?:or|and)\s*\}|(?<![a-zA-Z\\])(?:or|and)(?![a-zA-Z])|\\lor|\\vee|\\quad")


def assignment(s: str) -> tuple[str, str] | None:
    """``(name, right side)`` of ``name = value`` (one variable, one ``=``), else ``None``."""
    m = _ASSIGNMENT.match(strip_wrappers(s))
    if not m or "\\le" in m.group(2) or "\\ge" in m.group(2):
        return None
    return re.sub(r"[\s{}]", "", m.group(1)), m.group(2).strip()


def _constant(rhs: str) -> bool:
    value = normalize(split_unit(rhs)[0])
    return not re.search(r"[a-df-hj-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", value))


def value_names(s: str) -> frozenset[str]:
    """Names of the variables ``s`` assigns constant values to (``x = 2, y = 3`` -> {x, y})."""
    names = set()
    for part in top_level_split(strip_wrappers(s)):
        for piece in _PART_SEP.split(part):
            a = assignment(piece)
            if a and _constant(a[1]):
                names.add(a[0])
    return frozenset(names)


_OPS = r"<=|>=|\\leqslant|\\geqslant|\\leqq|\\geqq|\\leq|\\geq|\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|<|>|≤|≥"
_OP_SPLIT = re.compile(f"({_OPS})")
_VAR = re.compile(_NAME)


def _is_less(op: str) -> bool:
    return op.startswith("<") or op.startswith("\\le") or op == "≤"


def _strict(op: str) -> bool:
    return op in ("<", ">")


def _one_interval(norm: str) -> tuple[str, str] | None:
    tok = _OP_SPLIT.split(norm)
    vals, ops = tok[0::2], tok[1::2]
    if not 1 <= len(ops) <= 2 or any(not v.strip() for v in vals):
        return None
    vals = [v.strip() for v in vals]
    var_at = [i for i, v in enumerate(vals) if _VAR.fullmatch(v)]
    if len(ops) == 1 and len(var_at) >= 1:
        i = var_at[0]
        var, val, op = vals[i], vals[1 - i], ops[0]
        less = _is_less(op) if i == 0 else not _is_less(op)  # "3 > x" is "x < 3"
        if less:
            return var, f"(-\\infty,{val}{')' if _strict(op) else ']'}"
        return var, f"{'(' if _strict(op) else '['}{val},\\infty)"
    if len(ops) == 2 and var_at == [1] and _is_less(ops[0]) == _is_less(ops[1]):
        lo, hi, lo_op, hi_op = vals[0], vals[2], ops[0], ops[1]
        if not _is_less(ops[0]):
            lo, hi, lo_op, hi_op = hi, lo, hi_op, lo_op
        return vals[1], f"{'(' if _strict(lo_op) else '['}{lo},{hi}{')' if _strict(hi_op) else ']'}"
    return None


def as_interval(norm: str) -> tuple[str, str] | None:
    """``(variable, interval)`` for a normalized one-variable inequality (or a union joined by
    ``or``), else ``None``."""
    if not _OP_SPLIT.search(norm) or len(norm) > 400:
        return None
    pieces = [p for p in _PART_SEP.split(norm) if p.strip()]
    got = [_one_interval(p) for p in pieces]
    if not got or any(g is None for g in got) or len({g[0] for g in got}) != 1:  # type: ignore[index]
        return None
    return got[0][0], "\\cup".join(g[1] for g in got)  # type: ignore[index]


def prepare(answer: str, gold: str) -> float | tuple[str, str]:
    """0.0 when the answer names another variable or unit than the gold, else ``(answer value,
    gold value)`` for the numeric/symbolic comparison (units and ``x =`` dropped, inequalities as
    intervals)."""
    names_a, names_g = value_names(answer), value_names(gold)
    if names_a and names_g and names_a != names_g:
        return 0.0
    values = []
    units = []
    for s in (answer, gold):
        a = assignment(s)
        v = a[1] if a else s
        v, u = split_unit(v)
        values.append(v)
        units.append(u)
    if not units_agree(*units):
        return 0.0
    iv = [as_interval(normalize(v)) for v in values]
    if iv[0] and iv[1] and iv[0][0] != iv[1][0]:
        return 0.0
    return tuple(i[1] if i else v for i, v in zip(iv, values))  # type: ignore[return-value]
