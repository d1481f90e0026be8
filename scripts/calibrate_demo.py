"""Calibration (not a speed benchmark): how often the embedded SmolLM2-135M-Instruct solves ``demo_math``.

The demo only works if the policy is *partly* right: level 1 of the recipe is "pass rate strictly
between 0 and 1". This script samples the model ``k`` times on the first ``n`` generated problems
with the math prompt of ``stagerl.data.prompts`` (answer in ``\\boxed{}``, after the worked
exchange ``FEWSHOT`` as the demo recipe's ``prompt.fewshot: true`` does), grades with the math
reward, and prints the pass rate per difficulty level and the share of problems with a pass rate
in (0, 1). It ends with one line

    CALIBRATION demo_math partial=<share in (0,1)> levels=<rate L1>/<rate L2>/... ok=<yes|no>

where ``ok`` means: at least a third of the problems are partial, and level 1 is solved more often
than level 5. Keep it short on a shared CPU (defaults: 30 problems x 4 samples x 128 tokens,
a few minutes on 2 cores):

    .venv/bin/python scripts/calibrate_demo.py
    .venv/bin/python scripts/calibrate_demo.py --n 15 --k 4 --temperature 1.0 --show 3
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from stagerl.data import load_builtin, to_messages
from stagerl.engines.hf import TransformersEngine
from stagerl.rewards import math_rewards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=30, help="problems (levels cycle 1..5)")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated problems and of sampling")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--no-fewshot", action="store_true", help="no worked exchange first (prompts.FEWSHOT)")
    ap.add_argument("--show", type=int, default=0, help="print this many sample responses per level")
    args = ap.parse_args()

    problems = load_builtin("demo_math", n=args.n, seed=args.seed)
    engine = TransformersEngine(args.model, progress=True)
    t0 = time.perf_counter()
    messages = [to_messages(p, fewshot=not args.no_fewshot) for p in problems]
    outs = engine.generate(messages, n=args.k, temperature=args.temperature,
                           top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed)
    seconds = time.perf_counter() - t0
    texts = [c.text for cs in outs for c in cs]
    golds = [p.answer for p in problems for _ in range(args.k)]
    rewards = math_rewards(texts, golds)
    tokens = sum(c.tokens for cs in outs for c in cs)
    truncated = sum(c.finish == "length" for cs in outs for c in cs)

    by_level: dict[int, list[float]] = defaultdict(list)
    shown: dict[int, int] = defaultdict(int)
    partial = 0
    for i, p in enumerate(problems):
        rs = rewards[i * args.k:(i + 1) * args.k]
        rate = sum(rs) / len(rs)
        by_level[p.meta["level"]].append(rate)
        partial += 0 < rate < 1
        if shown[p.meta["level"]] < args.show:
            shown[p.meta["level"]] += 1
            print(f"--- L{p.meta['level']} {p.prompt!r} gold={p.answer} rate={rate:.2f}\n{outs[i][0].text}\n")

    print(f"{args.model}: {len(problems)} problems x {args.k} samples, T={args.temperature}, "
          f"fewshot={not args.no_fewshot}, "
          f"max_tokens={args.max_tokens}; {tokens} tokens in {seconds:.0f} s, {truncated} truncated")
    print("level  problems  pass rate  partial (0<r<1)  never  always")
    rates = {}
    for level in sorted(by_level):
        rs = by_level[level]
        rates[level] = sum(rs) / len(rs)
        print(f"L{level:<5} {len(rs):>8}  {rates[level]:>9.2f}  {sum(0 < r < 1 for r in rs):>15}  "
              f"{sum(r == 0 for r in rs):>5}  {sum(r == 1 for r in rs):>6}")
    share = partial / len(problems)
    ok = share >= 1 / 3 and rates.get(1, 0) > rates.get(max(rates), 0)
    print(f"CALIBRATION demo_math partial={share:.2f} levels={'/'.join(f'{rates[lv]:.2f}' for lv in sorted(rates))} "
          f"ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
