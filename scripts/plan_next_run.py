"""Plan of the next experiments run (docs/next-run.md) from the pilot of ``scripts/pilot_families.py``.

Reads the pilot's per-problem rows (``--json`` files) and the experiment recipes, and prints: the
projected size of every level each arm trains on (the one-model bands of levels-one-model.yaml applied
to the pilot's k-sample rates, scaled to the recipe's problem counts), the truncated share at the
stage limits, the minimum detectable paired difference of the held-out sets (experiments/power.py),
and the wall time of one seed of all arms from the measured seconds per sample and per training step.

    python scripts/plan_next_run.py --math /tmp/chain.json --code /tmp/code.json --s-per-sample 1.2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import yaml

EXP = Path(__file__).resolve().parents[1] / "experiments"
spec = importlib.util.spec_from_file_location("experiments_power", EXP / "power.py")
power = importlib.util.module_from_spec(spec)
spec.loader.exec_module(power)

BANDS = {"L1": (0, 1), "L2": (0, 0.5), "L3": (0, 0.25)}   # (lo, hi]: lo excluded; L1's hi excluded


def rates(rows: list[dict], limit: int) -> list[float]:
    return [sum(r == 1.0 and t <= limit for r, t in zip(row["rewards"], row["tokens"])) / len(row["rewards"]) for row in rows]


def in_band(x: float, level: str) -> bool:
    lo, hi = BANDS[level]
    return lo < x < 1 if level == "L1" else lo < x <= hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--math", required=True)
    ap.add_argument("--code", required=True)
    ap.add_argument("--score-limit", type=int, default=160, help="the scoring max_tokens of the recipes")
    ap.add_argument("--s-per-sample", type=float, required=True, help="measured generation seconds per sample")
    ap.add_argument("--s-per-step", type=float, default=100.0, help="seconds per training step (16 completions)")
    ap.add_argument("--plan-sd", type=float, default=0.27, help="per-problem sd of a between-arm difference")
    args = ap.parse_args()
    math_rows, code_rows = json.loads(Path(args.math).read_text()), json.loads(Path(args.code).read_text())
    recipe = yaml.safe_load((EXP / "staging-staged.yaml").read_text())
    n = {src["builtin"]: src["n"] for src in recipe["data"]}
    mr, cr = rates(math_rows, args.score_limit), rates(code_rows, args.score_limit)
    print(f"pilot: math {len(math_rows)} problems x {len(math_rows[0]['rewards'])}, code {len(code_rows)} x "
          f"{len(code_rows[0]['rewards'])}; scored at {args.score_limit} tokens")
    for name, rs, total in (("math (chain_math)", mr, n["chain_math"]), ("code (gen_code)", cr, n["gen_code"])):
        for lv in BANDS:
            share = sum(in_band(x, lv) for x in rs) / len(rs)
            print(f"  {name} {lv}: share {share:.3f} -> about {share * total:.0f} of {total} problems")
    l2 = [row for row, x in zip(math_rows, mr) if in_band(x, "L2")]
    toks = [t for row in l2 for t in row["tokens"]]
    for i, st in enumerate(recipe["train"]["stages"]):  # claim B's stage limits
        lim = st["max_completion_length"]
        print(f"  {st['name']} limit {lim}: truncated share of the pilot's L2-band math answers "
              f"{sum(t > lim for t in toks) / max(1, len(toks)):.3f}" + (" (issue 24: > 0.20)" if i == 0 else ""))
    bench = {b["name"]: b for b in recipe["eval"]["benchmarks"]}
    for name, rs in (("heldout_math", mr), ("heldout_code", cr)):
        b = bench[name]
        sd_noise = power.sampling_sd(rs, b["k"])
        sd = max(args.plan_sd, sd_noise)
        print(f"  {name}: n={b['source']['n']} k={b['k']}: sampling-noise sd {sd_noise:.3f}, planning sd {sd:.3f} -> "
              f"MDD {power.mdd(sd, b['source']['n']):.3f}; problems for MDD 0.05: {power.problems_needed(sd, 0.05)}")
    # wall time of one seed (one thread; sequential)
    k = recipe["scoring"]["k"]
    score_samples = 0.8 * k * (n["chain_math"] + n["gen_code"])     # adaptive scoring drew ~0.8 of k before
    eval_samples = sum(b["source"]["n"] * b["k"] for b in bench.values())
    stages = {a: yaml.safe_load((EXP / f"{a}.yaml").read_text())["train"]["stages"] for a in
              ("difficulty-L1", "difficulty-L2", "difficulty-L3", "staging-staged", "staging-single", "staging-long", "mixing-mixed")}
    total_steps = yaml.safe_load((EXP / "experiments.yaml").read_text())["experiments"]["staging"]["total_steps"]
    s = args.s_per_sample
    minutes = {"shared (scoring + base eval)": (score_samples + eval_samples) * s / 60}
    for arm, st in stages.items():
        steps = total_steps if len(st) > 1 else st[0]["max_steps"]
        dev = sum((steps if len(st) == 1 else steps / 2) // x["eval_every"] * x["dev"]["source"]["n"] * x["dev_k"] for x in st)
        minutes[arm] = (steps * args.s_per_step + dev * s + len(st) * eval_samples * s) / 60
    for k_, v in minutes.items():
        print(f"  {k_}: {v:.0f} min")
    tot = sum(minutes.values())
    print(f"PLAN one seed of all arms: {tot / 60:.1f} h on one thread in sequence; about {tot / 120:.1f} h as two "
          f"processes side by side on 2 cores; three seeds about {3 * tot / 120:.1f} h")


if __name__ == "__main__":
    main()
