"""keep_best (train/best.py): a stage ends with the policy of its best dev score, on real GRPO with a tiny Llama."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stagerl.config import ConfigError, StageConfig
from stagerl.train import train_stages
from stagerl.train.best import BEST_FILE, BestPolicy, best_step

from test_dev_eval import MATH, stage  # tests/train is on the path: conftest.py


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_best_step_is_the_earliest_highest_score():
    assert best_step({}) is None and best_step({0: math.nan}) is None
    assert best_step({0: 0.2, 2: 0.5, 4: 0.5, 6: 0.1}) == 2                   # a tie never moves the choice
    assert best_step({4: 0.3, 0: 0.3}) == 0                                   # by step, not by insertion order
    assert best_step({0: math.nan, 2: 0.0}) == 2                              # NaN never wins


def test_keep_best_needs_a_dev_set():
    with pytest.raises(ConfigError, match="keep_best"):
        StageConfig(keep_best=True)
    assert stage(keep_best=True).keep_best


def test_the_stage_ends_with_the_policy_of_its_best_dev_score(tiny_model_dir, tmp_path):
    # evaluations at steps 0, 2 and 4, and at the last step 5 (not a multiple of eval_every): keep_best evaluates it
    # too; lr 1e-3 and the entropy bonus move the weights at every step; a second stage starts from what is kept
    first = stage(max_steps=5, checkpoint_every=1, keep_checkpoints=10, keep_best=True, report_to="none")
    second = stage(name="s2", max_steps=1, eval_every=None, dev=None, report_to="none")
    info, after = train_stages(tiny_model_dir, {"L1": MATH}, [first, second], tmp_path)
    out = tmp_path / "stages" / "1_s1"
    scores = {int(k): v for k, v in info["dev"]["scores"].items()}
    assert sorted(scores) == [0, 2, 4, 5]
    step = best_step(scores)
    assert info["kept"] == {"step": step, "dev_score": scores[step], "last_step": 5, "last_dev_score": scores[5]}

    at = {0: weights(Path(tiny_model_dir)), **{s: weights(out / "checkpoints" / f"checkpoint-{s}") for s in (2, 4, 5)}}
    assert not same(at[0], at[5])                                             # training moved the weights
    kept = weights(out / "checkpoint")
    assert same(kept, at[step])                                               # the stage's checkpoint is the best one
    assert step == 5 or not same(kept, at[5])
    assert json.loads((out / "checkpoint" / BEST_FILE).read_text())["step"] == step
    assert not list(out.glob("best-*"))                                       # moved, no copy left behind
    assert after["policy"] == info["checkpoint"]                              # the next stage starts from it

    from stagerl.report import build_report

    page = build_report(tmp_path).read_text()
    assert f"kept the policy of its best dev score (keep_best): step {step}," in page


def test_best_folders_follow_the_scores_a_resume_and_a_kill(tiny_model_dir, tmp_path):
    from trl import GRPOTrainer

    from stagerl.train import grpo_config, stage_dataset

    s = stage(report_to="none", keep_best=True)

    def zero(completions, **_):
        return [0.0] * len(completions)

    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[zero], args=grpo_config(s, tmp_path),
                          train_dataset=stage_dataset(MATH, s)[0])
    keeper = BestPolicy(trainer, tmp_path)

    def folders() -> list[str]:
        return sorted(d.name for d in tmp_path.glob("best-*"))

    history = {0: 0.25}
    keeper.offer(0, history)                                                  # the first score is the best so far
    history[2] = 0.25
    keeper.offer(2, history)                                                  # an equal score does not move it
    assert folders() == ["best-0"]
    history[4] = 0.5
    keeper.offer(4, history)                                                  # a better one replaces it
    assert folders() == ["best-4"]
    assert json.loads((tmp_path / "best-4" / BEST_FILE).read_text()) == {"step": 4, "dev_score": 0.5}
    assert (tmp_path / "best-4" / "tokenizer.json").is_file()

    (tmp_path / "best-6").mkdir()                                             # a save cut short by a kill
    keeper.drop_after(5)                                                      # resumed at the checkpoint of step 5
    assert folders() == ["best-4"]
    keeper.drop_after(3)                                                      # at step 3: step 4's weights are gone
    assert folders() == []
    checkpoint = tmp_path / "checkpoint"
    with pytest.raises(RuntimeError, match=r"best-4 is missing or incomplete.*step 4"):
        keeper.finish(history, checkpoint, 4)

    history = {0: 0.25, 2: 0.5}
    keeper.offer(2, history)
    kept = keeper.finish(history, checkpoint, 4)                              # the last step was not evaluated
    assert kept == {"step": 2, "dev_score": 0.5, "last_step": 4, "last_dev_score": None}
    assert folders() == [] and same(weights(checkpoint), {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()})
    assert keeper.finish(history, checkpoint, 4) == kept                      # a rerun after the move finds it done
