"""Staged GRPO training: the TRL adapter (``grpo.py``), its per-step callback (``callbacks.py``), stage
identity (``identity.py``), the stage runner (``runner.py``) and the batch plan (``plan.py``)."""

from .callbacks import NORMALIZED, StageMetricsCallback, normalize_logs
from .grpo import RESERVED, TrainConfigError, check_stage, grpo_config, latest_checkpoint, stage_dataset, train_stage
from .runner import StageChangedError, finished, train_stages
from ..curriculum import stage_dir

__all__ = ["grpo_config", "check_stage", "train_stage", "train_stages", "stage_dataset", "stage_dir", "finished",
           "latest_checkpoint", "TrainConfigError", "StageChangedError", "RESERVED", "StageMetricsCallback",
           "normalize_logs", "NORMALIZED"]
