"""Level rules as data: conditions over per-model pass rates, evaluated exactly or three-valued.

A rules file (YAML or dict)::

    models: {small: r1-distill-qwen-1.5b, medium: r1-distill-qwen-7b}   # alias -> table model name
    seed: 0                                  # seed of the retention draws
    keep: "strongest in (0,1]"               # problems failing `keep` are dropped from every level
    levels:
      L1: "small in (0,1)"
      L2:
        any:
          - all: ["small in [0,0]", "medium in [1,1]"]
          - all: ["small in [0,0]", "medium in (0,1)"]
      L3:
        any:
          - "large in [0,0]"
          - all: ["large in (0,1]", {retain: {math: 0.5, code: 0.1}}]

A condition is one of

- an atom ``"<alias> in <interval>"`` (quote it in YAML) with ``(`` / ``)`` for open and ``[`` / ``]`` for closed
  ends, or the same as a mapping ``{<alias>: "(0,1]"}`` or ``{<alias>: {min: 0, max: 1, min_open: true,
  max_open: false}}`` (``min`` 0, ``max`` 1 and closed ends by default);
- ``{all: [cond, ...]}``, ``{any: [cond, ...]}`` (nest freely) or ``{not: cond}``;
- ``{retain: {domain: fraction}}`` or ``{retain: fraction}`` (every domain): true when a seeded hash of (seed,
  level, problem id) falls below the fraction — deterministic, independent of order and of the other problems. A
  domain the mapping does not list is an error, not a silent 0.

``rate`` (optional) says per domain what a model's rate is: ``pass`` (the default: the share of its samples that
solve the problem, reward 1) or ``reward`` (its mean reward, partial credit counted), e.g. ``rate: {code: reward}``.
With partial-credit code rewards a GRPO group carries signal when its rewards differ, which a mean reward in (0,1)
predicts where a pass rate of 0 does not.

``keep`` (optional) is a condition every level implicitly requires. Levels may overlap. Level names are file and
dataset-config names: letters, digits, ``_ . -``. Aliases cannot be ``all``, ``any``, ``not`` or ``retain``.

``label`` evaluates the rules on known rates. ``decide`` evaluates them on *bounds* — the closed range each model's
final rate can still take — in Kleene three-valued logic (True / False / None for "still open"); adaptive scoring
stops sampling once nothing it could draw changes a verdict. ``decide`` and ``relevant_models`` remember their
cases (``memo.py``).
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .box import exact, relevant
from .memo import memoized
from .tree import nodes

Bounds = dict[str, tuple[float, float]]
_NAME = r"[\w.\-/:]+"
_ATOM = re.compile(rf"^\s*({_NAME})\s+in\s+(.+?)\s*$")
_INTERVAL = re.compile(r"^\s*([\[(])\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*([\])])\s*$")
_LEVEL_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")
_OPS = ("all", "any", "not", "retain")
_INTERVAL_KEYS = {"min", "max", "min_open", "max_open"}


class RulesError(ValueError):
    """The rules are malformed; the message names the key path."""


@dataclass(frozen=True)
class Interval:
    """A closed, open or half-open sub-interval of [0, 1]."""

    lo: float
    hi: float
    lo_open: bool
    hi_open: bool

    def contains(self, x: float) -> bool:
        return (self.lo < x or (not self.lo_open and x == self.lo)) and (x < self.hi or (not self.hi_open and x == self.hi))

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g},{self.hi:g}{')' if self.hi_open else ']'}"


@dataclass
class Rules:
    """Parsed rules. ``models`` maps each alias to the model name used in pass-rate tables;
    ``levels`` maps each level name to its parsed condition (iterate it for the names)."""

    models: dict[str, str]
    levels: dict[str, Any]
    keep: Any = None
    seed: int = 0
    source: dict = field(default_factory=dict)
    rate: dict[str, str] = field(default_factory=dict)

    def measure(self, domain: str) -> str:
        """What a rate of this domain is: ``"pass"`` (share of samples solving it) or ``"reward"``."""
        return self.rate.get(domain, "pass")

    @property
    def aliases(self) -> list[str]:
        return list(self.models)

    @property
    def level_names(self) -> list[str]:
        return list(self.levels)

    @property
    def model_names(self) -> list[str]:
        """The bound model names, each once, in alias order."""
        return list(dict.fromkeys(self.models.values()))

    def to_dict(self) -> dict:
        """The rules as written (with the current alias bindings): YAML-ready."""
        d = copy.deepcopy(self.source)
        d["models"] = dict(self.models)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ------------------------------------------------------------------------------------- parsing


def parse_interval(spec: Any, where: str = "interval") -> Interval:
    """``"(0,1]"`` or ``{min, max, min_open, max_open}`` as an :class:`Interval` within [0, 1]."""
    if isinstance(spec, str):
        m = _INTERVAL.match(spec)
        if not m:
            hint = ("; in a YAML flow list quote each condition: [\"a in (0,1)\", ...]"
                    if spec.strip()[:1] in "[(" and spec.strip()[-1:] not in ")]" else "")
            raise RulesError(f"{where}: cannot read interval {spec!r}; write e.g. '(0,1)' or '[0,0]' "
                             f"with ( ) for open and [ ] for closed ends{hint}")
        lb, lo, hi, rb = m.groups()
        try:
            iv = Interval(float(lo), float(hi), lb == "(", rb == ")")
        except ValueError:
            raise RulesError(f"{where}: cannot read the numbers of interval {spec!r}") from None
    elif isinstance(spec, dict):
        unknown = sorted(set(spec) - _INTERVAL_KEYS)
        if unknown:
            raise RulesError(f"{where}.{unknown[0]}: unknown key (valid: min, max, min_open, max_open)")
        for key in ("min", "max"):
            if key in spec and (isinstance(spec[key], bool) or not isinstance(spec[key], (int, float))):
                raise RulesError(f"{where}.{key}: expected a number, got {spec[key]!r}")
        for key in ("min_open", "max_open"):
            if key in spec and not isinstance(spec[key], bool):
                raise RulesError(f"{where}.{key}: expected true or false, got {spec[key]!r}")
        iv = Interval(float(spec.get("min", 0.0)), float(spec.get("max", 1.0)),
                      spec.get("min_open", False), spec.get("max_open", False))
    else:
        raise RulesError(f"{where}: expected an interval string like '(0,1]' or a mapping "
                         f"{{min, max, min_open, max_open}}, got {spec!r}")
    if not 0 <= iv.lo <= iv.hi <= 1:
        raise RulesError(f"{where}: interval {iv} must lie within [0,1] with lo <= hi")
    if iv.lo == iv.hi and (iv.lo_open or iv.hi_open):
        raise RulesError(f"{where}: interval {iv} is empty (write [{iv.lo:g},{iv.lo:g}] for exactly {iv.lo:g})")
    return iv


def _alias(alias: str, where: str, aliases: set[str]) -> str:
    if alias not in aliases:
        raise RulesError(f"{where}: unknown model alias {alias!r} (aliases under 'models': {', '.join(sorted(aliases))})")
    return alias


def _parse(cond: Any, where: str, aliases: set[str]) -> Any:
    """Conditions become nested tuples: ("atom", alias, Interval) | ("all"|"any", [..]) |
    ("not", c) | ("retain", {domain: fraction} | fraction)."""
    if isinstance(cond, str):
        m = _ATOM.match(cond)
        if not m:
            raise RulesError(f"{where}: cannot read condition {cond!r}; write '<model alias> in (lo,hi)' "
                             "with ( ) for open and [ ] for closed ends")
        alias, iv = m.groups()
        return ("atom", _alias(alias, where, aliases), parse_interval(iv, where))
    if isinstance(cond, dict) and len(cond) == 1:
        (op, arg), = cond.items()
        if op in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                raise RulesError(f"{where}.{op}: expected a non-empty list of conditions")
            return (op, [_parse(c, f"{where}.{op}[{i}]", aliases) for i, c in enumerate(arg)])
        if op == "not":
            return ("not", _parse(arg, f"{where}.not", aliases))
        if op == "retain":
            def frac(v: Any) -> bool:
                return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            if frac(arg):
                return ("retain", float(arg))
            if not isinstance(arg, dict) or not arg or not all(frac(v) for v in arg.values()):
                raise RulesError(f"{where}.retain: expected a fraction in [0,1] or {{domain: fraction}}, got {arg!r}")
            return ("retain", {str(k): float(v) for k, v in arg.items()})
        if isinstance(op, str) and op in aliases:
            return ("atom", op, parse_interval(arg, f"{where}.{op}"))
    raise RulesError(f"{where}: expected an atom ('<alias> in (lo,hi)' or {{<alias>: interval}}) or one of "
                     f"{{all, any, not, retain}}, got {cond!r}")


def load_rules(spec: str | Path | dict | Rules) -> Rules:
    """Rules from a preset name (``paper``, ``demo``), a YAML file or a dict; errors name the key path."""
    if isinstance(spec, Rules):
        return spec
    where = "rules"
    if not isinstance(spec, dict):
        from ..yamlfile import YamlFileError, load_yaml, read_text

        path = Path(spec)
        try:
            if path.exists():
                text, where = read_text(path, "rules file"), str(path)
            else:
                preset = resources.files("stagerl.levels").joinpath("presets", f"{spec}.yaml")
                if not _LEVEL_NAME.match(str(spec)) or not preset.is_file():
                    raise RulesError(f"no rules file {str(spec)!r} and no preset of that name (presets: "
                                     f"{', '.join(presets())})")
                text, where = preset.read_text(encoding="utf-8"), f"preset {spec!r}"
            spec = load_yaml(text, where)
        except YamlFileError as e:
            raise RulesError(str(e)) from None
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a mapping with 'models' and 'levels'")
    keys = ("models", "levels", "keep", "seed", "rate")
    unknown = sorted(set(spec) - set(keys), key=str)
    if unknown:
        from ..valid import did_you_mean

        raise RulesError(f"{where}.{unknown[0]}: unknown key{did_you_mean(unknown[0], keys)} (valid: {', '.join(keys)})")
    rate = spec.get("rate") or {}
    if not isinstance(rate, dict) or any(v not in ("pass", "reward") for v in rate.values()):
        bad = next((f".{d}" for d, v in rate.items() if v not in ("pass", "reward")), "") if isinstance(rate, dict) else ""
        raise RulesError(f"{where}.rate{bad}: expected a mapping domain -> pass | reward, e.g. {{code: reward}}")
    models = spec.get("models")
    if isinstance(models, list):
        models = {m: m for m in models}
    if not isinstance(models, dict) or not models:
        raise RulesError(f"{where}.models: expected a mapping alias -> model name")
    for alias, name in models.items():
        if not isinstance(alias, str) or not re.fullmatch(_NAME, alias) or alias in _OPS:
            raise RulesError(f"{where}.models.{alias}: an alias is a word (letters, digits, _ . - / :) "
                             f"other than {', '.join(_OPS)}")
        if not isinstance(name, str) or not name:
            raise RulesError(f"{where}.models.{alias}: expected a model name, got {name!r}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RulesError(f"{where}.seed: expected an integer, got {seed!r}")
    levels = spec.get("levels")
    if not isinstance(levels, dict) or not levels:
        raise RulesError(f"{where}.levels: expected a mapping level name -> condition")
    for name in levels:
        if not isinstance(name, str) or not _LEVEL_NAME.match(name) or name == "keep":
            raise RulesError(f"{where}.levels.{name}: a level name is letters, digits, _ . - (not 'keep'); "
                             "it names files and dataset configs")
    aliases = set(models)
    parsed = {name: _parse(c, f"{where}.levels.{name}", aliases) for name, c in levels.items()}
    keep = _parse(spec["keep"], f"{where}.keep", aliases) if spec.get("keep") is not None else None
    return Rules(dict(models), parsed, keep, seed, copy.deepcopy(spec), {str(d): v for d, v in rate.items()})


def presets() -> list[str]:
    """Names of the built-in rules presets."""
    folder = resources.files("stagerl.levels").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def bind(rules: Rules, mapping: dict[str, str]) -> Rules:
    """A copy of ``rules`` with aliases re-bound to other model names (e.g. ``{"small": "my-1.5b"}``)."""
    unknown = sorted(set(mapping) - set(rules.models))
    if unknown:
        from ..valid import did_you_mean

        raise RulesError(f"cannot bind unknown alias {unknown[0]!r}{did_you_mean(unknown[0], rules.models)} "
                         f"(aliases: {', '.join(rules.models)})")
    bad = [a for a, n in mapping.items() if not isinstance(n, str) or not n]
    if bad:
        raise RulesError(f"cannot bind alias {bad[0]!r} to {mapping[bad[0]]!r}: expected a model name")
    return Rules({**rules.models, **mapping}, rules.levels, rules.keep, rules.seed, rules.source, rules.rate)


# ----------------------------------------------------------------------------------- evaluation


def retained(seed: int, level: str, problem_id: str, fraction: float) -> bool:
    """Seeded, order-independent draw: is ``problem_id`` among the ``fraction`` retained?"""
    digest = hashlib.sha256(f"{seed}\0{level}\0{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _atom(iv: Interval, lo: float, hi: float) -> bool | None:
    if iv.contains(lo) and iv.contains(hi):
        return True
    if hi < iv.lo or (hi == iv.lo and iv.lo_open) or lo > iv.hi or (lo == iv.hi and iv.hi_open):
        return False
    return None


def _retain_fraction(node: Any, level: str, domain: str) -> float:
    spec = node[1]
    if isinstance(spec, float):
        return spec
    if domain not in spec:
        raise RulesError(f"levels.{level}.retain: no fraction for domain {domain!r} (listed: {', '.join(spec)}); "
                         f"add '{domain}: 0' to retain none")
    return spec[domain]


def _eval(node: Any, rules: Rules, bounds: Bounds, level: str, pid: str, domain: str) -> bool | None:
    kind = node[0]
    if kind == "atom":
        model = rules.models[node[1]]
        lo, hi = bounds.get(model, (0.0, 1.0))
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"problem {pid!r}: bounds of model {model!r} must satisfy 0 <= lo <= hi <= 1, got {(lo, hi)}")
        return _atom(node[2], lo, hi)
    if kind == "retain":
        return retained(rules.seed, level, pid, _retain_fraction(node, level, domain))
    if kind == "not":
        v = _eval(node[1], rules, bounds, level, pid, domain)
        return None if v is None else not v
    vals = [_eval(c, rules, bounds, level, pid, domain) for c in node[1]]
    if kind == "all":
        return False if False in vals else (True if all(vals) else None)
    return True if True in vals else (False if all(v is False for v in vals) else None)


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else (True if a and b else None)


def _level_parts(rules: Rules, cond: Any, name: str) -> list[tuple[Any, str]]:
    """What a level's verdict is the conjunction of, for ``box``: its condition, and ``keep`` if any."""
    return [(cond, name)] if rules.keep is None else [(rules.keep, "keep"), (cond, name)]


@memoized
def decide(rules: Rules, bounds: Bounds, problem_id: str, domain: str) -> dict[str, bool | None]:
    """Three-valued verdicts ("keep" and each level) given the closed range of each model's final
    pass rate (a model missing from ``bounds`` may be anywhere in [0, 1]). A verdict is True/False
    exactly when it holds (fails) for every rate inside the bounds; a dropped problem is in no level.
    Kleene logic first, then ``box.exact`` for what it leaves open."""
    keep = True if rules.keep is None else _eval(rules.keep, rules, bounds, "keep", problem_id, domain)
    if keep is None:
        keep = exact(rules, [(rules.keep, "keep")], bounds, problem_id, domain)
    out: dict[str, bool | None] = {"keep": keep}
    for name, cond in rules.levels.items():
        out[name] = _and(keep, _eval(cond, rules, bounds, name, problem_id, domain))
        if out[name] is None:
            out[name] = exact(rules, _level_parts(rules, cond, name), bounds, problem_id, domain)
    return out


def label(rules: Rules, rates: dict[str, float], problem_id: str, domain: str) -> dict[str, bool]:
    """Exact verdicts ("keep" and each level) for known pass rates keyed by model name. A rate the
    verdicts need but ``rates`` lacks (or holds as NaN) is a :class:`RulesError` naming the model."""
    bounds = {m: (float(r), float(r)) for m, r in rates.items() if r == r}  # r == r: not NaN
    verdicts = decide(rules, bounds, problem_id, domain)
    open_ = [k for k, v in verdicts.items() if v is None]
    if open_:
        missing = sorted(relevant_models(rules, bounds, problem_id, domain))
        raise RulesError(f"problem {problem_id!r}: verdict {open_[0]!r} needs the rate of model(s) {missing}")
    return verdicts  # type: ignore[return-value]


def _open_models(node: Any, rules: Rules, bounds: Bounds, level: str, pid: str, domain: str, out: set[str]) -> None:
    """Adds the models of the undecided atoms reached through undecided connectives only."""
    def decided(n: Any) -> bool:
        return _eval(n, rules, bounds, level, pid, domain) is not None

    out.update(rules.models[n[1]] for n in nodes(node, skip=decided) if n[0] == "atom")


@memoized
def relevant_models(rules: Rules, bounds: Bounds, problem_id: str, domain: str) -> set[str]:
    """Model names whose rate could still change an undecided verdict of this problem: those on
    which the verdict depends inside the bounds (``box.relevant``; with too many pieces, those in an
    undecided atom under undecided connectives). Sound: a model left out cannot change any verdict;
    empty exactly when every verdict is decided."""
    out: set[str] = set()
    verdicts = decide(rules, bounds, problem_id, domain)
    if verdicts["keep"] is None:
        got = relevant(rules, [(rules.keep, "keep")], bounds, problem_id, domain)
        _open_models(rules.keep, rules, bounds, "keep", problem_id, domain, out) if got is None else out.update(got)
    if verdicts["keep"] is not False:
        for name, cond in rules.levels.items():
            if verdicts[name] is None:
                got = relevant(rules, _level_parts(rules, cond, name), bounds, problem_id, domain)
                if got is None:
                    _open_models(cond, rules, bounds, name, problem_id, domain, out)
                    if verdicts["keep"] is None:
                        _open_models(rules.keep, rules, bounds, "keep", problem_id, domain, out)
                out.update(got or ())
    return out
