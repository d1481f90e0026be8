"""What a resumed stage needs beyond TRL's checkpoint, saved in it: ``stagerl_state.json``.

TRL's checkpoint (``checkpoints/checkpoint-<step>/``) holds the weights, optimizer, scheduler,
RNG states and ``trainer_state.json``. A stage's decisions also depend on state of ours, which
``ResumeStateCallback`` writes beside them at every save, the way TRL writes its own extra state
(``entropy_ctrl_state.json``) beside ``trainer_state.json``::

    {"step": S,
     "online": [per process: OnlineGRPOTrainer.online_state()],   # estimate, RNG, refill queues, totals
     "dev": DevEvalCallback.state()}                               # dev scores (step 0 too) and cost

and restores at the start of a resumed ``train()``, so the resumed stage makes the decisions an
uninterrupted one makes (``tests/train/test_resume_exact.py``). The file is written last (rank 0,
after gathering every process's part; atomically): ``grpo.latest_checkpoint`` resumes only from a
checkpoint that has it, so a kill during a save falls back to the checkpoint before.

**Rotation is ours, after that write.** Transformers' own (``save_total_limit``) deletes the oldest
checkpoints inside its save, after ``trainer_state.json`` but before this file: with
``keep_checkpoints: 1`` a kill in between would leave no complete checkpoint and restart the stage
at step 0. So the stage sets no ``save_total_limit``, and this callback deletes the checkpoints older
than the newest ``keep`` complete ones only once the new one is complete (``rotate``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from accelerate.utils import gather_object
from transformers import TrainerCallback

from ..rundir import numbered_folders, write_json

STATE_FILE = "stagerl_state.json"


class ResumeStateCallback(TrainerCallback):
    """Saves and restores the online-filtering state of ``trainer`` (when it has one) and the dev
    evaluation's record (``dev``, a ``DevEvalCallback`` or None); ``resume`` is the checkpoint
    ``train()`` resumes from (None: a fresh start)."""

    def __init__(self, trainer: Any, dev: Any = None, resume: str | Path | None = None, keep: int | None = None) -> None:
        self.trainer, self.dev, self.keep = trainer, dev, keep
        self.resume = Path(resume) if resume else None

    def _online(self) -> bool:
        return hasattr(self.trainer, "online_state")

    def on_save(self, args, state, control, **kwargs) -> None:
        acc = self.trainer.accelerator
        mine = self.trainer.online_state() if self._online() else None
        parts = gather_object([mine]) if acc.num_processes > 1 else [mine]
        if acc.is_main_process:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_json(folder / STATE_FILE, {
                "step": state.global_step,
                "online": parts if self._online() else None,
                "dev": self.dev.state() if self.dev is not None else None,
            })
            if self.keep:
                rotate(folder.parent, self.keep)
        acc.wait_for_everyone()

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        if self.resume is None or state.global_step == 0:
            return
        saved = load_state(self.resume)
        if saved["step"] != state.global_step:
            raise RuntimeError(f"{self.resume / STATE_FILE} is of step {saved['step']}, the checkpoint of step "
                               f"{state.global_step}")
        acc = self.trainer.accelerator
        if self._online():
            online = saved.get("online") or []
            if len(online) != acc.num_processes:
                raise RuntimeError(f"{self.resume / STATE_FILE} holds the online state of {len(online)} processes; "
                                   f"this run has {acc.num_processes}: resume with the same number of processes")
            self.trainer.load_online_state(online[acc.process_index])
        if self.dev is not None and saved.get("dev") is not None:
            self.dev.restore(saved["dev"], state.global_step)


def load_state(checkpoint: str | Path) -> dict[str, Any]:
    """The ``stagerl_state.json`` of a checkpoint folder."""
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


def complete(checkpoint: Path) -> bool:
    """Whether a ``checkpoint-<step>`` folder's save completed (``trainer_state.json``, then ours, written last)."""
    return (checkpoint / "trainer_state.json").is_file() and (checkpoint / STATE_FILE).is_file()


def drop_cut_short(folder: str | Path) -> list[int]:
    """Remove the ``checkpoint-<step>`` folders under ``folder`` whose save was cut short (a kill, a full
    disk); their steps.

    ``grpo.latest_checkpoint`` ignores them already; left in place, one keeps its half-written weights
    file until ``rotate`` removes the folder, or for good when no later checkpoint comes. Call it only
    while no process trains in the stage folder (before its training starts)."""
    found = numbered_folders(folder, "checkpoint")
    cut = sorted(step for step, d in found.items() if not complete(d))
    for step in cut:
        shutil.rmtree(found[step], ignore_errors=True)
    return cut


def rotate(folder: Path, keep: int) -> list[int]:
    """Delete the ``checkpoint-<step>`` folders under ``folder`` older than its newest ``keep`` complete ones;
    their steps. Nothing goes while fewer than ``keep`` are complete."""
    found = numbered_folders(folder, "checkpoint")
    done = sorted(step for step, d in found.items() if complete(d))
    if len(done) < keep:
        return []
    old = [step for step in sorted(found) if step < done[-keep]]
    for step in old:
        shutil.rmtree(found[step], ignore_errors=True)
    return old
