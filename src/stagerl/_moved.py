"""Deprecation aliases for modules that moved in 0.2 (kept for one release, then removed).

``import stagerl.config_train`` still works and warns once: it returns the module at its new
path (``stagerl.config.train``), the very same object, so ``isinstance`` checks and monkeypatches
agree. The table below is the whole list of moves.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "stagerl.config_train": "stagerl.config.train",
    "stagerl.config_online": "stagerl.config.online",
    "stagerl.config_scoring": "stagerl.config.scoring",
    "stagerl.rewards.math_extract": "stagerl.rewards.math.extract",
    "stagerl.rewards.math_final": "stagerl.rewards.math.final",
    "stagerl.rewards.math_forms": "stagerl.rewards.math.forms",
    "stagerl.rewards.math_pool": "stagerl.rewards.math.pool",
    "stagerl.rewards.sandbox_child": "stagerl.rewards.sandbox.child",
    "stagerl.rewards.sandbox_isolation": "stagerl.rewards.sandbox.isolation",
    "stagerl.rewards.sandbox_slot": "stagerl.rewards.sandbox.slot",
    "stagerl.rewards.sandbox_supervisor": "stagerl.rewards.sandbox.supervisor",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and hands back the module at its new path."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module):
        old, new = module.__name__, MOVED[module.__name__]
        warnings.warn(f"{old} moved to {new}; the old name goes away in the next release",
                      DeprecationWarning, stacklevel=2)
        sys.modules[old] = importlib.import_module(new)  # the import statement returns this one


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
