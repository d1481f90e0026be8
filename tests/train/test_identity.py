"""A finished or half-trained stage is reused only when its settings, problems and start are unchanged."""

import dataclasses
import json

import pytest

from stagerl import cli
from stagerl.config import StageConfig
from stagerl.train import StageChangedError, train_stages
from stagerl.train.identity import changes, fingerprint, stage_identity


def stage(**kw) -> StageConfig:
    base = dict(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                max_completion_length=6, max_steps=2, math_code_ratio=None, seed=0, plateau=None, beta=0.0)
    return StageConfig(**{**base, **kw})


def test_changed_stage_stops_and_names_the_change_then_retrains(kit, tiny_model_dir, tmp_path):
    levels = {"L1": kit.MATH[:3]}
    [first] = train_stages(tiny_model_dir, levels, [stage()], tmp_path, isolate=False)
    out = tmp_path / "stages" / "1_s1"
    assert first["identity"]["settings"]["learning_rate"] == 1e-3
    saved = (out / "stage.json").read_text()

    # only checkpointing changed: the stage is reused as it is
    [same] = train_stages(tiny_model_dir, levels, [stage(checkpoint_every=7)], tmp_path, isolate=False)
    assert (out / "stage.json").read_text() == saved and same["steps"] == 2

    with pytest.raises(StageChangedError, match=r"1_s1 finished with other settings \(learning_rate: 0.001 -> 0.002\)"
                                                r".*--retrain"):
        train_stages(tiny_model_dir, levels, [stage(learning_rate=2e-3)], tmp_path, isolate=False)
    with pytest.raises(StageChangedError, match=r"problems: 3 -> 4 problems"):
        train_stages(tiny_model_dir, {"L1": kit.MATH[:4]}, [stage()], tmp_path, isolate=False)
    edited = [dataclasses.replace(p, answer="0") if i == 0 else p for i, p in enumerate(levels["L1"])]
    with pytest.raises(StageChangedError, match=r"problems: same count \(3\), other content"):
        train_stages(tiny_model_dir, {"L1": edited}, [stage()], tmp_path, isolate=False)
    assert (out / "stage.json").read_text() == saved                       # nothing was touched

    [again] = train_stages(tiny_model_dir, levels, [stage(learning_rate=2e-3)], tmp_path, retrain=True, isolate=False)
    assert again["identity"]["settings"]["learning_rate"] == 2e-3
    assert json.loads((out / "stage.json").read_text())["config"]["learning_rate"] == 2e-3


def test_later_stages_and_half_trained_stages_are_checked_too(kit, tiny_model_dir, tmp_path):
    levels = {"L1": kit.MATH[:3], "L2": kit.MATH[3:]}
    two = [stage(), stage(name="s2", levels=["L2"])]
    r1, r2 = train_stages(tiny_model_dir, levels, two, tmp_path, isolate=False)
    # stage 2 started from stage 1's checkpoint, recorded by its fingerprint
    assert r2["identity"]["start"]["fingerprint"] == fingerprint(r1["checkpoint"]) != fingerprint(tiny_model_dir)

    # stage 1 changes: stage 2 (trained from the old stage 1) is named as well
    with pytest.raises(StageChangedError, match=r"learning_rate.*2_s2 started from the 1_s1 that is trained again"):
        train_stages(tiny_model_dir, levels, [stage(learning_rate=5e-3), two[1]], tmp_path, isolate=False)

    # a stage killed part-way (checkpoints, no stage.json) whose settings then changed is not resumed
    (tmp_path / "stages" / "2_s2" / "stage.json").unlink()
    with pytest.raises(StageChangedError, match=r"2_s2 was trained part-way with other settings \(seed: 0 -> 1\)"):
        train_stages(tiny_model_dir, levels, [two[0], stage(name="s2", levels=["L2"], seed=1)], tmp_path, isolate=False)


def test_cli_reports_the_change_and_offers_retrain(kit, make_run, tiny_model_dir, tmp_path, capsys):
    recipe, run_dir = make_run(tiny_model_dir, [kit.tiny_stage()])
    ident = stage_identity(stage(), kit.MATH[:3], tiny_model_dir, lambda p: [{"role": "user", "content": p.prompt}])
    out = run_dir / "stages" / "1_s1"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "config.json").write_text("{}")
    (out / "stage.json").write_text(json.dumps({"reason": "max_steps", "steps": 2, "identity": ident}))
    assert cli.main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "stagerl train: error: stage 1_s1 finished with other settings" in err and "--retrain" in err
    assert "max_completion_length: 6 -> 8" in err and "problems: 3 -> 9 problems" in err
    assert cli.build_parser().parse_args(["train", str(recipe), "--retrain"]).retrain is True


def test_changes_names_start_and_old_records():
    a = {"settings": {"beta": 0.0}, "problems": {"count": 1, "sha256": "x"}, "start": {"path": "/a", "fingerprint": "1"}}
    moved = {**a, "start": {"path": "/b", "fingerprint": "1"}}
    assert changes(a, moved) == []                                     # a moved run folder is the same run
    assert changes(a, {**a, "start": {"path": "/c", "fingerprint": "2"}}) == [
        "starting checkpoint: /a -> /c (its files differ)"]
    assert changes(None, a) == ["no identity recorded (trained by an older stagerl)"]
