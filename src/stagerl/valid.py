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
