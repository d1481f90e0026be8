"""Per-step metrics and the plateau stop, as one ``transformers.TrainerCallback``.

Each TRL log event (one per optimizer step: the adapter sets ``logging_steps=1``) becomes one JSON
line of ``metrics.jsonl`` with normalized keys — ``step``, ``reward``, ``reward_std``, ``kl``,
``entropy``, ``completion_length``, ``clipped_ratio`` (share of truncated completions),
``learning_rate``, ``seconds`` (since the stage began) — followed by every other key TRL logged,
unchanged (``loss``, ``grad_norm``, ``completions/max_length``, ``rewards/<func>/mean``, ...), among
them the reward function's ``reward_math``, ``reward_code``, ``signal`` and ``tokens`` over the gathered
batch (``reward.py``) and, on rows of a dev evaluation, ``dev_score`` (``dev_eval.py``; a step-0 row
holds only the starting policy's ``dev_score``).
A normalized key TRL did not log this step (``kl`` when ``beta == 0``) is ``null``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..config import PlateauConfig
from ..curriculum import PlateauTracker

NORMALIZED: dict[str, str] = {
    "reward": "reward",
    "reward_std": "reward_std",
    "kl": "kl",
    "entropy": "entropy",
    "completions/mean_length": "completion_length",
    "completions/clipped_ratio": "clipped_ratio",
    "learning_rate": "learning_rate",
}
"""TRL log key -> our key in metrics.jsonl."""

_SUMMARY_KEYS = ("train_runtime", "train_loss", "train_samples_per_second")


def normalize_logs(logs: dict[str, Any], step: int, seconds: float) -> dict[str, Any]:
    """One metrics.jsonl row from a TRL ``logs`` dict: normalized keys first, then the rest as logged."""
    row: dict[str, Any] = {"step": step}
    for trl_key, key in NORMALIZED.items():
        row[key] = _clean(logs.get(trl_key))
    row["seconds"] = round(seconds, 3)
    for key, value in logs.items():
        if key not in NORMALIZED and key not in row:
            row[key] = _clean(value)
    return row


def _clean(value: Any) -> Any:
    """JSON-safe scalar: tensors become floats, NaN/inf become None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class StageMetricsCallback(TrainerCallback):
    """Appends one line per step to ``path`` and stops training once ``plateau`` is reached.

    ``plateau.metric`` may name a normalized key (``reward``, ``completion_length``), ``dev_score``
    (rows of dev evaluations only) or any raw TRL key (``rewards/problem_reward/mean``); a row whose
    value is missing or null does not count. ``plateau_step`` holds the step that ended the stage.
    """

    def __init__(self, path: str | Path, plateau: PlateauConfig | None = None) -> None:
        self.path = Path(path)
        self.plateau = plateau
        self.rows: list[dict[str, Any]] = []
        self.tracker = PlateauTracker(plateau) if plateau is not None else None
        self.plateau_step: int | None = None
        self.seconds_before = 0.0
        """Stage seconds spent before this run (the kept rows' last ``seconds``, when resuming)."""
        self._t0 = time.time()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        """Start a fresh file, or, when resuming at ``state.global_step`` (Transformers has loaded the
        trainer state by now), keep the lines of steps 0 to it byte for byte (the step-0 dev row
        included: a plateau on ``dev_score`` counts it), drop later ones (steps the checkpoint does
        not hold: they are trained again) and rebuild the plateau tracker from the kept rows."""
        self._t0 = time.time()
        self.plateau_step, self.seconds_before = None, 0.0
        self.tracker = PlateauTracker(self.plateau) if self.plateau is not None else None
        kept: list[str] = []
        if state.global_step > 0 and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                if isinstance(row, dict) and 0 <= row.get("step", -1) <= state.global_step:
                    kept.append(line)
        self.rows = []
        for line in kept:
            self._track(json.loads(line), control)
        if self.rows:
            self.seconds_before = float(self.rows[-1].get("seconds") or 0.0)
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(self.path)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or any(k in logs for k in _SUMMARY_KEYS) or any(k.startswith("eval_") for k in logs):
            return
        row = normalize_logs(logs, state.global_step, self.seconds_before + time.time() - self._t0)
        if state.is_world_process_zero:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        self._track(row, control)

    def _track(self, row: dict[str, Any], control: TrainerControl) -> None:
        """Keep ``row`` and feed the plateau tracker; ask TRL to stop once the plateau is reached."""
        self.rows.append(row)
        if self.tracker is None:
            return
        metric = self.tracker.cfg.metric
        if metric not in row and metric != "dev_score" and row["step"] >= 1:
            raise ValueError(f"plateau metric {metric!r} is not logged by TRL; logged keys: {', '.join(row)}")
        value = row.get(metric)
        if value is None:
            return  # a row without the metric (dev_score between evaluations, the step-0 dev row) is skipped
        if self.tracker.update(float(value)) and self.plateau_step is None:
            self.plateau_step = row["step"]
            control.should_training_stop = True
