"""Paired comparisons of evaluated checkpoints, problem by problem, from their sample stores.

``eval/compare.json`` (written by ``compare_run``) lists, per benchmark, every checkpoint against
``base`` and each stage against the one before it::

    {"method": ..., "pairs": [{"benchmark", "a", "b", "problems", "a_pass@1", "b_pass@1",
                               "diff", "ci95", "p_value", "wins", "losses", "ties"}, ...]}

``diff`` is a minus b (see ``stats.paired_difference``). Where a benchmark's rewards include partial
credit (code), a pair also holds ``reward``: the same comparison of mean rewards (the share of tests
passed; ``stats.paired_reward_difference``) with keys ``a``, ``b``, ``diff``, ``ci95``, ``p_value``,
``wins``, ``losses``, ``ties``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..rundir import write_json
from ..scoring.adaptive import SUCCESS_EPS
from ..store import SampleStore
from .stats import PAIRED_METHOD, paired_difference, paired_reward_difference


def checkpoint_order(eval_dir: str | Path) -> list[str]:
    """Evaluated checkpoints (folders with a results.json): ``base`` first, then stages in number
    order (``2_x`` before ``10_y``), then any other name alphabetically."""
    def order(name: str) -> tuple:
        head = name.split("_", 1)[0]
        return (0, 0, name) if name == "base" else (1, int(head), name) if head.isdigit() else (2, 0, name)

    return sorted((p.parent.name for p in Path(eval_dir).glob("*/results.json")), key=order)


def problem_counts(eval_dir: str | Path, checkpoint: str, benchmark: str) -> dict[str, tuple[int, int]]:
    """``{problem_id: (samples, successes)}`` of one checkpoint on one benchmark, counting sample
    indices below the k recorded in its results.json; empty when its store is missing."""
    folder = Path(eval_dir) / checkpoint
    path = folder / f"{benchmark}.sqlite"
    if not path.exists():
        return {}
    k = json.loads((folder / "results.json").read_text()).get(benchmark, {}).get("k")
    if not k:
        return {}
    with SampleStore(path) as store:
        rows = store.query(f"SELECT problem_id, COUNT(*), SUM(reward >= {1.0 - SUCCESS_EPS!r}) FROM samples "
                           "WHERE model = ? AND idx < ? GROUP BY problem_id", (checkpoint, int(k)))
    return {str(pid): (int(n), int(c)) for pid, n, c in rows}


def problem_rewards(eval_dir: str | Path, checkpoint: str, benchmark: str) -> dict[str, list[float]]:
    """``{problem_id: [reward, ...]}`` of one checkpoint on one benchmark (indices below its k; NaN
    rewards left out); empty when its store is missing."""
    folder = Path(eval_dir) / checkpoint
    path = folder / f"{benchmark}.sqlite"
    k = json.loads((folder / "results.json").read_text()).get(benchmark, {}).get("k") if path.exists() else None
    if not k:
        return {}
    out: dict[str, list[float]] = {}
    with SampleStore(path) as store:
        for pid, reward in store.query("SELECT problem_id, reward FROM samples WHERE model = ? AND idx < ? "
                                       "AND reward IS NOT NULL ORDER BY problem_id, idx", (checkpoint, int(k))):
            out.setdefault(str(pid), []).append(float(reward))
    return out


def compare_pair(eval_a: Path, a: str, eval_b: Path, b: str, benchmark: str, seed: int = 0) -> dict | None:
    """Checkpoint ``a`` (in ``eval_a``) minus ``b`` (in ``eval_b``) on ``benchmark``, paired by
    problem id; ``None`` when either has no samples or they share no problem."""
    ca, cb = problem_counts(eval_a, a, benchmark), problem_counts(eval_b, b, benchmark)
    if not ca or not cb or not set(ca) & set(cb):
        return None
    r = paired_difference(ca, cb, seed=seed)
    out = {"benchmark": benchmark, "a": a, "b": b, "problems": r["problems"], "a_pass@1": r["a"],
           "b_pass@1": r["b"], "diff": r["diff"], "ci95": r["ci95"], "p_value": r["p_value"],
           "wins": r["wins"], "losses": r["losses"], "ties": r["ties"]}
    ra, rb = problem_rewards(eval_a, a, benchmark), problem_rewards(eval_b, b, benchmark)
    if any(0 < x < 1 for rs in (*ra.values(), *rb.values()) for x in rs) and set(ra) & set(rb):  # partial credit
        out["reward"] = paired_reward_difference(ra, rb, seed=seed)
    return out


def compare_run(eval_dir: str | Path) -> dict:
    """Pair every checkpoint with ``base`` and each stage with the previous one; write and return
    ``<eval_dir>/compare.json``."""
    eval_dir = Path(eval_dir)
    names = checkpoint_order(eval_dir)
    wanted: list[tuple[str, str]] = [(n, "base") for n in names if n != "base" and "base" in names]
    stages = [n for n in names if n != "base"]
    wanted += [(b, a) for a, b in zip(stages, stages[1:]) if (b, a) not in wanted]
    pairs = []
    for a, b in wanted:
        benches = json.loads((eval_dir / a / "results.json").read_text())
        for bench in benches:
            r = compare_pair(eval_dir, a, eval_dir, b, bench)
            if r:
                pairs.append(r)
    out = {"method": PAIRED_METHOD, "pairs": pairs}
    if eval_dir.exists():
        write_json(eval_dir / "compare.json", out)
    return out
