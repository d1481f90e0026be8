"""Checking a recipe against its schema: ``from_dict`` (every key and type, all problems at once,
each named by its key path), ``ConfigError`` and the value checks the config classes run in
``__post_init__``."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union


class ConfigError(ValueError):
    """A recipe file or dict does not match the schema; the message names the key path."""


def _need(ok: bool, key: str, msg: str) -> None:
    """A check of ``__post_init__``: ``ConfigError("<key>: <msg>")`` unless ``ok``; ``from_dict``
    prefixes the object's path (``train.stages[1].plateau.window: must be >= 1, got 0``)."""
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def _at_least(obj: Any, minimum: float, *keys: str) -> None:
    """Each ``obj.<key>`` is a number >= ``minimum`` (None passes: ``from_dict`` lets None only into
    optional fields); one ``ConfigError`` names every key that is not."""
    bad = [f"{key}: must be >= {minimum}, got {v!r}" for key in keys
           if not ((v := getattr(obj, key)) is None or isinstance(v, (int, float)) and not isinstance(v, bool)
                   and v >= minimum)]
    if bad:
        raise ConfigError("\n".join(bad))


def did_you_mean(given: object, valid: Any) -> str:
    """``"; did you mean 'x'?"`` naming the closest of ``valid`` to a misspelt ``given`` ('' if none is close)."""
    import difflib

    valid = [str(v) for v in valid]
    same_case = [v for v in valid if v.lower() == str(given).lower()]
    close = same_case or difflib.get_close_matches(str(given), valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unique(key: str, names: list[str]) -> None:
    dup = [n for i, n in enumerate(names) if n in names[:i]]
    _need(not dup, key, f"names must be unique; {dup[0] if dup else ''!r} appears twice")


ENGINES = ("transformers", "openai", "vllm")
SANDBOX_MODES = ("bwrap", "unsafe-limits")
ORDERS = ("weakest-first", "strongest-first")


def batch_split(stage: Any, extra: dict[str, Any], world: int) -> dict[str, int]:
    """``per_device_train_batch_size`` and ``gradient_accumulation_steps`` so that one optimizer
    step on ``world`` processes holds ``stage.prompts_per_step × stage.num_generations``
    completions (either may be fixed in ``extra``, the stage's ``trl`` dict); ``ConfigError`` if
    that number cannot be split so."""
    completions = stage.prompts_per_step * stage.num_generations
    if "per_device_train_batch_size" in extra and "gradient_accumulation_steps" in extra:
        per_device, accum = int(extra["per_device_train_batch_size"]), int(extra["gradient_accumulation_steps"])
    elif "per_device_train_batch_size" in extra:
        per_device = int(extra["per_device_train_batch_size"])
        accum = completions // max(1, per_device * world)
    else:
        accum = int(extra.get("gradient_accumulation_steps", 1))
        per_device = completions // max(1, accum * world)
    if per_device < 1 or accum < 1 or per_device * accum * world != completions:
        raise ConfigError(
            f"stage {stage.name!r}: prompts_per_step × num_generations = {stage.prompts_per_step} × "
            f"{stage.num_generations} = {completions} completions per step cannot be split as "
            f"per_device_train_batch_size × {world} process(es) × gradient_accumulation_steps (got {per_device} × "
            f"{world} × {accum}); choose values whose product is exactly that number")
    return {"per_device_train_batch_size": per_device, "gradient_accumulation_steps": accum}


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, checking every key and type."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'recipe'}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    errors = [f"{_join(where, k)}: unknown key{did_you_mean(k, names)} (valid keys: {', '.join(sorted(names))})"
              for k in sorted(set(data) - names, key=str)]
    kwargs = _collect({k: (lambda k=k, v=v: _convert(hints[k], v, _join(where, k))) for k, v in data.items()
                       if k in names}, errors)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or 'recipe'}: {e}") from None
    except ConfigError as e:  # a value-range check of __post_init__: "<key>: <msg>" -> full path
        raise ConfigError("\n".join(_join(where, line) for line in str(e).splitlines())) from None


def _collect(thunks: dict, errors: list[str] | None = None) -> dict:
    """Run every thunk; raise one ``ConfigError`` with all their errors (one per line) if any failed."""
    errors, out = list(errors or []), {}
    for key, thunk in thunks.items():
        try:
            out[key] = thunk()
        except ConfigError as e:
            errors.append(str(e))
    if errors:
        raise ConfigError("\n".join(errors))
    return out


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return list(_collect({i: (lambda i=i, v=v: _convert(args[0], v, f"{where}[{i}]"))
                              for i, v in enumerate(value)}).values())
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 1e-6 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(tp, type) and not isinstance(value, tp) or (tp in (int, float) and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value
