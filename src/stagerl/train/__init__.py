"""Staged GRPO training: the TRL adapter (``grpo.py``) and its per-step callback (``callbacks.py``)."""

from .callbacks import NORMALIZED, StageMetricsCallback, normalize_logs
from .grpo import TrainConfigError, finished, grpo_config, stage_dataset, stage_dir, train_stage, train_stages

__all__ = ["grpo_config", "train_stage", "train_stages", "stage_dataset", "stage_dir", "finished",
           "TrainConfigError", "StageMetricsCallback", "normalize_logs", "NORMALIZED"]
