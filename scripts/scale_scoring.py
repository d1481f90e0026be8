"""What adaptive scoring saves on the paper's ladder, simulated with stagerl's own stopping rule.

docs/scale.md uses this to estimate, before renting GPUs, how many of the fixed protocol's samples
each reference model still draws under adaptive scoring with the paper's level rules. Nothing is
generated: each (problem, model) pair gets a pass probability from an assumed difficulty model, and
samples are Bernoulli draws. The stopping logic is the real one (``needs_samples`` over the
``paper`` preset, rounds of ``round_size`` per model, models scored one after another in ``order``,
exactly as ``stagerl.scoring.run`` does).

Assumed difficulty model (state it wherever the numbers are used): a problem has a latent
difficulty ``d ~ Normal(0, SPREAD)`` per domain, and model ``m`` solves it with probability
``sigmoid(a_m - d)``; ``a_m`` is fitted so that the mean pass rate equals the model's published
pass@1 (DeepSeek-R1 report): MATH-500 for the math problems, LiveCodeBench for the code problems.

    python scripts/scale_scoring.py                 # 9001 problems (math_train + lcb_train), k=16
    python scripts/scale_scoring.py --spread 1.5 --problems 2000
"""

from __future__ import annotations

import argparse
import math
import random

from stagerl.levels.rules import bind, load_rules
from stagerl.scoring.adaptive import needs_samples

MODELS = ["r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-qwen-32b", "deepseek-r1"]  # weakest first
# published pass@1 (DeepSeek-R1 report, tables 4-5): MATH-500 and LiveCodeBench
TARGETS = {"math": [0.839, 0.928, 0.943, 0.973], "code": [0.169, 0.376, 0.572, 0.659]}
COUNTS = {"math": 8421, "code": 580}  # builtin math_train + lcb_train


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def fit_offset(target: float, ds: list[float]) -> float:
    """``a`` with mean(sigmoid(a - d)) = target over the difficulties ``ds`` (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(sigmoid(mid - d) for d in ds) / len(ds) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def simulate(order: str, k: int, round_size: int, spread: float, scale: float, seed: int) -> dict[str, float]:
    """Samples drawn per model, as a share of the fixed protocol's k per problem."""
    rng = random.Random(seed)
    rules = bind(load_rules("paper"), {"policy": MODELS[0], "small": MODELS[0], "medium": MODELS[1],
                                       "large": MODELS[2], "strongest": MODELS[3]})
    problems = []
    for domain, n in COUNTS.items():
        ds = [rng.gauss(0.0, spread) for _ in range(max(1, int(n * scale)))]
        offsets = [fit_offset(t, ds) for t in TARGETS[domain]]
        problems += [(f"{domain}-{i}", domain, [sigmoid(a - d) for a in offsets]) for i, d in enumerate(ds)]
    drawn = {m: 0 for m in MODELS}
    ladder = MODELS if order == "weakest-first" else MODELS[::-1]
    for pid, domain, probs in problems:
        stats = {m: (0, 0) for m in MODELS}
        for m in ladder:
            p = probs[MODELS.index(m)]
            while stats[m][1] < k and m in needs_samples(rules, stats, MODELS, k, pid, domain):
                n = min(round_size, k - stats[m][1])
                wins = sum(rng.random() < p for _ in range(n))
                stats[m] = (stats[m][0] + wins, stats[m][1] + n)
                drawn[m] += n
    return {m: drawn[m] / (k * len(problems)) for m in MODELS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--round-size", type=int, default=4)
    ap.add_argument("--spread", type=float, default=2.5, help="std of the latent difficulty (logits)")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 9001 problems to simulate")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(f"k={a.k} round_size={a.round_size} spread={a.spread} problems={int(8421 * a.scale) + int(580 * a.scale)}")
    print("order            " + "  ".join(f"{m:>20}" for m in MODELS))
    for order in ("strongest-first", "weakest-first"):
        share = simulate(order, a.k, a.round_size, a.spread, a.scale, a.seed)
        print(f"{order:16} " + "  ".join(f"{share[m]:20.3f}" for m in MODELS))


if __name__ == "__main__":
    main()
