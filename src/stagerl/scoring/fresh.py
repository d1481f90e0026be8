"""Nothing stale reused: what the stored samples of each problem were made from.

For every problem the store records two fingerprints (``SampleStore.set_versions``): of what the
model saw (``domain`` and ``prompt``) and of what grading used (``answer`` and ``tests``). On a
rerun, before anything is generated:

* a problem whose answer or tests changed has its stored samples **re-graded** (the texts are
  still samples of the same prompt; only their rewards change), and the run says so;
* a problem whose prompt changed stops the run with an error naming it: its samples answer
  another question. Go on with a new run folder, or ``stagerl score --rescore-changed``, which
  deletes that problem's samples so they are drawn again.

Samples stored before fingerprints existed are taken as they are (there is nothing to compare).
"""

from __future__ import annotations

import hashlib
import json
import sys

from ..data.problem import Problem
from ..data.prompts import to_messages
from ..store import SampleStore


class StaleSamplesError(ValueError):
    """Stored samples were generated from a prompt that has changed since."""


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def problem_version(p: Problem) -> tuple[str, str]:
    """``(prompt fingerprint, grading fingerprint)`` of ``p``."""
    return _digest([p.domain, to_messages(p)]), _digest([p.answer, p.tests])  # the messages hold fn_name, starter code


def stale_prompts(store: SampleStore, problems: list[Problem]) -> list[str]:
    """Ids of ``problems`` whose prompt changed since their samples were stored (read only)."""
    known = store.versions()
    return [p.id for p in problems if p.id in known and known[p.id][0] != problem_version(p)[0]]


def stale_message(store: SampleStore, moved: list[str]) -> str:
    shown = ", ".join(repr(x) for x in moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
    return (f"{store.path}: the prompt of problem(s) {shown} changed since their samples were stored; "
            "those samples answer another question. Use a new run folder (--name), or rerun with "
            "--rescore-changed to delete these problems' samples and draw them again")


def reconcile(store: SampleStore, problems: list[Problem], rescore_changed: bool = False,
              workers: int | None = None, quiet: bool = False) -> dict[str, list[str]]:
    """Bring the stored samples of ``problems`` up to date (see the module docstring); return
    ``{"regraded": [ids], "deleted": [ids]}``. Raises ``StaleSamplesError`` before changing
    anything when a prompt changed and ``rescore_changed`` is off."""
    known = store.versions()
    now = {p.id: problem_version(p) for p in problems}
    moved = [p.id for p in problems if p.id in known and known[p.id][0] != now[p.id][0]]
    if moved and not rescore_changed:
        raise StaleSamplesError(stale_message(store, moved))
    if moved:
        store.delete_problems(moved)
    regrade = [p for p in problems if p.id in known and p.id not in moved and known[p.id][1] != now[p.id][1]]
    if regrade:
        from ..rewards import problem_rewards

        rows = store.samples(problem_ids=[p.id for p in regrade])
        by_id = {p.id: p for p in regrade}
        rewards = problem_rewards([by_id[r["problem_id"]] for r in rows], [r["text"] for r in rows], workers=workers)
        store.set_rewards((r["problem_id"], r["model"], r["idx"], x) for r, x in zip(rows, rewards))
        if not quiet:
            print(f"[stagerl] the answer or tests of {len(regrade)} problem(s) changed "
                  f"({', '.join(p.id for p in regrade[:5])}{', ...' if len(regrade) > 5 else ''}): "
                  f"re-graded their {len(rows)} stored sample(s)", file=sys.stderr, flush=True)
    if moved and not quiet:
        print(f"[stagerl] deleted the samples of {len(moved)} problem(s) whose prompt changed "
              f"({', '.join(moved[:5])}); they are drawn again", file=sys.stderr, flush=True)
    store.set_versions((pid, *v) for pid, v in now.items())
    return {"regraded": [p.id for p in regrade], "deleted": moved}
