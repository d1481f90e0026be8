"""Checkpoint rotation never leaves a stage without a complete checkpoint to resume from: the older ones go
only once the new one is complete (``resume_state.rotate``), not inside Transformers' save, which deletes
them after ``trainer_state.json`` but before our ``stagerl_state.json`` (a kill there, with
``keep_checkpoints: 1``, used to restart the stage at step 0)."""

from pathlib import Path

from transformers import TrainerCallback

from stagerl.config import StageConfig
from stagerl.data.problem import Problem
from stagerl.train.grpo import latest_checkpoint
from stagerl.train.resume_state import STATE_FILE, rotate

MATH = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1)) for i in range(4)]


class Probe(TrainerCallback):
    """Registered before the stage's own callbacks, so its ``on_save`` runs where a kill would land after
    Transformers' save and before ours: it records what a resume would find there."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, []

    def on_save(self, args, state, control, **kwargs) -> None:
        names = sorted(d.name for d in self.folder.glob("checkpoint-*"))
        resumable = latest_checkpoint(self.folder)
        self.seen.append((state.global_step, names, resumable.name if resumable else None))


def test_a_kill_between_transformers_save_and_ours_still_finds_the_checkpoint_before(tiny_model_dir, tmp_path,
                                                                                       monkeypatch):
    from trl import GRPOTrainer

    import stagerl.train.grpo as grpo

    stage = StageConfig(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                        max_completion_length=8, max_steps=3, math_code_ratio=None, seed=0, plateau=None,
                        checkpoint_every=1, keep_checkpoints=1, report_to="none")
    folder = tmp_path / "checkpoints"
    probe = Probe(folder)
    real = GRPOTrainer.__init__

    def init(self, *a, **kw):  # the stage's own trainer, with the probe first in its callback list
        real(self, *a, **kw)
        self.add_callback(probe)

    monkeypatch.setattr(GRPOTrainer, "__init__", init)
    grpo.train_stage(tiny_model_dir, MATH, stage, tmp_path)
    # at each save's kill window the checkpoint before is still there and complete
    assert [(step, resumable) for step, _, resumable in probe.seen] == [(1, None), (2, "checkpoint-1"),
                                                                       (3, "checkpoint-2")], probe.seen
    assert probe.seen[2][1] == ["checkpoint-2", "checkpoint-3"]
    # and once the new one is complete, only keep_checkpoints (1) remain
    assert sorted(d.name for d in folder.glob("checkpoint-*")) == ["checkpoint-3"]
    assert (folder / "checkpoint-3" / STATE_FILE).is_file()


def test_rotate_keeps_the_newest_complete_ones_and_waits_for_enough(tmp_path):
    def make(step, done=True):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for name in ("trainer_state.json", STATE_FILE)[: 2 if done else 1]:
            (d / name).write_text("{}")

    make(1), make(2, done=False), make(3)
    assert rotate(tmp_path, 3) == [] and len(list(tmp_path.iterdir())) == 3  # only 2 complete: nothing goes
    assert rotate(tmp_path, 2) == []                                           # 1 and 3 kept, 2 sits between them
    make(4)
    assert rotate(tmp_path, 2) == [1, 2]
    assert sorted(d.name for d in tmp_path.iterdir()) == ["checkpoint-3", "checkpoint-4"]
    make(5, done=False)  # a save under way: the complete ones stay
    assert rotate(tmp_path, 1) == [3] and sorted(d.name for d in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-5"]
