"""``ConfigError`` and the small value checks the config classes run in ``__post_init__``."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A recipe file or dict does not match the schema; the message names the key path."""


def _need(ok: bool, key: str, msg: str) -> None:
    """A check of ``__post_init__``: ``ConfigError("<key>: <msg>")`` unless ``ok``; ``from_dict``
    prefixes the object's path (``train.stages[1].plateau.window: must be >= 1, got 0``)."""
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def _at_least(obj: Any, minimum: float, *keys: str) -> None:
    """Each ``obj.<key>`` is a number >= ``minimum`` (None passes: ``from_dict`` lets None only into optional fields)."""
    for key in keys:
        v = getattr(obj, key)
        ok = v is None or isinstance(v, (int, float)) and not isinstance(v, bool) and v >= minimum
        _need(ok, key, f"must be >= {minimum}, got {v!r}")


def _unique(key: str, names: list[str]) -> None:
    dup = [n for i, n in enumerate(names) if n in names[:i]]
    _need(not dup, key, f"names must be unique; {dup[0] if dup else ''!r} appears twice")


ENGINES = ("transformers", "openai", "vllm")
SANDBOX_MODES = ("bwrap", "unsafe-limits")
ORDERS = ("weakest-first", "strongest-first")
