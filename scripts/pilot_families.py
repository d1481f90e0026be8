"""Pilot (not a benchmark): pass-rate spread and truncation of the generated families for issue #24.

Samples the embedded SmolLM2-135M-Instruct (or ``--model``) ``k`` times on the first ``n`` problems of a family (the
experiments' prompt: worked exchange first, T=0.8), at one generous limit ``--max-tokens``; a sample
whose full completion is longer than a limit L would have been truncated at L, so one run gives the
truncated share (and the pass rate counting such samples as failed) at every limit in ``--limits``.
Prints one line per limit and ends with

    PILOT <family> n=<n> k=<k> partial=<share of problems with rate in (0,1)> ... s_per_sample=<x>

    OMP_NUM_THREADS=1 python scripts/pilot_families.py chain_math --n 60 --k 4 --limits 64 96
    python scripts/pilot_families.py chain_math --n 200 --engine vllm      # vLLM's CPU build (the vllm extra)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

from stagerl.data import load_builtin, to_messages
from stagerl.engines import make_engine
from stagerl.rewards import code_rewards, math_rewards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("family")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--limits", type=int, nargs="+", default=[64, 96])
    ap.add_argument("--json", help="write per-problem rows here")
    ap.add_argument("--engine", default="transformers", choices=("transformers", "vllm"))
    ap.add_argument("--model", default="smollm2-135m", help="an embedded alias or a checkpoint folder")
    args = ap.parse_args()

    problems = load_builtin(args.family, n=args.n, seed=args.seed)
    with make_engine(args.engine, args.model) as engine:
        t0 = time.perf_counter()  # after the engine is up: vLLM's start-up (about a minute) is not timed
        outs = engine.generate([to_messages(p, fewshot=True) for p in problems], n=args.k, temperature=args.temperature,
                               top_p=0.95, max_tokens=args.max_tokens, seed=args.seed)
        gen_s = time.perf_counter() - t0
    texts = [c.text for cs in outs for c in cs]
    if problems[0].domain == "math":
        rewards = math_rewards(texts, [p.answer for p in problems for _ in range(args.k)])
    else:
        rewards = code_rewards(texts, [p.tests for p in problems for _ in range(args.k)], workers=1)
    toks = [c.tokens if c.finish == "stop" else 10**9 for cs in outs for c in cs]
    rows = []
    for i, p in enumerate(problems):
        sl = slice(i * args.k, (i + 1) * args.k)
        rows.append({"id": p.id, "level": p.meta.get("level"), "rewards": rewards[sl], "tokens": toks[sl]})
    limits = sorted(set(args.limits + [args.max_tokens]))
    for lim in limits:
        rates = [sum(r == 1.0 and t <= lim for r, t in zip(row["rewards"], row["tokens"])) / args.k for row in rows]
        trunc = sum(t > lim for t in toks) / len(toks)
        partial = sum(0 < x < 1 for x in rates) / len(rates)
        by = defaultdict(list)
        for row, x in zip(rows, rates):
            by[row["level"]].append(x)
        lv = " ".join(f"L{k}:{sum(v) / len(v):.2f}/{sum(0 < x < 1 for x in v)}of{len(v)}" for k, v in sorted(by.items()))
        print(f"limit={lim}: truncated={trunc:.3f} mean_rate={sum(rates) / len(rates):.3f} partial={partial:.3f} "
              f"never={sum(x == 0 for x in rates) / len(rates):.3f} always={sum(x == 1 for x in rates) / len(rates):.3f} "
              f"by level (mean/partial): {lv}")
    done = [t for t in toks if t < 10**9]
    n_tok = sum(c.tokens for cs in outs for c in cs)
    print(f"PILOT {args.family} model={args.model} engine={args.engine} n={args.n} k={args.k} gen_s={gen_s:.0f} s_per_sample={gen_s / len(toks):.2f} "
          f"tokens={n_tok} tok_per_s={n_tok / gen_s:.1f} median_finished_len={sorted(done)[len(done) // 2] if done else '-'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f)


if __name__ == "__main__":
    main()
