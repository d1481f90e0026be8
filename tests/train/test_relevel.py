"""Re-levelling: the stage's candidates re-scored with the current policy through adaptive scoring and
the run's store (nothing generated twice), kept by band, moves table and cost written."""

import json

import pytest

from stagerl.config import ConfigError, RelevelConfig, StageConfig
from stagerl.curriculum import StageDataError
from stagerl.data.generated import demo_math
from stagerl.data.problem import Problem
from stagerl.store import SampleStore
from stagerl.train import train_stages
from stagerl.report import build_report
from stagerl.train.relevel import relevel_stage


def math(i: int) -> Problem:
    return Problem(id=f"add{i}", domain="math", prompt=f"What is {i} + {i + 1}?", answer=str(2 * i + 1))


LEVELS = {"L1": [math(0), math(1)], "L2": [math(1), math(2), math(3)]}


def stage(**relevel) -> StageConfig:
    return StageConfig(name="s1", levels=["L2"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                       max_completion_length=6, max_steps=1, plateau=None, math_code_ratio=None, seed=0,
                       relevel=RelevelConfig(**{"k": 4, "round_size": 2, **relevel}))


def test_relevel_rescores_through_the_store_once_and_writes_moves(tiny_model_dir, tmp_path):
    store = SampleStore(tmp_path / "samples.sqlite")
    store.set_meta("scoring", {"k": 16, "models": ["ref"]})  # what reference scoring recorded
    # the random tiny model never answers: every rate is 0, so the band [0,0] keeps all, after k samples each
    s = stage(levels=["L1", "L2"], band="[0,0]")
    kept = relevel_stage(tiny_model_dir, s, LEVELS, tmp_path, 1, progress=False)
    assert [p.id for p in kept] == ["add0", "add1", "add2", "add3"]
    info = json.loads((tmp_path / "stages" / "1_s1" / "relevel.json").read_text())
    assert info["moves"] == {"L1": {"L2": 2}, "L2": {"L2": 3}}  # add1 is in both levels: counted in each
    assert info["generated"] == 4 * 4 and info["cost"]["samples"] == 16 and info["cost"]["tokens"] > 0
    rows = store.query("SELECT model, COUNT(*) FROM samples GROUP BY model")
    assert rows == [("policy-1_s1", 16)]
    assert store.get_meta("scoring") == {"k": 16, "models": ["ref"]}  # the scoring run's record is untouched
    book = json.loads((tmp_path / "ledger.json").read_text())
    assert book["models"]["policy-1_s1"]["samples"] == 16

    # rerun: everything is in the store, nothing is generated again, same verdicts
    again = relevel_stage(tiny_model_dir, s, LEVELS, tmp_path, 1, progress=False)
    info2 = json.loads((tmp_path / "stages" / "1_s1" / "relevel.json").read_text())
    assert [p.id for p in again] == [p.id for p in kept] and info2["generated"] == 0
    assert info2["moves"] == info["moves"] and store.query("SELECT COUNT(*) FROM samples") == [(16,)]

    # a band the policy never reaches keeps nothing: a clear error, after recording why
    with pytest.raises(StageDataError, match=r"kept none of its 3 candidates .*3 too hard"):
        relevel_stage(tiny_model_dir, stage(band="(0,1]"), LEVELS, tmp_path, 1, progress=False)
    info3 = json.loads((tmp_path / "stages" / "1_s1" / "relevel.json").read_text())
    assert info3["moves"] == {"L2": {"dropped": 3}} and info3["generated"] == 0  # same model, same samples


def test_relevel_hook_in_train_stages(tiny_model_dir, tmp_path):
    with pytest.raises(StageDataError, match="'L9' does not exist"):  # checked before any work
        train_stages(tiny_model_dir, LEVELS, [stage(levels=["L9"])], tmp_path)
    [info] = train_stages(tiny_model_dir, LEVELS, [stage(band="[0,0]")], tmp_path)
    assert info["steps"] == 1 and info["problems"] == 3
    assert json.loads((tmp_path / "stages" / "1_s1" / "relevel.json").read_text())["kept"] == 3
    build_report(tmp_path)  # the report (its markdown twin here) shows the moves and the cost
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| old level | L2 |" in report and "| L2 | 3 |" in report and "3 of 3 candidates kept" in report
    with pytest.raises(ConfigError, match="relevel.band"):
        RelevelConfig(band="0..1")


@pytest.mark.slow
def test_relevel_with_smollm2_keeps_only_the_band(smollm2_dir, tmp_path):
    from stagerl.config import PromptConfig

    problems = demo_math(n=6, seed=0)  # levels 1..5, then 1 again: easy to very hard for SmolLM2
    s = StageConfig(name="s2", levels=["L"], max_completion_length=48, temperature=0.8, seed=0,
                    relevel=RelevelConfig(k=4, round_size=2))
    kept = relevel_stage(smollm2_dir, s, {"L": problems}, tmp_path, 2, messages=PromptConfig(fewshot=True).messages,
                         progress=False)
    store = SampleStore(tmp_path / "samples.sqlite")
    rates = {pid: (s_, n) for pid, s_, n in store.query(
        "SELECT problem_id, SUM(reward >= 0.999999999), COUNT(*) FROM samples GROUP BY problem_id")}
    # kept exactly the problems with both a success and a failure among their stored samples
    assert {p.id for p in kept} == {pid for pid, (s_, n) in rates.items() if 0 < s_ < n}
    info = json.loads((tmp_path / "stages" / "2_s2" / "relevel.json").read_text())
    assert info["moves"]["L"].get("L", 0) == len(kept) and sum(info["moves"]["L"].values()) == 6
    assert info["dropped"]["too_easy"] + info["dropped"]["too_hard"] == 6 - len(kept)
    assert info["cost"]["samples"] == sum(n for _, n in rates.values()) < 6 * 4 + 1


def test_relevel_with_round_size_k_draws_every_sample_of_every_candidate(tiny_model_dir, tmp_path):
    """``round_size: k`` gives predictive skipping seeds of k samples for every candidate (README): the first
    round draws them all, though one failure settles the band [0,1) here; rounds of 1 stop at that failure."""
    one = relevel_stage(tiny_model_dir, stage(band="[0,1)", round_size=1), LEVELS, tmp_path / "one", 1,
                        progress=False)
    full = relevel_stage(tiny_model_dir, stage(band="[0,1)", round_size=4), LEVELS, tmp_path / "full", 1,
                         progress=False)
    assert [p.id for p in one] == [p.id for p in full] == ["add1", "add2", "add3"]
    counts = [json.loads((d / "stages" / "1_s1" / "relevel.json").read_text())["generated"]
              for d in (tmp_path / "one", tmp_path / "full")]
    assert counts == [3, 3 * 4]
