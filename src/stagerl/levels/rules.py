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

A condition is an atom ``"<alias> in <interval>"`` (quote it in YAML) (``(`` / ``)`` open ends, ``[`` / ``]`` closed),
``{all: [...]}``, ``{any: [...]}``, ``{not: cond}`` or ``{retain: {domain: fraction}}``. ``retain``
keeps a problem when a seeded hash of (seed, level, problem id) falls below its domain's fraction:
deterministic, independent of order and of the other problems. Levels may overlap.

``label`` evaluates the rules on known rates. ``decide`` evaluates them on *bounds* — the closed
range each model's final rate can still take — in Kleene three-valued logic (True / False / None
for "still open"); adaptive scoring stops sampling once nothing it could draw changes a verdict.
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

Bounds = dict[str, tuple[float, float]]
_ATOM = re.compile(r"^\s*([\w.\-/:]+)\s+in\s+([\[(])\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*([\])])\s*$")


class RulesError(ValueError):
    """The rules are malformed; the message names the key path."""


@dataclass(frozen=True)
class Interval:
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
    """Parsed rules; ``models`` maps each alias to the model name used in pass-rate tables."""

    models: dict[str, str]
    levels: dict[str, Any]
    keep: Any = None
    seed: int = 0
    source: dict = field(default_factory=dict)

    @property
    def aliases(self) -> list[str]:
        return list(self.models)

    @property
    def level_names(self) -> list[str]:
        return list(self.levels)

    def to_dict(self) -> dict:
        d = copy.deepcopy(self.source)
        d["models"] = dict(self.models)
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ------------------------------------------------------------------------------------- parsing


def _parse(cond: Any, where: str, aliases: set[str]) -> Any:
    """Conditions become nested tuples: ("atom", alias, Interval) | ("all"|"any", [..]) |
    ("not", c) | ("retain", {domain: fraction})."""
    if isinstance(cond, str):
        m = _ATOM.match(cond)
        if not m:
            raise RulesError(f"{where}: cannot read condition {cond!r}; write '<model alias> in (lo,hi)' "
                             "with ( ) for open and [ ] for closed ends")
        alias, lb, lo, hi, rb = m.groups()
        if alias not in aliases:
            raise RulesError(f"{where}: unknown model alias {alias!r} (aliases under 'models': {', '.join(sorted(aliases))})")
        iv = Interval(float(lo), float(hi), lb == "(", rb == ")")
        if not 0 <= iv.lo <= iv.hi <= 1:
            raise RulesError(f"{where}: interval {iv} must lie within [0,1] with lo <= hi")
        return ("atom", alias, iv)
    if isinstance(cond, dict) and len(cond) == 1:
        (op, arg), = cond.items()
        if op in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                raise RulesError(f"{where}.{op}: expected a non-empty list of conditions")
            return (op, [_parse(c, f"{where}.{op}[{i}]", aliases) for i, c in enumerate(arg)])
        if op == "not":
            return ("not", _parse(arg, f"{where}.not", aliases))
        if op == "retain":
            if not isinstance(arg, dict) or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in arg.values()):
                raise RulesError(f"{where}.retain: expected {{domain: fraction in [0,1]}}, got {arg!r}")
            return ("retain", {str(k): float(v) for k, v in arg.items()})
    raise RulesError(f"{where}: expected an atom string or one of {{all, any, not, retain}}, got {cond!r}")


def load_rules(spec: str | Path | dict | Rules) -> Rules:
    """Rules from a preset name (``paper``, ``demo``), a YAML file or a dict."""
    if isinstance(spec, Rules):
        return spec
    where = "rules"
    if not isinstance(spec, dict):
        path = Path(spec)
        if path.exists():
            text, where = path.read_text(), str(path)
        else:
            preset = resources.files("stagerl.levels").joinpath("presets", f"{spec}.yaml")
            if not preset.is_file():
                raise RulesError(f"no rules file {spec!r} and no preset of that name (presets: {', '.join(presets())})")
            text, where = preset.read_text(), f"preset {spec!r}"
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RulesError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: expected a mapping with 'models' and 'levels'")
    unknown = sorted(set(spec) - {"models", "levels", "keep", "seed"})
    if unknown:
        raise RulesError(f"{where}.{unknown[0]}: unknown key (valid: models, levels, keep, seed)")
    models = spec.get("models")
    if isinstance(models, list):
        models = {m: m for m in models}
    if not isinstance(models, dict) or not models:
        raise RulesError(f"{where}.models: expected a mapping alias -> model name")
    levels = spec.get("levels")
    if not isinstance(levels, dict) or not levels:
        raise RulesError(f"{where}.levels: expected a mapping level name -> condition")
    aliases = set(models)
    parsed = {str(name): _parse(c, f"{where}.levels.{name}", aliases) for name, c in levels.items()}
    keep = _parse(spec["keep"], f"{where}.keep", aliases) if spec.get("keep") is not None else None
    return Rules({str(k): str(v) for k, v in models.items()}, parsed, keep, int(spec.get("seed", 0)), copy.deepcopy(spec))


def presets() -> list[str]:
    folder = resources.files("stagerl.levels").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def bind(rules: Rules, mapping: dict[str, str]) -> Rules:
    """A copy of ``rules`` with aliases re-bound to other model names."""
    unknown = sorted(set(mapping) - set(rules.models))
    if unknown:
        raise RulesError(f"cannot bind unknown alias {unknown[0]!r} (aliases: {', '.join(rules.models)})")
    return Rules({**rules.models, **mapping}, rules.levels, rules.keep, rules.seed, rules.source)


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


def _eval(node: Any, rules: Rules, bounds: Bounds, level: str, pid: str, domain: str) -> bool | None:
    kind = node[0]
    if kind == "atom":
        lo, hi = bounds.get(rules.models[node[1]], (0.0, 1.0))
        return _atom(node[2], lo, hi)
    if kind == "retain":
        return retained(rules.seed, level, pid, node[1].get(domain, 0.0))
    if kind == "not":
        v = _eval(node[1], rules, bounds, level, pid, domain)
        return None if v is None else not v
    vals = [_eval(c, rules, bounds, level, pid, domain) for c in node[1]]
    if kind == "all":
        return False if False in vals else (True if all(vals) else None)
    return True if True in vals else (False if all(v is False for v in vals) else None)


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else (True if a and b else None)


def decide(rules: Rules, bounds: Bounds, problem_id: str, domain: str) -> dict[str, bool | None]:
    """Three-valued verdicts ("keep" and each level) given the closed range of each model's final
    pass rate (a model missing from ``bounds`` may be anywhere in [0, 1]). A verdict is True/False
    only when it holds for every rate inside the bounds; a dropped problem is in no level."""
    keep = True if rules.keep is None else _eval(rules.keep, rules, bounds, "keep", problem_id, domain)
    out: dict[str, bool | None] = {"keep": keep}
    for name, cond in rules.levels.items():
        out[name] = _and(keep, _eval(cond, rules, bounds, name, problem_id, domain))
    return out


def label(rules: Rules, rates: dict[str, float], problem_id: str, domain: str) -> dict[str, bool]:
    """Verdicts for known pass rates (every model the rules use must have one)."""
    verdicts = decide(rules, {m: (r, r) for m, r in rates.items()}, problem_id, domain)
    open_ = [k for k, v in verdicts.items() if v is None]
    if open_:
        missing = sorted(set(rules.models.values()) - set(rates))
        raise RulesError(f"problem {problem_id!r}: verdict {open_[0]!r} needs the rate of model(s) {missing}")
    return verdicts  # type: ignore[return-value]


def _open_models(node: Any, rules: Rules, bounds: Bounds, level: str, pid: str, domain: str, out: set[str]) -> None:
    if _eval(node, rules, bounds, level, pid, domain) is not None:
        return
    if node[0] == "atom":
        out.add(rules.models[node[1]])
    elif node[0] == "not":
        _open_models(node[1], rules, bounds, level, pid, domain, out)
    elif node[0] in ("all", "any"):
        for c in node[1]:
            _open_models(c, rules, bounds, level, pid, domain, out)


def relevant_models(rules: Rules, bounds: Bounds, problem_id: str, domain: str) -> set[str]:
    """Models whose rate could still change an undecided verdict of this problem."""
    out: set[str] = set()
    verdicts = decide(rules, bounds, problem_id, domain)
    if verdicts["keep"] is None:
        _open_models(rules.keep, rules, bounds, "keep", problem_id, domain, out)
    if verdicts["keep"] is not False:
        for name, cond in rules.levels.items():
            if verdicts[name] is None:
                _open_models(cond, rules, bounds, name, problem_id, domain, out)
    return out
