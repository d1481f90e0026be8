"""Benchmark: adaptive scoring (exact and statistical stopping) vs the paper's fixed protocol — tokens, same labels.

Ladder: the embedded SmolLM2-135M-Instruct at two temperatures, ``hot`` (T=1.0, the weak model)
and ``cold`` (T=0.3, the strong one), on the built-in ``demo_math`` problems with the demo's few-shot prompt, k=16 (the paper's), short
outputs.
Rules of the paper's shape: keep = strong > 0; L1 = weak in (0,1); L2 = (weak = 0 and strong > 0)
or both partial; L3 = strong = 0 plus 50% of the rest.

1. The anchor: the fixed protocol, k samples for every pair, with the real engine, all stored
   (``<run>/fixed.sqlite``; a second run of the benchmark resumes it and generates nothing new).
2. Ours: adaptive scoring on a fresh store, whose engine replays the fixed run's stored samples in
   index order (a pair's adaptive samples are indices 0..m-1 of its fixed samples, so both sides
   see the same samples and only the stopping differs). The replayed rows are checked against the
   fixed ones.
3. Labels: the fixed table labelled with ``label`` vs the adaptive table with ``decide`` over its
   bounds (every verdict must be decided) and with ``label`` over its point estimates.
4. The statistical rule (``scoring.stop: {rule: --rule, error: --error}``: ``bayes`` with the default
   prior, or ``joint`` with its prior fitted to a calibration share of the run) the same
   way, on the same replayed samples: tokens and the share of problems whose labels equal the fixed
   run's (goal: <= 0.40 of the tokens with >= 99% of the labels identical).
5. The same two rules on a larger simulated pool (``--sim-problems``, the paper's four-model ladder
   and ``paper`` rules) whose pass rates follow published histograms (``stagerl.scoring.simulate``:
   SwS, arXiv:2506.08989): samples drawn (each sample taken as the same number of tokens) and the
   share of labels equal to the k-sample labels.

    .venv/bin/python benchmarks/scoring.py    # 20 problems, k=16, max_tokens 64, rounds of 4, strongest first
    .venv/bin/python benchmarks/scoring.py --problems 300 --rule joint --round-size 1   # a pool the joint rule can fit
    .venv/bin/python benchmarks/scoring.py --sim-only --error 0.1    # the simulated pool alone (seconds)
    .venv/bin/python benchmarks/scoring.py --sim-only --rule joint --round-size 1    # the joint rule, rounds of 1
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pandas as pd

from stagerl.config import ModelRef, PromptConfig, SamplingConfig, ScoringConfig, StopConfig
from stagerl.engines.base import Completion
from stagerl.scoring import score
from stagerl.scoring.run import ORDERS
from stagerl.store import SampleStore

RULES = {  # the paper's shape over two aliases (format: stagerl.levels.rules)
    "models": {"weak": "weak", "strong": "strong"},
    "keep": "strong in (0,1]",
    "levels": {
        "L1": "weak in (0,1)",
        "L2": {"any": [{"all": ["weak in [0,0]", "strong in (0,1]"]},
                       {"all": ["weak in (0,1)", "strong in (0,1)"]}]},
        "L3": {"any": ["strong in [0,0]", {"all": ["strong in (0,1]", {"retain": {"math": 0.5, "code": 0.1}}]}]},
    },
}
BIND = {"weak": "hot", "strong": "cold"}


class ReplayEngine:
    """Serves a model's stored samples, for each prompt in index order (0, 1, 2, ...)."""

    name = "replay"

    def __init__(self, store: SampleStore, model: str, prompt_ids: dict[str, str]) -> None:
        self.rows: dict[str, list[dict]] = {}
        for r in store.samples(model=model):
            self.rows.setdefault(r["problem_id"], []).append(r)
        self.prompt_ids, self.next = prompt_ids, {pid: 0 for pid in self.rows}

    def generate(self, prompts, n=1, temperature=0.6, top_p=0.95, max_tokens=1024, seed=None, seeds=None):
        out = []
        for prompt in prompts:
            pid = self.prompt_ids[json.dumps(prompt)]
            start = self.next[pid]
            rows = self.rows[pid][start:start + n]
            assert [r["idx"] for r in rows] == list(range(start, start + n)), (pid, start, n)
            self.next[pid] = start + n
            out.append([Completion(r["text"], r["tokens"], r["finish"]) for r in rows])
        return out

    def close(self) -> None:
        pass


def labels_from_rates(rules, table: pd.DataFrame, point: bool) -> dict[str, dict]:
    """problem -> labels: ``label`` over pass rates (point) or ``decide`` over [rate_lo, rate_hi]."""
    from stagerl.levels.rules import decide, label

    out = {}
    for (pid, domain), g in table.groupby(["problem_id", "domain"], sort=False):
        if point:  # a pair that drew nothing: any rate in its bounds gives the same labels
            rates = {m: (r if not math.isnan(r) else lo) for m, r, lo in zip(g["model"], g["pass_rate"], g["rate_lo"])}
            out[pid] = label(rules, rates, pid, domain)
        else:
            out[pid] = decide(rules, {m: (lo, hi) for m, lo, hi in zip(g["model"], g["rate_lo"], g["rate_hi"])},
                              pid, domain)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--round-size", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--order", default="strongest-first", choices=ORDERS)
    ap.add_argument("--run", default="runs/bench-scoring")
    ap.add_argument("--error", type=float, default=0.01, help="budget of the statistical rule")
    ap.add_argument("--rule", default="bayes", choices=("bayes", "joint"),
                    help="the statistical rule: bayes (independent published prior) or joint (fitted to the run)")
    ap.add_argument("--sim-problems", type=int, default=2000, help="problems in the simulated pool (0: skip)")
    ap.add_argument("--sim-only", action="store_true", help="only the simulated pool (no model runs)")
    args = ap.parse_args()
    if args.sim_only:
        return simulated(args)

    from stagerl.data.generated import demo_math
    from stagerl.levels.rules import bind, load_rules

    problems = demo_math(args.problems, seed=0)  # its first 40 are the built-in demo_math set
    first = {}
    for p in problems:  # the replay engine tells problems apart by their prompt: keep one of each
        first.setdefault(p.prompt, p)
    if len(first) < len(problems):
        print(f"{len(problems) - len(first)} of {len(problems)} generated problems repeat an earlier prompt: dropped")
        problems = list(first.values())
    prompt = PromptConfig(fewshot=True)  # the demo's prompt: the 135M model keeps the format
    rules = bind(load_rules(RULES), BIND)
    ladder = [ModelRef(name="hot", model="smollm2-135m", temperature=1.0, options={"batch_size": args.batch_size}),
              ModelRef(name="cold", model="smollm2-135m", temperature=0.3, options={"batch_size": args.batch_size})]
    sampling = SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=0)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    fixed_store = SampleStore(run / "fixed.sqlite")
    fixed = score(problems, fixed_store, ScoringConfig(models=ladder, k=args.k, adaptive=False, sampling=sampling),
                  prompt=prompt, out_dir=run / "fixed")
    print(f"fixed: {fixed.attrs['generated']} samples generated now ({time.perf_counter() - t0:.0f} s), "
          f"{len(fixed_store)} stored")

    prompt_ids = {json.dumps(prompt.messages(p)): p.id for p in problems}
    results = {}
    arms = [(order, "exact") for order in ORDERS] + [(args.order, args.rule)]
    for order, rule in arms:
        name = f"adaptive-{order}" + ("" if rule == "exact" else f"-{rule}")
        path = run / f"{name}.sqlite"
        for f in run.glob(f"{name}.sqlite*"):
            f.unlink()
        store = SampleStore(path)
        cfg = ScoringConfig(models=ladder, k=args.k, adaptive=True, round_size=args.round_size, sampling=sampling,
                            order=order, stop=StopConfig(rule=rule, error=args.error))
        table = score(problems, store, cfg, rules=rules, prompt=prompt, progress=False,
                      engine_factory=lambda ref: ReplayEngine(fixed_store, ref.name, prompt_ids))
        replayed = {(r["problem_id"], r["model"], r["idx"]): r["text"] for r in store.samples()}
        originals = {(r["problem_id"], r["model"], r["idx"]): r["text"] for r in fixed_store.samples()}
        assert all(originals[key] == text for key, text in replayed.items()), "replay served other samples"
        tokens = sum(int(t) for _, _, t, _, _ in store.model_totals())
        results[(order, rule)] = (table, tokens, len(store))

    want = labels_from_rates(rules, fixed, point=True)
    kept = fixed_store.samples(problem_ids=[p.id for p in problems])  # the store may hold dropped problems too
    fixed_tokens, fixed_samples = sum(int(r["tokens"]) for r in kept), len(kept)
    print(f"problems {len(problems)}, k={args.k}, round_size={args.round_size}, max_tokens={args.max_tokens}")
    print("pass rates (fixed):", {m: round(float(g['pass_rate'].mean()), 3) for m, g in fixed.groupby('model')},
          "| problems with hot in (0,1):", int(((fixed.model == 'hot') & (fixed.pass_rate > 0) & (fixed.pass_rate < 1)).sum()),
          "| cold > 0:", int(((fixed.model == 'cold') & (fixed.pass_rate > 0)).sum()))
    print(f"{'protocol':<26}{'samples':>8}{'tokens':>8}{'ratio':>7}  labels (decide / label)")
    print(f"{'fixed':<26}{fixed_samples:>8}{fixed_tokens:>8}{1.0:>7.2f}")
    same = {}
    for (order, rule), (table, tokens, samples) in results.items():
        decided, point = labels_from_rates(rules, table, point=False), labels_from_rates(rules, table, point=True)
        same_d = sum(decided[p] == want[p] for p in want)
        same_p = sum(point[p] == want[p] for p in want)
        same[(order, rule)] = min(same_d, same_p) / len(want)
        label = f"{'adaptive' if rule == 'exact' else f'{rule} {args.error:g}'} {order}"
        print(f"{label:<26}{samples:>8}{tokens:>8}{tokens / fixed_tokens:>7.2f}  "
              f"{same_d}/{len(want)} / {same_p}/{len(want)}")
    _, tokens, _ = results[(args.order, "exact")]
    ratio = tokens / fixed_tokens
    ok = ratio <= 0.5 and same[(args.order, "exact")] == 1.0
    print(f"RESULT scoring_tokens ours={tokens} anchor={fixed_tokens} ratio={ratio:.3f} goal=<=0.5 "
          f"ok={'yes' if ok else 'no'}")
    _, tokens, _ = results[(args.order, args.rule)]
    ratio, share = tokens / fixed_tokens, same[(args.order, args.rule)]
    print(f"statistical rule ({args.rule}, budget {args.error:g}): labels identical {share:.1%} (side condition: >= 99%)")
    print(f"RESULT scoring_tokens_{args.rule} ours={tokens} anchor={fixed_tokens} ratio={ratio:.3f} goal=<=0.40 "
          f"ok={'yes' if ratio <= 0.40 and share >= 0.99 else 'no'}")
    if args.sim_problems:
        simulated(args)


def simulated(args: argparse.Namespace) -> None:
    """Both rules on the simulated pool (the paper's ladder and rules, published pass-rate histograms)."""
    from stagerl.config import PriorConfig
    from stagerl.levels.rules import bind, load_rules
    from stagerl.scoring.simulate import joint_stop_of, published_pool, simulate, stop_of

    ladder = ["small", "medium", "large", "strongest"]
    rules = bind(load_rules("paper"), {a: (a if a != "policy" else "small") for a in ["policy", *ladder]})
    pool = published_pool({"small": "sws-3b", "medium": "sws-7b", "large": "sws-32b", "strongest": "sws-32b"},
                          args.sim_problems, seed=0)
    order = ladder if args.order == "weakest-first" else ladder[::-1]
    exact = simulate(rules, pool, args.k, order=order, round_size=args.round_size, seed=0)
    stop = stop_of(args.error, PriorConfig()) if args.rule == "bayes" else joint_stop_of(args.error)
    stat = simulate(rules, pool, args.k, order=order, round_size=args.round_size, seed=0, stop=stop)
    print(f"simulated pool: {args.sim_problems} problems, paper rules, k={args.k}, rounds of {args.round_size}, "
          f"{args.order}; pass rates from "
          "SwS's published histograms (1.5B <- SwS-3B, 7B <- SwS-7B, 32B and R1 <- SwS-32B), one latent difficulty")
    for name, res in (("exact", exact), (f"{args.rule} {args.error:g}", stat)):
        print(f"  {name:<12} samples {res.samples:>7} of {res.fixed_samples} ({res.ratio:.3f}), "
              f"labels identical {res.share_same:.2%}, error spent per problem {res.spent / res.problems:.4f}")
    print(f"RESULT scoring_samples_{args.rule}_sim ours={stat.samples} anchor={stat.fixed_samples} ratio={stat.ratio:.3f} "
          f"goal=<=0.40 ok={'yes' if stat.ratio <= 0.40 and stat.share_same >= 0.99 else 'no'}")


if __name__ == "__main__":
    main()
