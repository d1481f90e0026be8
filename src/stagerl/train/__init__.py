"""Staged GRPO training: the TRL adapter (``grpo.py``), its per-step callback (``callbacks.py``), reward
function (``reward.py``), dev evaluation (``dev_eval.py``), loggers (``observe.py``), ledger (``ledger.py``),
stage identity (``identity.py``), the stage runner (``runner.py``), the adapter's promises
(``promises.py``) and the batch plan (``plan.py``).

Names are imported on first use, so ``stagerl.train.plan`` and ``stagerl.train.promises`` (used by
``stagerl check``) load without torch or TRL.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "grpo_config": "grpo", "check_stage": "grpo", "train_stage": "grpo", "stage_dataset": "grpo",
    "latest_checkpoint": "grpo", "TrainConfigError": "grpo",
    "RESERVED": "promises", "LOSS_TYPES": "promises",
    "train_stages": "runner", "finished": "runner", "StageChangedError": "runner",
    "StageMetricsCallback": "callbacks", "normalize_logs": "callbacks", "NORMALIZED": "callbacks",
    "stage_plan": "plan", "format_plan": "plan",
}

__all__ = sorted(_WHERE) + ["stage_dir"]


def __getattr__(name: str) -> Any:
    if name == "stage_dir":
        from ..curriculum import stage_dir

        return stage_dir
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
