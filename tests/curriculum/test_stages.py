"""A stage's problems: the union of its levels, each id once, with clear errors."""

import pytest

from stagerl.config import StageConfig
from stagerl.curriculum import StageDataError, stage_problems
from stagerl.data.problem import Problem


def m(i: int) -> Problem:
    return Problem(id=f"p{i}", domain="math", prompt=f"{i}?", answer=str(i))


def test_union_in_level_order_without_duplicates():
    levels = {"L2": [m(1), m(2)], "L3": [m(2), m(3)], "L1": [m(9)]}
    got = stage_problems(StageConfig(levels=["L2", "L3"]), levels)
    assert [p.id for p in got] == ["p1", "p2", "p3"]


def test_missing_level_names_it_and_the_available_ones():
    with pytest.raises(StageDataError, match=r"'L4'.*available levels: L1, L2"):
        stage_problems(StageConfig(name="s2", levels=["L2", "L4"]), {"L1": [m(1)], "L2": [m(2)]})


def test_empty_union_is_an_error():
    with pytest.raises(StageDataError, match="hold no problems"):
        stage_problems(StageConfig(levels=["L3"]), {"L3": []})


def test_stage_folders_in_stage_order(tmp_path):
    from stagerl.config import StageConfig
    from stagerl.curriculum import stage_dir, stage_folders

    for i in (1, 2, 10):
        stage_dir(tmp_path, i, StageConfig(name=f"s{i}")).mkdir(parents=True)
    (tmp_path / "stages" / "notes.txt").write_text("not a stage")
    assert [d.name for d in stage_folders(tmp_path)] == ["1_s1", "2_s2", "10_s10"]
