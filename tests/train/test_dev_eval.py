"""Held-out dev evaluation during real GRPO on a tiny Llama, the per-step metrics, TensorBoard and the ledger."""

import json
from pathlib import Path

import pytest

from stagerl.config import ConfigError, DevConfig, PlateauConfig, StageConfig
from stagerl.data.problem import Problem
from stagerl.store import SampleStore
from stagerl.train import train_stages
from stagerl.train.dev_eval import DevEvalCallback, DevSetError, split_dev


MATH = [Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1)) for i in range(6)]
CODE = [Problem(id=f"echo{i}", domain="code", prompt=f"Print {i}.", tests={"inputs": [""], "outputs": [str(i)]})
        for i in range(3)]


def stage(**kw) -> StageConfig:
    base = dict(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                max_completion_length=8, max_steps=4, math_code_ratio=None, seed=0, plateau=None,
                eval_every=2, dev=DevConfig(holdout=2, max_tokens=6), dev_k=2)
    return StageConfig(**{**base, **kw})


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_holdout_is_drawn_per_domain_and_removed_from_training():
    s = stage(dev=DevConfig(holdout=3))
    train, dev = split_dev(MATH + CODE, s)
    assert len(dev) == 3 and len(train) == 6 and not {p.id for p in train} & {p.id for p in dev}
    assert sorted(p.domain for p in dev) == ["code", "math", "math"]          # 6:3 of the pool -> 2:1
    assert split_dev(MATH + CODE, s) == (train, dev)                           # seeded: same draw
    assert split_dev(MATH + CODE, stage(dev=DevConfig(holdout=3), seed=1))[1] != dev
    assert split_dev(MATH, stage(eval_every=0)) == (MATH, [])                  # off: nothing held out
    with pytest.raises(DevSetError, match="holdout = 6 leaves nothing to train on"):
        split_dev(MATH, stage(dev=DevConfig(holdout=6)))
    bench = split_dev(MATH, stage(dev=DevConfig(source="builtin:math500", limit=3)))
    assert bench[0] == MATH and len(bench[1]) == 3 and all(p.domain == "math" for p in bench[1])
    from stagerl.data import load_source

    first = load_source("builtin:math500")[:2]                                  # dev problems are never trained on
    train, dev = split_dev(MATH + first, stage(dev=DevConfig(source="builtin:math500", limit=5)))
    assert train == MATH and len(dev) == 5


def test_dev_fields_are_checked():
    with pytest.raises(ConfigError, match="eval_every = 2 needs a dev set"):
        StageConfig(eval_every=2)
    with pytest.raises(ConfigError, match="exactly one of holdout"):
        DevConfig(holdout=2, source="builtin:math500")
    with pytest.raises(ConfigError, match="plateau.metric: dev_score needs eval_every"):
        StageConfig(plateau=PlateauConfig(metric="dev_score"))
    assert StageConfig(report_to="none").report_to == [] and StageConfig().report_to == ["tensorboard"]


def test_dev_rows_metrics_tensorboard_and_ledger(tiny_model_dir, tmp_path):
    [info] = train_stages(tiny_model_dir, {"L1": MATH}, [stage()], tmp_path)
    out = tmp_path / "stages" / "1_s1"
    lines = rows(out)
    assert [r["step"] for r in lines] == [0, 1, 2, 3, 4]                       # step 0: the baseline
    assert [r["step"] for r in lines if "dev_score" in r] == [0, 2, 4]
    for r in lines:
        if "dev_score" in r:
            assert 0.0 <= r["dev_score"] <= 1.0
    for r in lines[1:]:                                                        # every training row
        assert 0.0 <= r["reward_math"] <= 1.0 and 0.0 <= r["signal"] <= 1.0 and "reward_code" not in r
        assert r["tokens"] == pytest.approx(r["completion_length"] * 4)      # 2 prompts x 2 completions
        for key in ("clipped_ratio", "kl", "entropy", "seconds"):
            assert isinstance(r[key], float)

    # dev samples are stored per evaluation: 2 held-out problems x k=2 at steps 0, 2 and 4
    store = SampleStore(out / "dev.sqlite")
    assert sorted(store.counts().values()) == [2] * 6
    assert {m for _, m in store.counts()} == {"step-0", "step-2", "step-4"}
    dev_ids = {p for p, _ in store.counts()}
    assert len(dev_ids) == 2 and info["problems"] == 4                         # held out of training
    rewards = {m: [r["reward"] for r in store.samples(model=m)] for m in ("step-0", "step-2", "step-4")}
    by_step = {r["step"]: r["dev_score"] for r in lines if "dev_score" in r}
    for step, rs in rewards.items():                                           # score = mean pass@1 of the samples
        assert by_step[int(step[5:])] == pytest.approx(sum(x >= 1 for x in rs) / len(rs))

    saved = json.loads((out / "stage.json").read_text())
    assert saved["cost"]["tokens"] == sum(r["tokens"] for r in lines[1:]) > 0
    assert saved["cost"]["dev_tokens"] == sum(r["tokens"] for r in store.samples()) > 0
    assert saved["pool_passes"] == {"math": 2.0, "code": 0.0}                  # 4 steps x 2 prompts over 4 problems
    assert saved["dev"]["scores"] == {str(k): v for k, v in by_step.items()} and saved["warnings"] == []

    # TensorBoard event files in the stage's tb/, with the dev score and our per-domain metrics
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [events] = [p.parent for p in (out / "tb").rglob("events.out.tfevents.*")]
    acc = EventAccumulator(str(events))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/dev_score", "train/reward_math", "train/signal", "train/reward"} <= tags
    assert [e.step for e in acc.Scalars("train/dev_score")] == [0, 2, 4]


def test_plateau_on_dev_score_stops_the_stage(tiny_model_dir, tmp_path):
    # window 1, patience 1 and a min_delta nothing reaches: the step-0 score is the best, the next
    # evaluation (step 2) is the plateau; step 1 has no dev_score and does not count
    s = stage(max_steps=6, plateau=PlateauConfig(metric="dev_score", window=1, patience=1, min_delta=1e9))
    [info] = train_stages(tiny_model_dir, {"L1": MATH}, [s], tmp_path)
    assert info["reason"] == "plateau at step 2" and info["steps"] == 2 and info["metric"] == "dev_score"
    assert [r["step"] for r in rows(tmp_path / "stages" / "1_s1")] == [0, 1, 2]


def test_an_evaluation_already_stored_is_not_generated_again(tiny_model_dir, tmp_path):
    from trl import GRPOTrainer

    from stagerl.data.prompts import to_messages
    from stagerl.train import grpo_config, stage_dataset

    s = stage(report_to="none")

    def zero(completions, **_):
        return [0.0] * len(completions)

    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[zero], args=grpo_config(s, tmp_path),
                          train_dataset=stage_dataset(MATH, s)[0])
    cb = DevEvalCallback(trainer, MATH[:3], s, tmp_path, to_messages)
    trainer.model.train()
    first = cb.evaluate(7)
    assert cb.tokens > 0 and trainer.model.training                            # train mode is given back
    spent = cb.tokens
    assert cb.evaluate(7) == first and cb.tokens == spent                      # all stored: nothing generated
    assert len(SampleStore(tmp_path / "dev.sqlite").samples(model="step-7")) == 3 * 2

    # resumed at the checkpoint of step 8: the record saved there comes back, and the samples of the
    # evaluation at step 9 (made by weights the checkpoint does not hold) are deleted, to be made again
    saved = cb.state()
    cb.evaluate(9)
    assert cb.history.keys() == {7, 9} and cb.tokens > spent
    fresh = DevEvalCallback(trainer, MATH[:3], s, tmp_path, to_messages)
    fresh.restore(saved, 8)
    assert fresh.history == {7: first} and fresh.tokens == spent and fresh.seconds == saved["seconds"] > 0
    assert {m for _, m in SampleStore(tmp_path / "dev.sqlite").counts()} == {"step-7"}


def test_a_bad_dev_set_of_a_later_stage_fails_before_any_training(tiny_model_dir, tmp_path):
    stages = [stage(), stage(name="s2", dev=DevConfig(holdout=99))]
    with pytest.raises(DevSetError, match="stage 's2': dev.holdout = 99"):
        train_stages(tiny_model_dir, {"L1": MATH}, stages, tmp_path)
    assert not (tmp_path / "stages").exists()


def test_two_stages_render_in_the_report_with_their_dev_rows(tiny_model_dir, tmp_path):
    """The demo's shape in small: stage 2 on other problems with a longer limit, truncation masked,
    no entropy, starting from stage 1's checkpoint; the report lists both stages."""
    from stagerl.report import build_report

    s1 = stage(max_steps=2, report_to="none")
    s2 = stage(name="s2", levels=["L2"], max_steps=2, max_completion_length=12, mask_truncated_completions=True,
               entropy_coef=0.0, report_to="none")
    first, second = train_stages(tiny_model_dir, {"L1": MATH[:4], "L2": MATH[2:] + CODE}, [s1, s2], tmp_path)
    assert second["policy"] == first["checkpoint"] and second["domains"]["code"] > 0
    for d in ("1_s1", "2_s2"):
        assert [r["step"] for r in rows(tmp_path / "stages" / d) if "dev_score" in r] == [0, 2]
    build_report(tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()  # the markdown twin of index.html
    assert "| 1_s1 | L1 | 2 | max_steps |" in report and "| 2_s2 | L2 | 2 | max_steps |" in report
    assert (tmp_path / "report" / "training.png").stat().st_size > 1000


def test_a_stage_started_again_keeps_only_a_whole_step0_evaluation(tmp_path):
    """Before step 0 of a stage started again: the starting policy's evaluation stays when every dev problem
    has its k samples; later steps' samples go, and a step 0 cut short goes whole (a real store on disk)."""
    from stagerl.train.dev_eval import _start_afresh

    path, dev = tmp_path / "dev.sqlite", MATH[:3]

    def fill(step0_problems):
        with SampleStore(path) as store:
            store.add({"problem_id": p.id, "model": f"step-{s}", "idx": i, "domain": "math", "text": "x", "tokens": 3,
                       "finish": "stop", "reward": 1.0} for s, ps in ((0, step0_problems), (2, dev)) for p in ps
                      for i in range(2))

    _start_afresh(path, dev, 2)  # no store yet: nothing to do
    assert not path.exists()
    fill(dev)
    _start_afresh(path, dev, 2)
    with SampleStore(path) as store:
        assert store.counts() == {(p.id, "step-0"): 2 for p in dev}
    _start_afresh(path, dev, 3)  # k samples of each problem are needed: 2 of 3 is a step 0 cut short
    assert not path.exists()
    fill(dev[:2])
    _start_afresh(path, dev, 2)
    assert not path.exists()
