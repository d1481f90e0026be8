"""Difficulty scoring: k samples per (problem, reference model) -> the pass-rate table.

``score(problems, store, config, ...)`` samples, grades and stores (``run.py``), optionally
stopping pairs early once the level rules are decided (``adaptive.py``); ``write_table`` rebuilds
``pass_rates.parquet`` and ``ledger.json`` from the sample store alone (``table.py``).
"""

from __future__ import annotations

from .adaptive import is_success, needs_samples, rate_bounds, verdicts
from .run import ScoringError, default_engine, score
from .table import TABLE_COLUMNS, ledger, pass_rate_table, write_table

__all__ = ["score", "ScoringError", "default_engine", "write_table", "pass_rate_table", "ledger", "TABLE_COLUMNS",
           "rate_bounds", "needs_samples", "verdicts", "is_success"]
