"""The one data model every stage passes around: a Problem."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

DOMAINS = ("math", "code")
ROW_FIELDS = ("id", "domain", "prompt", "answer", "tests", "source", "meta")
"""The fields of a Problem, in table order (a level parquet's first columns)."""


class ProblemError(ValueError):
    """A problem (or a row that should become one) is malformed."""


@dataclass
class Problem:
    """One training or evaluation problem.

    Math problems carry a ground-truth ``answer`` (LaTeX or plain text); code problems carry
    ``tests`` in the APPS/TACO ``input_output`` form ``{"inputs": [...], "outputs": [...],
    "fn_name"?: str}``.
    """

    id: str
    """Unique id within its source."""
    domain: str
    """``"math"`` or ``"code"``: selects the reward."""
    prompt: str
    """The problem statement shown to the model (without chat template or instructions)."""
    answer: str | None = None
    """Ground-truth final answer (math only)."""
    tests: dict | None = None
    """Test cases (code only): ``inputs``, ``outputs`` and optional ``fn_name``."""
    source: str = ""
    """Where the problem comes from (dataset name)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else (subject, level, starter_code, ...)."""

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            field_name, msg = problems[0]
            raise ProblemError(f"field '{field_name}': {msg}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Problem":
        return cls(**{k: d[k] for k in ROW_FIELDS if k in d})

    def to_row(self) -> dict[str, Any]:
        """The problem as one flat table row (parquet, ``datasets``): ``tests`` and ``meta`` as JSON
        strings. The one converter to a row; :meth:`from_row` is its inverse."""
        return {"id": self.id, "domain": self.domain, "prompt": self.prompt, "answer": self.answer,
                "tests": json.dumps(self.tests) if self.tests is not None else None, "source": self.source,
                "meta": json.dumps(self.meta, default=str)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Problem":
        """A problem from a table row (:meth:`to_row`'s form, or one with ``tests``/``meta`` as
        objects); missing values (None, NaN) are absent. Raises ``ProblemError`` or
        ``json.JSONDecodeError``."""
        def opt(v: Any) -> Any:
            return None if v is None or (isinstance(v, float) and v != v) else v

        def obj(v: Any) -> Any:
            v = opt(v)
            return json.loads(v) if isinstance(v, str) else v

        return cls(id=row["id"], domain=row["domain"], prompt=row["prompt"], answer=opt(row.get("answer")),
                   tests=obj(row.get("tests")), source=opt(row.get("source")) or "", meta=obj(row.get("meta")) or {})


def _case_error(ins: list, outs: list, fn: str | None) -> str | None:
    """What is wrong with the test cases, as ``rewards.code`` will run them (None: well formed).

    stdin mode (APPS/TACO): each input and output is the text fed on stdin or expected on stdout, a
    string or a list of lines (strings); a bare number (``2`` for ``"2"``) is refused: its text is
    not defined (``2.50`` reads as 2.5, ``1e3`` as 1000.0). Call mode (``fn_name``): each input is
    an argument list, or all inputs are LiveCodeBench's raw form (one JSON value per line, with
    outputs as JSON text); an output is the return value, of any JSON type."""
    if not fn:
        for key, cases in (("inputs", ins), ("outputs", outs)):
            for i, x in enumerate(cases):
                if not (isinstance(x, str) or isinstance(x, list) and all(isinstance(v, str) for v in x)):
                    hint = f" (write the text, {json.dumps(str(x))})" if isinstance(x, (int, float)) and \
                        not isinstance(x, bool) else ""
                    return (f"stdin-mode '{key}'[{i}] must be text (a string or a list of lines), got "
                            f"{type(x).__name__} {x!r:.60}{hint}")
        return None
    if all(isinstance(x, str) for x in ins):
        for key, cases in (("inputs", ins), ("outputs", outs)):
            for i, x in enumerate(cases):
                for line in (x.split("\n") if isinstance(x, str) and key == "inputs" else [x] if isinstance(x, str) else []):
                    if line.strip():
                        try:
                            json.loads(line)
                        except ValueError:
                            return (f"call-mode '{key}'[{i}] is a string but not JSON ({line!r:.60}); give an "
                                    "argument list, or one JSON value per line")
        return None
    for i, x in enumerate(ins):
        if not isinstance(x, (list, tuple)):
            return f"call-mode 'inputs'[{i}] must be an argument list (fn_name {fn!r}), got {x!r:.60}"
    return None


def validate(p: Problem) -> list[tuple[str, str]]:
    """Return (field, message) for everything wrong with ``p``; empty when valid."""
    errs: list[tuple[str, str]] = []
    if not isinstance(p.id, str) or not p.id:
        errs.append(("id", f"must be a non-empty string, got {p.id!r}"))
    if p.domain not in DOMAINS:
        errs.append(("domain", f"must be one of {DOMAINS}, got {p.domain!r}"))
    if not isinstance(p.prompt, str) or not p.prompt.strip():
        errs.append(("prompt", "must be a non-empty string"))
    if p.domain == "math":
        if not isinstance(p.answer, str) or not p.answer.strip():
            errs.append(("answer", f"math problems need a non-empty string answer, got {p.answer!r}"))
    if p.domain == "code":
        t = p.tests
        if not isinstance(t, dict):
            errs.append(("tests", f"code problems need a dict with 'inputs' and 'outputs', got {type(t).__name__}"))
        else:
            ins, outs = t.get("inputs"), t.get("outputs")
            if not isinstance(ins, list) or not isinstance(outs, list):
                errs.append(("tests", "'inputs' and 'outputs' must both be lists"))
            elif len(ins) != len(outs):
                errs.append(("tests", f"'inputs' has {len(ins)} cases but 'outputs' has {len(outs)}"))
            elif not ins:
                errs.append(("tests", "no test cases"))
            fn = t.get("fn_name")
            if fn is not None and (not isinstance(fn, str) or not fn):
                errs.append(("tests", f"'fn_name' must be a non-empty string, got {fn!r}"))
            elif isinstance(ins, list) and isinstance(outs, list) and len(ins) == len(outs):
                msg = _case_error(ins, outs, fn)
                if msg:
                    errs.append(("tests", msg))
    if not isinstance(p.meta, dict):
        errs.append(("meta", "must be a dict"))
    return errs
