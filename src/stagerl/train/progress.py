"""The terminal during a stage: one readable line per optimizer step (``console.step_line``).

``attach(trainer, stage)`` registers ``StepLinesCallback`` and, unless ``--verbose``
(``console.verbose()``), removes Transformers' progress bar and its printer of the raw log
dictionary (TRL's ~30 keys per step, which stay in ``metrics.jsonl`` and TensorBoard). With
``--verbose`` the trainer prints what it always did, and no step lines are added.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .. import console
from .callbacks import _SUMMARY_KEYS  # the end-of-training summary log, not a step


class StepLinesCallback(TrainerCallback):
    """Prints ``console.step_line`` at each step's log event (rank 0 only)."""

    def __init__(self, stage_name: str) -> None:
        self.stage_name = stage_name
        self._t0 = time.time()
        self._first = 0

    def on_train_begin(self, args, state, control, **kwargs: Any) -> None:
        self._t0, self._first = time.time(), state.global_step  # a resumed stage starts at its checkpoint

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero or state.global_step <= self._first:
            return  # the step-0 dev row (dev_eval prints its own line) and rows of a resumed step
        if any(k in logs for k in _SUMMARY_KEYS) or any(k.startswith("eval_") for k in logs):
            return
        pace = (time.time() - self._t0) / (state.global_step - self._first)
        console.line(console.stamp(console.step_line(self.stage_name, state.global_step, state.max_steps,
                                                     logs, pace)))


def attach(trainer: Any, stage_name: str) -> None:
    """Step lines instead of the progress bar and raw dictionaries (quiet), or nothing (verbose)."""
    if console.verbose():
        return
    console.setup()  # the libraries are loaded by now: switch off their own logs and bars too
    for cls in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(cls)
    trainer.add_callback(StepLinesCallback(stage_name))
