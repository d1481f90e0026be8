"""Staged GRPO training: the TRL adapter (``grpo.py``), its per-step callback (``callbacks.py``), reward
function (``reward.py``), dev evaluation (``dev_eval.py``), loggers (``observe.py``) and ledger (``ledger.py``)."""

from .callbacks import NORMALIZED, StageMetricsCallback, normalize_logs
from .grpo import TrainConfigError, finished, grpo_config, stage_dataset, stage_dir, train_stage, train_stages

__all__ = ["grpo_config", "train_stage", "train_stages", "stage_dataset", "stage_dir", "finished",
           "TrainConfigError", "StageMetricsCallback", "normalize_logs", "NORMALIZED"]
