"""Benchmark: the scoring loop's stopping decisions with remembered verdicts (``levels/memo.py``) vs computed each time.

Adaptive scoring asks ``needs_samples`` (which calls ``rules.decide`` and ``rules.relevant_models``) for
every open (problem, model) pair in every round, and the statistical rules ask ``may_stop`` once more,
whose error sums ``relevant_models`` over every sample still to draw; each answer evaluates the rules
over the box of rates (``levels/box.py``). ``stagerl.scoring.simulate`` runs exactly those decisions on
drawn samples (no model), so its time is the decisions' cost: here for the paper's rules and four-model
ladder on a pool whose rates follow the SwS histograms (``published_pool``), k=16, strongest first,
rounds of 1 (docs/scale.md), with the exact rule (the default) and the joint rule at 1%.

Anchor: the same runs with ``memo.ENABLED = False`` (every answer computed, as before 2026-12-06).
Side condition: both sides give the same result (samples per model, labels, error spent), run by run.

    python benchmarks/verdicts.py [--problems 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

from stagerl.levels import memo
from stagerl.levels.rules import bind, load_rules
from stagerl.scoring.simulate import joint_stop_of, published_pool, simulate

LADDER = ["small", "medium", "large", "strongest"]
TABLES = {"small": "sws-3b", "medium": "sws-7b", "large": "sws-32b", "strongest": "sws-32b"}


def one(problems: int, stop, cached: bool) -> tuple[float, tuple]:
    """(seconds, result) of one simulated scoring run, with fresh rules (an empty memo table)."""
    rules = bind(load_rules("paper"), {"policy": "small", **{m: m for m in LADDER}})
    pool = published_pool(TABLES, problems, seed=3)
    memo.ENABLED = cached
    try:
        start = time.perf_counter()
        got = simulate(rules, pool, 16, order=LADDER[::-1], round_size=1, stop=stop, seed=5)
        seconds = time.perf_counter() - start
    finally:
        memo.ENABLED = True
    return seconds, (got.samples, got.same, round(got.spent, 9), tuple(sorted(got.per_model.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2, help="runs per side and rule (alternating sides)")
    args = ap.parse_args()
    total = {True: 0.0, False: 0.0}
    same = True
    for name, stop in (("exact", None), ("joint 1%", joint_stop_of(0.01, classes=8, draws=2))):
        for r in range(args.repeats):
            sides = (True, False) if r % 2 == 0 else (False, True)
            runs = {side: one(args.problems, stop, side) for side in sides}
            for side, (seconds, _) in runs.items():
                total[side] += seconds
            agree = runs[True][1] == runs[False][1]
            same &= agree
            print(f"{name}, run {r + 1}: remembered {runs[True][0]:.1f} s, computed {runs[False][0]:.1f} s, "
                  f"samples {runs[True][1][0]} of {16 * len(LADDER) * args.problems}, labels same {runs[True][1][1]}"
                  f"/{args.problems}, results {'identical' if agree else 'DIFFER: ' + repr(runs)}", flush=True)
    ours, anchor = total[True], total[False]
    ratio = ours / anchor
    ok = ratio <= 0.5 and same
    print(f"RESULT verdict_seconds ours={ours:.1f} anchor={anchor:.1f} ratio={ratio:.3f} goal=<=0.5 "
          f"same_results={'yes' if same else 'no'} ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
