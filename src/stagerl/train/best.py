"""Keep the policy of the best dev score (``StageConfig.keep_best``): a stage that gets worse gives back its best.

A stage with a dev set (``eval_every``, ``dev``) scores the live policy every few steps. With
``keep_best: true`` every evaluation that beats all earlier ones (step 0, the starting policy,
included; the earliest of equal scores wins, so a tie never moves the choice) saves the weights and
tokenizer::

    stages/<i>_<name>/best-<step>/     model, tokenizer and best.json ({"step", "dev_score"}, written last:
                                       a folder without it was cut short by a kill and is ignored)

and the folder of the best before it is deleted, so one extra copy of the policy is on disk. When the
stage ends, its final policy is evaluated too if its step had no evaluation, and the best folder
becomes the stage's ``checkpoint/``: the next stage, ``stagerl eval`` and the report use the policy of
the best dev score. ``stage.json`` says which (``kept``: the step, its dev score, the last step and the
last policy's dev score). A stage whose dev score never beats step 0 gives back its starting policy.

Resume: a stage resumed from the checkpoint of step S deletes the best folders of steps after S
(made by weights the checkpoint does not hold; the evaluations are made again), and a stage started
afresh deletes them all. The choice is a maximum over noisy scores: the kept policy's dev score is an
optimistic estimate of it, so judge it on held-out problems (``stagerl eval``), not on the dev score.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from ..rundir import numbered_folders, read_json, write_json

BEST_FILE = "best.json"


def best_step(history: dict[int, float]) -> int | None:
    """The step of the highest dev score in ``history`` (the earliest of equal ones); NaN never wins."""
    finite = {s: v for s, v in history.items() if not math.isnan(v)}
    if not finite:
        return None
    top = max(finite.values())
    return min(s for s, v in finite.items() if v == top)


class BestPolicy:
    """Saves the live policy of ``trainer`` at each new best dev score into ``out_dir/best-<step>``."""

    def __init__(self, trainer: Any, out_dir: str | Path) -> None:
        self.trainer, self.out_dir = trainer, Path(out_dir)

    def _on_main(self, work) -> None:
        acc = self.trainer.accelerator
        if acc.is_main_process:
            work()
        acc.wait_for_everyone()

    def drop_after(self, step: int) -> None:
        """Delete the best folders of steps after ``step`` (``-1``: all of them) and incomplete ones."""
        def work():
            for s, d in numbered_folders(self.out_dir, "best").items():
                if s > step or not (d / BEST_FILE).is_file():
                    shutil.rmtree(d, ignore_errors=True)
        self._on_main(work)

    def offer(self, step: int, history: dict[int, float]) -> None:
        """After the evaluation of ``step``: save the policy when it is the best so far."""
        if best_step(history) != step:
            return
        folder = self.out_dir / f"best-{step}"
        self.trainer.save_model(str(folder))  # every rank takes part (ZeRO-3 gathers); rank 0 writes
        tokenizer = self.trainer.processing_class

        def work():
            if tokenizer is not None:
                tokenizer.save_pretrained(str(folder))
            write_json(folder / BEST_FILE, {"step": step, "dev_score": history[step]})  # last: complete
            for s, d in numbered_folders(self.out_dir, "best").items():
                if s != step:
                    shutil.rmtree(d, ignore_errors=True)
        self._on_main(work)

    def finish(self, history: dict[int, float], checkpoint: str | Path, last_step: int) -> dict[str, Any]:
        """Make the best folder the stage's ``checkpoint``; return what stage.json records as ``kept``."""
        step, checkpoint = best_step(history), Path(checkpoint)
        if step is None:
            raise RuntimeError(f"{self.out_dir}: keep_best has no dev score to choose by")
        folder = self.out_dir / f"best-{step}"

        def moved(path: Path) -> bool:  # a kill after the move and before stage.json: done already
            return (path / BEST_FILE).is_file() and read_json(path / BEST_FILE)["step"] == step
        if not moved(folder) and not moved(checkpoint):
            raise RuntimeError(f"{folder} is missing or incomplete: the policy of the best dev score (step {step}) "
                               "was not saved; train the stage again from step 0")

        def work():
            if moved(folder):
                shutil.rmtree(checkpoint, ignore_errors=True)
                folder.rename(checkpoint)
        self._on_main(work)
        return {"step": step, "dev_score": history[step], "last_step": last_step,
                "last_dev_score": history.get(last_step)}
