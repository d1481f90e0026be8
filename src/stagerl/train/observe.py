"""What a stage reports besides metrics.jsonl: TensorBoard by default, W&B (or any other
``transformers`` integration) by choice, and the held-out dev evaluation.

``report_to(stage)`` is the ``GRPOConfig.report_to`` of a stage (its ``report_to`` field), checked
before the trainer is built: an unknown logger or one whose package is missing is an error naming
the stage and the package to install. ``observe(trainer, ...)`` points TensorBoard's event files at
``stages/<i>_<name>/tb`` (``tensorboard --logdir runs/<name>/stages`` shows every stage) and
registers the dev evaluation (``dev_eval.py``) when the stage has one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

from ..config import RewardsConfig, StageConfig
from ..data.problem import Problem
from .dev_eval import DevEvalCallback, add_dev_eval
from .progress import attach

_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
             "trackio": "trackio", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab"}


def report_to(stage: StageConfig) -> list[str]:
    """The stage's loggers for ``GRPOConfig.report_to`` (``[]`` for none)."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    names = list(stage.report_to)
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"stage {stage.name!r}: report_to {name!r} is not a logger transformers knows "
                             f"(known: {', '.join(sorted(INTEGRATION_TO_CALLBACK))}, or none)")
        package = _PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise ValueError(f"stage {stage.name!r}: report_to {name!r} needs the package {package!r}: "
                             f"pip install {package} (or set report_to: none)")
    return names


def observe(trainer: Any, stage: StageConfig, out_dir: str | Path, dev_problems: list[Problem],
            messages: Callable[[Problem], list[dict]], rewards: RewardsConfig | None = None) -> DevEvalCallback | None:
    """TensorBoard into ``out_dir/tb``; the terminal's step lines (``progress.py``); the dev evaluation
    registered when the stage has a dev set."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(Path(out_dir) / "tb")
    attach(trainer, stage.name)
    return add_dev_eval(trainer, dev_problems, stage, out_dir, messages, rewards)
