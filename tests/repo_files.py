"""Load a script of the repository that is not part of the package (``scripts/``, ``benchmarks/``,
``experiments/``) as a module, for tests of its functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load(path: str) -> ModuleType:
    """The module of ``ROOT / path`` (e.g. ``"scripts/scale_scoring.py"``), executed afresh."""
    spec = importlib.util.spec_from_file_location(path.removesuffix(".py").replace("/", "_"), ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
