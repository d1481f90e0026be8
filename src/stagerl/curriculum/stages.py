"""A stage's training problems: the union of its levels."""

from __future__ import annotations

from pathlib import Path

from ..config import StageConfig
from ..data.problem import Problem
from ..rundir import RunDir


class StageDataError(ValueError):
    """A stage names a level that does not exist, or its levels hold no problems."""


def stage_problems(stage: StageConfig, levels: dict[str, list[Problem]]) -> list[Problem]:
    """The union of ``stage.levels``' problems, in level order, each problem id once.

    Levels may overlap (they are rules over pass rates), so a problem in two levels appears once.
    Raises ``StageDataError`` naming a missing level and the available ones, or when the union is empty.
    """
    if not stage.levels:
        raise StageDataError(f"stage {stage.name!r} lists no levels")
    missing = [name for name in stage.levels if name not in levels]
    if missing:
        available = ", ".join(sorted(levels)) or "none"
        raise StageDataError(f"stage {stage.name!r}: level {missing[0]!r} does not exist "
                             f"(available levels: {available})")
    seen: set[str] = set()
    out: list[Problem] = []
    for name in stage.levels:
        for p in levels[name]:
            if p.id not in seen:
                seen.add(p.id)
                out.append(p)
    if not out:
        sizes = ", ".join(f"{n}: 0" for n in stage.levels)
        raise StageDataError(f"stage {stage.name!r}: its levels hold no problems ({sizes}); "
                             "loosen the level rules or add data")
    return out


def stage_dir(run_dir: str | Path, index: int, stage: StageConfig) -> Path:
    """``run_dir/stages/<index>_<name>`` (index from 1): where a stage writes its files (``rundir.RunDir``)."""
    return RunDir(run_dir).stage(index, stage.name)


def stage_folders(run_dir: str | Path) -> list[Path]:
    """The stage folders of a run in stage order (``10_x`` after ``2_y``, not before)."""
    return RunDir(run_dir).stage_folders()
