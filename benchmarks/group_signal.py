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
the stage's temperature and length and with the top-p TRL trains with (1.0; 0.95, the scoring
default, before the sixth session), into the run's ``samples.sqlite`` (what the pipeline's scoring
step holds when the policy is one of the scored models); ours then seeds its pass-rate estimates
from it (``online.seed_decay``, ``train/online_prior.py``). Those scoring tokens are the run's
scoring cost, paid whether or not training reads them: printed, not counted in either arm.

``--seeds 0,1,2``: one whole run per seed ``s`` (both arms, in ``--out``/seed<s>). The seed sets the
pool (``demo_math(n, seed=s)``: the ``--math`` problems cycle through levels 1-5), the batch order,
TRL's sampling, the scoring samples and the online filter's draws (``online.seed``). Every seed's
figures are printed (none is dropped), with the mean ± 95% Student-t interval and the min-max of the
per-seed ratios. **The rule for ``ok``:** pooled over the seeds (Σ tokens / Σ useful groups, per
arm) ours ≤ 0.6 × the anchor, and Σ our trained groups with signal / Σ our trained groups ≥ 0.9.
With several settings (``--settings``, each a name of ``SETTINGS`` with optional ``@key=value``
overrides, e.g. ``dynamic+skip@seed_decay=0.97``; all share one anchor per seed), the RESULT line
reports the best one on that pooled figure (lowest ratio among those reaching 90%; else the lowest
overall): a choice made on the reported seeds, so say so when more than one setting ran; every
setting is printed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/group_signal.py    # 6 math problems, 6 steps × 2 prompts × G=4, 40 tokens
    ... --math 40 --steps 20 --seed-k 8 --seeds 0,1,2 --out /tmp/signal --only anchor   # arms side by side,
    ... --math 40 --steps 20 --seed-k 8 --seeds 0,1,2 --out /tmp/signal --only ours     # then without --only
    ... --only scoring    # only the seeds' scoring store, so that a later --only ours starts training at once
    ... --only report     # only the report, from arms measured before: e.g. --out docs/results/group_signal_k16,
                          # the measurements and per-step metrics of runs recorded in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch

from stagerl.config import OnlineConfig, PromptConfig, StageConfig
from stagerl.config.online import online_field
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
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)
"""Student t 0.975 quantiles for 1..15 degrees of freedom (1.96 beyond)."""
TRAIN_TOP_P = 1.0
"""The nucleus threshold TRL's ``GRPOTrainer`` samples training groups with (``GRPOConfig.top_p``'s default,
which ``train/grpo.py`` leaves): the seeds are scored with it so they measure the sampler that trains."""
TUNABLE = ("skip_threshold", "skip_per_sample", "explore", "explore_refills", "decay", "seed_decay", "seed_drift", "seed_sharpen",
           "pooled_prior", "max_extra_rounds")


def stage(name: str, args: argparse.Namespace, online: OnlineConfig | None, seed: int) -> StageConfig:
    return StageConfig(name=name, levels=["pool"], learning_rate=args.lr, num_generations=args.G,
                       prompts_per_step=args.prompts, beta=0.0, entropy_coef=0.0,
                       max_completion_length=args.max_tokens, temperature=0.8, max_steps=args.steps, plateau=None,
                       math_code_ratio=args.ratio if args.code else None, seed=seed, online=online,
                       checkpoint_every=args.checkpoint_every,
                       trl={"per_device_train_batch_size": args.pass_size} if args.pass_size else {})


def setting(spec: str, seed: int) -> OnlineConfig:
    """The setting ``spec``: a name of ``SETTINGS``, then any ``@key=value`` overrides of ``TUNABLE``
    (``dynamic+skip@seed_decay=0.97@explore=0.05``), with the run's seed."""
    name, *over = spec.split("@")
    parts = [o.partition("=") for o in over]
    kv = {k: v for k, _, v in parts}
    if name not in SETTINGS or not set(kv) <= set(TUNABLE) or not all(eq for _, eq, _ in parts):
        raise SystemExit(f"bad setting {spec!r}: a name of {', '.join(SETTINGS)}, then @key=value of {', '.join(TUNABLE)}")
    return dataclasses.replace(SETTINGS[name], seed=seed, **{k: online_field(k, v) for k, v in kv.items()})


def folder_name(spec: str) -> str:
    return spec.replace("+", "_").replace("@", "_").replace("=", "").replace(".", "")


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


def interval(xs: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% Student-t interval (None for a single value)."""
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return mean, (T975[n - 2] if n - 1 <= len(T975) else 1.96) * sd / math.sqrt(n)


def pooled(ms: list[dict]) -> dict:
    """Σ over seeds of one arm's tokens, useful and trained groups."""
    tokens, useful, groups = (sum(m[k] for m in ms) for k in ("tokens", "useful_groups", "trained_groups"))
    return {"tokens": tokens, "useful_groups": round(useful, 2), "trained_groups": groups,
            "signal_share": round(useful / groups, 3), "tokens_per_useful_group": round(tokens / max(useful, 1e-9), 1)}


def resumes(folder: Path, record: dict) -> bool:
    """True when ``folder`` holds work begun with ``record`` (its ``started.json``), to resume; else the
    folder is emptied and False returned (the caller sets it up, then calls ``mark_started``)."""
    started = folder / "started.json"
    if started.is_file() and json.loads(started.read_text()) == record:
        return True
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return False


def mark_started(folder: Path, record: dict) -> None:
    (folder / "started.json").write_text(json.dumps(record))


def arm_rows(folder: Path, arm: str) -> list[dict]:
    """The per-step rows (its stage's metrics.jsonl) of the arm run in ``folder / arm``."""
    return [json.loads(x) for x in (folder / arm / "stages" / f"1_{arm}" / "metrics.jsonl").read_text().splitlines()]


def seed_store(args: argparse.Namespace, problems: list, policy: str, seed: int, folder: Path) -> Path:
    """The pool scored with the policy (``--seed-k`` samples each, no early stop) in ``folder/scoring``
    (reused when a run with the same pool, K, length and seed made it; a scoring killed midway resumes
    from its store, whose per-sample seeds draw what it would have drawn)."""
    from stagerl.config import ModelRef, SamplingConfig, ScoringConfig
    from stagerl.scoring import score
    from stagerl.store import SampleStore

    path, done = folder / "scoring" / "samples.sqlite", folder / "scoring" / "done.json"
    key = {k: getattr(args, k) for k in ("math", "code", "seed_k", "max_tokens")} | {"seed": seed, "top_p": TRAIN_TOP_P}
    if done.is_file() and json.loads(done.read_text())["key"] == key:
        print(f"  scoring (seeds, made before): {json.loads(done.read_text())['report']}", flush=True)
        return path
    if resumes(path.parent, {"key": key}):
        print(f"  scoring (seeds): resuming the store in {path.parent}", flush=True)
    else:
        mark_started(path.parent, {"key": key})
    t0 = time.time()
    config = ScoringConfig(models=[ModelRef(name="policy", model=str(policy), engine="transformers")], k=args.seed_k,
                           adaptive=False, sampling=SamplingConfig(temperature=0.8, top_p=TRAIN_TOP_P,
                                                                   max_tokens=args.max_tokens, seed=seed))
    with SampleStore(path) as store:
        table = score(problems, store, config, prompt=PromptConfig(fewshot=True), progress=False)
        tokens = sum(t for _, _, t, _, _ in store.model_totals())
    rates = [round(x, 2) for x in table["pass_rate"]]
    report = (f"{len(problems)} problems × {args.seed_k} samples, {tokens} tokens (the run's scoring cost, not "
              f"counted), {time.time() - t0:.0f} s; {sum(0 < x < 1 for x in rates)} in (0, 1); pass rates {rates}")
    done.write_text(json.dumps({"key": key, "report": report}))
    print(f"  scoring (seeds): {report}", flush=True)
    return path


def run_seed(args: argparse.Namespace, seed: int, policy: str, messages, out: Path) -> dict[str, dict]:
    """Both arms (or ``--only`` one) of the run with seed ``seed``; name -> measure."""
    code = demo_code(seed=0)
    problems = demo_math(n=args.math, seed=seed) + [code[i] for i in EASIEST_CODE][:args.code]
    folder = out / f"seed{seed}"
    key = {k: v for k, v in vars(args).items() if k not in ("only", "seeds", "out", "settings", "checkpoint_every")
           and not (k == "pass_size" and v is None)}  # runs kept before --pass-size existed stay valid
    key |= {"seed": seed}
    store: list[Path] = []

    def run(name: str, online: OnlineConfig | None) -> dict:
        kept = folder / f"{name}.json"
        if kept.is_file() and json.loads(kept.read_text())["args"] == key:
            m = json.loads(kept.read_text())["measure"]
            print(f"  {name} (measured before, {kept}): {json.dumps(m)}", flush=True)
            return m
        if args.only == "report":
            why = "measured with other arguments" if kept.is_file() else "missing"
            raise SystemExit(f"--only report: {kept} is {why} (this command's arguments: {json.dumps(key)}); "
                             f"run the arm first, or give the arguments it was measured with")
        t0 = time.time()
        record = {"args": key, "online": repr(online)}
        if resumes(folder / name, record):  # a run killed midway resumes from its last checkpoint
            print(f"  {name}: resuming the run in {folder / name}", flush=True)
        else:
            if online is not None and args.seed_k:
                store[:] = store or [seed_store(args, problems, policy, seed, folder)]
                shutil.copy(store[0], folder / name / "samples.sqlite")
            mark_started(folder / name, record)
        [info] = train_stages(policy, {"pool": problems}, [stage(name, args, online, seed)], folder / name,
                              messages=messages)
        m = measure(arm_rows(folder, name), args.prompts, args.G, online is not None)
        m["wall_s"] = round(time.time() - t0, 1)
        print(f"  {name}: {json.dumps(m)}", flush=True)
        kept.write_text(json.dumps({"args": key, "measure": m}))
        return m

    if args.only == "scoring":
        seed_store(args, problems, policy, seed, folder)
        return {}
    arms = {} if args.only == "ours" else {"anchor": run("anchor", None)}
    if args.only != "anchor":
        arms |= {n: run(folder_name(n), setting(n, seed)) for n in args.settings.split(",")}
    return arms


def late_half(args: argparse.Namespace, out: Path, seeds: list[int], name: str) -> tuple[dict, int]:
    """One arm's figures pooled over the seeds, from the second half of its steps only (read from each
    run's metrics.jsonl), and the first step counted: a ratio met only in the first steps is an artefact
    of them (the seeds are freshest there)."""
    folder = "anchor" if name == "anchor" else folder_name(name)
    start = args.steps // 2
    ms = []
    for s in seeds:
        rows = [r for r in arm_rows(out / f"seed{s}", folder) if r["step"] > start]
        ms.append(measure(rows, args.prompts, args.G, name != "anchor"))
    return pooled(ms), start + 1


def report(args: argparse.Namespace, seeds: list[int], runs: dict[int, dict[str, dict]], out: Path) -> None:
    """Per-seed table, pooled figures and interval for each setting, the second half's ratio; the RESULT line."""
    anchors = [runs[s]["anchor"] for s in seeds]
    anchor = pooled(anchors)
    print(f"anchor pooled over {len(seeds)} seed(s): {json.dumps(anchor)}")
    late_anchor, first = late_half(args, out, seeds, "anchor")
    summary = {}
    for name in args.settings.split(","):
        ours = [runs[s][name] for s in seeds]
        ratios = [o["tokens_per_useful_group"] / a["tokens_per_useful_group"] for o, a in zip(ours, anchors)]
        print(f"\n{name}: {setting(name, 0)} (online.seed: the run seed)")
        print("| seed | anchor tokens | anchor useful/trained | anchor tok/useful | ours tokens | ours generated "
              "| skipped (seeded) | explored (signal) | ours useful/trained | ours tok/useful | ratio |")
        for s, a, o, r in zip(seeds, anchors, ours, ratios):
            print(f"| {s} | {a['tokens']} | {a['useful_groups']:g}/{a['trained_groups']} | {a['tokens_per_useful_group']} "
                  f"| {o['tokens']} | {o['generated_groups']} | {o['skipped_groups']} ({o['skipped_seeded']}) "
                  f"| {o['explored']} ({o['explored_signal']}) | {o['useful_groups']:g}/{o['trained_groups']} "
                  f"| {o['tokens_per_useful_group']} | {r:.3f} |")
        p = pooled(ours)
        mean, half = interval(ratios)
        ci = f"{mean:.3f} ± {half:.3f} (95% t, n={len(ratios)})" if half is not None else f"{mean:.3f} (n=1)"
        ratio = p["tokens_per_useful_group"] / anchor["tokens_per_useful_group"]
        late, _ = late_half(args, out, seeds, name)
        late_ratio = late["tokens_per_useful_group"] / late_anchor["tokens_per_useful_group"]
        summary[name] = (ratio, p, ci, ratios, late_ratio)
        print(f"pooled: ours {p['tokens_per_useful_group']} vs anchor {anchor['tokens_per_useful_group']} tokens per "
              f"useful group, ratio {ratio:.3f}; signal share {p['signal_share']} (anchor {anchor['signal_share']}); "
              f"per-seed ratio mean {ci}, min-max {min(ratios):.3f}-{max(ratios):.3f}; "
              f"seeds meeting both goals {sum(r <= 0.6 and o['signal_share'] >= 0.9 for r, o in zip(ratios, ours))}"
              f"/{len(seeds)}")
        print(f"steps {first}-{args.steps} only, pooled: ours {late['tokens_per_useful_group']} vs anchor "
              f"{late_anchor['tokens_per_useful_group']} tokens per useful group, ratio {late_ratio:.3f}; signal share "
              f"{late['signal_share']} (anchor {late_anchor['signal_share']})")
    ok_share = {n: v for n, v in summary.items() if v[1]["signal_share"] >= 0.9}
    best, (ratio, p, ci, ratios, late_ratio) = min((ok_share or summary).items(), key=lambda kv: kv[1][0])
    ok = ratio <= 0.6 and p["signal_share"] >= 0.9
    print(f"\nbest setting: {best}; steps {args.steps}, seeds {','.join(map(str, seeds))}")
    print(f"RESULT signal_tokens_per_useful_group ours={p['tokens_per_useful_group']} "
          f"anchor={anchor['tokens_per_useful_group']} ratio={ratio:.3f} share={p['signal_share']} "
          f"seed_ratios={','.join(f'{r:.3f}' for r in ratios)} mean={ci.split(' (')[0].replace(' ', '')} "
          f"late_ratio={late_ratio:.3f} "
          f"goal=<=0.6,share>=0.9 ok={'yes' if ok else 'no'}")


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
    ap.add_argument("--seeds", default="0", help="comma-separated run seeds (pool, order, sampling, online draws)")
    ap.add_argument("--settings", default="dynamic+skip",
                    help=f"comma-separated, each a name of {', '.join(SETTINGS)} with optional @key=value "
                         f"overrides of {', '.join(TUNABLE)} (e.g. dynamic+skip@seed_decay=0.97)")
    ap.add_argument("--seed-k", type=int, default=0, help="score the pool with the policy first (K samples each) "
                    "and seed ours from it (0: no seeding store)")
    ap.add_argument("--only", choices=("anchor", "ours", "scoring", "report"), default=None,
                    help="run one arm and keep its figures in --out (two such processes can run side by side); "
                         "a later run with the same --out reuses the arms already measured there; 'scoring': "
                         "only score the pool for the seeds (--seed-k), so ours can start from it later; "
                         "'report': only the report, from arms measured before (an error names any arm not measured)")
    ap.add_argument("--out", default=None, help="keep the run folders here (default: a temp folder)")
    ap.add_argument("--pass-size", type=int, default=None,
                    help="completions per forward/backward pass (trl.per_device_train_batch_size; default: a step's "
                         "prompts x G in one pass). Memory only: one generation round per step either way; "
                         "G=8 with 2 prompts in one pass peaks near 12 GB")
    ap.add_argument("--checkpoint-every", type=int, default=5,
                    help="steps between checkpoints: an arm killed midway (say by the OOM killer) resumes from its "
                         "last one when the same command runs again with the same --out (figures unchanged)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.only == "report" and not args.out:
        ap.error("--only report reads the arms measured in --out: give --out")
    seeds = [int(s) for s in args.seeds.split(",")]
    [setting(spec, 0) for spec in args.settings.split(",")]  # a bad spec fails before any run
    messages = PromptConfig(fewshot=True).messages
    policy = None if args.only == "report" else resolve_model("smollm2-135m")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="signal-"))
    print(f"pool: {args.math} math + {args.code} code; {args.steps} steps × {args.prompts} prompts × G={args.G}, "
          f"{args.max_tokens} tokens; seeds {seeds}; runs in {out}", flush=True)
    runs = {}
    for s in seeds:
        print(f"seed {s}:", flush=True)
        runs[s] = run_seed(args, s, policy, messages, out)
    if args.only in (None, "report"):
        report(args, seeds, runs, out)
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
