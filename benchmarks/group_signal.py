"""Benchmark: generated tokens per group that carries signal — online filtering vs plain TRL GRPO.

Both arms train the embedded SmolLM2-135M-Instruct from the same start on the same problems
(``demo_math`` + ``demo_code``, the demo's few-shot prompt), for the same steps and prompts per step,
through ``stagerl.train.train_stages`` (TRL's ``GRPOTrainer``, or ``OnlineGRPOTrainer`` for ours).
A group *carries signal* when its rewards are not all equal (GRPO's advantage is zero otherwise).

* anchor: plain GRPO. Tokens = Σ_steps mean completion length × prompts × G; useful groups =
  Σ_steps (1 − ``frac_reward_zero_std``) × prompts.
* ours (each setting in ``--settings``): tokens = Σ_steps mean completion length (over every
  completion generated that step, all rounds) × ``groups_generated`` × G; useful groups =
  Σ ``groups_signal`` (trained groups with signal); the share of our trained groups carrying
  signal must be ≥ 90%.

``--seed-k K``: before training, the pool is scored with the policy itself, K samples per problem at
the stage's temperature and length, into the run's ``samples.sqlite`` (what the pipeline's scoring
step holds when the policy is one of the scored models); ours then seeds its pass-rate estimates
from it (``online.seed_decay``, ``train/online_prior.py``). Those scoring tokens are the run's
scoring cost, paid whether or not training reads them: printed, not counted in either arm.

The RESULT line reports the best setting (lowest tokens per useful group among those reaching 90%;
else the lowest overall); every setting is printed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/group_signal.py    # 6 math problems, 6 steps × 2 prompts × G=4, 40 tokens
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from stagerl.config import OnlineConfig, PromptConfig, StageConfig
from stagerl.data.generated import demo_code, demo_math
from stagerl.models import resolve_model
from stagerl.train import train_stages

EASIEST_CODE = (0, 4, 5, 2, 1, 3, 6, 7)
"""demo_code problems in the order the pool takes them: sum-two, add, is-even, reverse-word, then the rest."""
SETTINGS = {
    "dynamic": OnlineConfig(dynamic_sampling=True, max_extra_rounds=3),
    "skip": OnlineConfig(dynamic_sampling=False, predictive_skip=True),
    "dynamic+skip": OnlineConfig(dynamic_sampling=True, max_extra_rounds=3, predictive_skip=True),
}


def stage(name: str, args: argparse.Namespace, online: OnlineConfig | None) -> StageConfig:
    return StageConfig(name=name, levels=["pool"], learning_rate=args.lr, num_generations=args.G,
                       prompts_per_step=args.prompts, beta=0.0, entropy_coef=0.0,
                       max_completion_length=args.max_tokens, temperature=0.8, max_steps=args.steps, plateau=None,
                       math_code_ratio=args.ratio if args.code else None, seed=args.seed, online=online)


def measure(rows: list[dict], prompts: int, G: int, online: bool) -> dict:
    tokens = useful = groups = 0.0
    for r in rows:
        generated = r["groups_generated"] if online else prompts
        tokens += r["completion_length"] * generated * G
        useful += r["groups_signal"] if online else (1.0 - r["frac_reward_zero_std"]) * prompts
        groups += prompts
    return {"tokens": round(tokens), "useful_groups": round(useful, 2), "trained_groups": int(groups),
            "signal_share": round(useful / groups, 3), "tokens_per_useful_group": round(tokens / max(useful, 1e-9), 1),
            "generated_groups": int(sum(r.get("groups_generated", prompts) for r in rows)),
            "skipped_groups": int(sum(r.get("groups_skipped", 0) for r in rows)),
            **{k: int(sum(r.get(f"groups_{k}", 0) or 0 for r in rows))
               for k in ("skipped_seeded", "explored", "explored_signal")},
            "seconds": rows[-1]["seconds"] if rows else 0.0}


def seed_store(args: argparse.Namespace, problems: list, policy: str, messages, out: Path) -> Path:
    """The pool scored with the policy (``--seed-k`` samples each, no early stop) in ``out/scoring``."""
    from stagerl.config import ModelRef, SamplingConfig, ScoringConfig
    from stagerl.scoring import score
    from stagerl.store import SampleStore

    path = out / "scoring" / "samples.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    config = ScoringConfig(models=[ModelRef(name="policy", model=str(policy), engine="transformers")], k=args.seed_k,
                           adaptive=False, sampling=SamplingConfig(temperature=0.8, max_tokens=args.max_tokens,
                                                                   seed=args.seed))
    with SampleStore(path) as store:
        table = score(problems, store, config, prompt=PromptConfig(fewshot=True), progress=False)
        tokens = sum(t for _, _, t, _, _ in store.model_totals())
    print(f"scoring (seeds): {len(problems)} problems × {args.seed_k} samples, {tokens} tokens (the run's scoring "
          f"cost, not counted), {time.time() - t0:.0f} s; pass rates {[round(x, 2) for x in table['pass_rate']]}",
          flush=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--math", type=int, default=6, help="demo_math problems in the pool")
    ap.add_argument("--code", type=int, default=0, help="demo_code problems in the pool (at most 8)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--G", type=int, default=4, help="group size (num_generations)")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--ratio", type=float, default=3.0, help="math:code prompts per batch (with --code)")
    ap.add_argument("--lr", type=float, default=5e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", default="dynamic+skip", help=f"comma-separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--seed-k", type=int, default=0, help="score the pool with the policy first (K samples each) "
                    "and seed ours from it (0: no seeding store)")
    ap.add_argument("--only", choices=("anchor", "ours"), default=None,
                    help="run one arm and keep its figures in --out (two such processes can run side by side); "
                         "a later run with the same --out reuses the arms already measured there")
    ap.add_argument("--out", default=None, help="keep the run folders here (default: a temp folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    code = demo_code(seed=0)
    problems = demo_math(n=args.math, seed=0) + [code[i] for i in EASIEST_CODE][:args.code]
    messages = PromptConfig(fewshot=True).messages
    policy = resolve_model("smollm2-135m")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="signal-"))
    print(f"pool: {args.math} math + {args.code} code; {args.steps} steps × {args.prompts} prompts × G={args.G}, "
          f"{args.max_tokens} tokens; runs in {out}", flush=True)

    store = seed_store(args, problems, policy, messages, out) if args.seed_k and args.only != "anchor" else None

    def run(name: str, online: OnlineConfig | None) -> dict:
        kept = out / f"{name}.json"
        if kept.is_file() and json.loads(kept.read_text())["args"] == vars(args) | {"only": None}:
            m = json.loads(kept.read_text())["measure"]
            print(f"{name} (measured before, {kept}): {json.dumps(m)}", flush=True)
            return m
        t0 = time.time()
        if store is not None:
            (out / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(store, out / name / "samples.sqlite")
        [info] = train_stages(policy, {"pool": problems}, [stage(name, args, online)], out / name, messages=messages)
        rows = [json.loads(x) for x in (out / name / "stages" / f"1_{name}" / "metrics.jsonl").read_text().splitlines()]
        m = measure(rows, args.prompts, args.G, online is not None)
        m["wall_s"] = round(time.time() - t0, 1)
        print(f"{name}: {json.dumps(m)}", flush=True)
        kept.write_text(json.dumps({"args": vars(args) | {"only": None}, "measure": m}))
        return m

    if args.only == "ours":
        [run(name.replace("+", "_"), SETTINGS[name]) for name in args.settings.split(",")]
        return
    anchor = run("anchor", None)
    if args.only == "anchor":
        return
    ours = {name: run(name.replace("+", "_"), SETTINGS[name]) for name in args.settings.split(",")}
    ok_share = {n: m for n, m in ours.items() if m["signal_share"] >= 0.9}
    best_name, best = min((ok_share or ours).items(), key=lambda kv: kv[1]["tokens_per_useful_group"])
    ratio = best["tokens_per_useful_group"] / anchor["tokens_per_useful_group"]
    ok = ratio <= 0.6 and best["signal_share"] >= 0.9
    print(f"best setting: {best_name} (signal share {best['signal_share']}, anchor's {anchor['signal_share']})")
    print(f"RESULT signal_tokens_per_useful_group ours={best['tokens_per_useful_group']} "
          f"anchor={anchor['tokens_per_useful_group']} ratio={ratio:.3f} goal=<=0.6 ok={'yes' if ok else 'no'}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
