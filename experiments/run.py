#!/usr/bin/env python
"""Run the toy reproductions of the paper's claims (docs/results.md): every arm of an experiment,
for every seed, in sequence; resumable; then compare the arms.

    python experiments/run.py difficulty                 # claim A, the seeds of experiments.yaml
    python experiments/run.py staging mixing --seeds 0 1 2
    python experiments/run.py all --dry-run              # print the plan and commands, run nothing
    python experiments/run.py staging --seeds 0 --smoke --runs-dir /tmp/smoke   # plumbing check
    python experiments/run.py all --engine vllm          # scoring and evaluation on vLLM (needs the vllm extra)
    python experiments/run.py staging --seeds 2 --arms staging-long   # some arms only (split a seed over processes)

Experiments and their arms are listed in ``experiments/experiments.yaml``; each arm is a complete
recipe ``experiments/<arm>.yaml`` (``stagerl run experiments/<arm>.yaml`` runs it alone). All arms
share the same data, prompt, scoring, rewards, levels and eval sections (checked here, with equal
training budgets within an experiment), so per seed the problems are scored, levelled and the base
policy evaluated once, in ``seed<S>/_shared``, and every arm reuses that. Layout under
``--runs-dir`` (default ``runs/experiments``)::

    seed<S>/recipes/<arm>.yaml      the arm's recipe with the seed applied (what was run)
    seed<S>/_shared/                samples.sqlite, pass_rates.parquet, ledger.json, levels/, eval/base/
    seed<S>/<arm>/                  the arm's run folder: pass_rates.parquet, ledger.json and eval/base
                                    copied from _shared, levels cut again (no model), stages/, eval/,
                                    report/, and experiment.json (written last: the arm is finished)
    compare/<experiment>-seed<S>/   ``stagerl compare`` of the arms
    <experiment>.summary.json       per arm and seed: held-out pass@1 (base, trained), initial training
                                    reward, steps and end reason per stage, seconds; means over seeds

A seed sets the generated training problems, the scoring sampling seed and every stage's seed; the
held-out problems and the evaluation sampling seed stay fixed, so arms and seeds are evaluated on the
same problems. An arm with ``experiment.json`` is skipped; anything else resumes (each stagerl stage
resumes from what it stored; one that fails with exit status 1 runs once more). Every step is a
``python -m stagerl.cli`` process (memory is freed between steps; the commands are the ones a user
would type); two processes may share a seed with disjoint ``--arms``, as each run folder is locked
while a command works in it.

Staged arms: with ``total_steps`` set for the experiment, stage 1 trains first (until its plateau or
``max_steps``), then stage 2 gets ``total_steps`` minus the steps stage 1 used, so the staged and the
single-stage arm spend the same number of optimizer steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SHARED_KEYS = ("data", "prompt", "scoring", "rewards", "levels", "eval")
GENERATED = ("demo_math", "demo_code", "chain_math", "gen_code")


class ExperimentError(ValueError):
    """The experiment files are inconsistent (unknown arm, arms that do not share scoring, ...)."""


def load_manifest(path: Path = HERE / "experiments.yaml") -> dict:
    manifest = yaml.safe_load(Path(path).read_text())
    for name, exp in manifest["experiments"].items():
        if not exp.get("arms"):
            raise ExperimentError(f"{path}: experiments.{name}.arms: list the arm recipes")
    return manifest


def arm_dict(arm: str, folder: Path = HERE) -> dict:
    """The arm's recipe as a plain dict, validated against the current schema."""
    from stagerl.config import load_recipe

    path = folder / f"{arm}.yaml"
    if not path.is_file():
        raise ExperimentError(f"no recipe {path} for arm {arm!r}")
    load_recipe(path)  # raises ConfigError naming the key path
    return yaml.safe_load(path.read_text())


def with_seed(recipe: dict, seed: int, folder: Path = HERE) -> dict:
    """A copy with ``seed`` applied to generated training data, scoring sampling and every stage;
    the level rules path made absolute (it is relative to the recipe file, as ``load_recipe`` reads it)."""
    d = copy.deepcopy(recipe)
    for src in d.get("data", []):
        if isinstance(src, dict) and src.get("builtin") in GENERATED:
            src["seed"] = seed
    d.setdefault("scoring", {}).setdefault("sampling", {})["seed"] = seed
    for stage in d.get("train", {}).get("stages", []):
        stage["seed"] = seed
    rules = d.get("levels", {}).get("rules")
    if isinstance(rules, str) and rules.endswith((".yaml", ".yml")) and not Path(rules).is_absolute():
        d["levels"]["rules"] = str((folder / rules).resolve())
    return d


def with_engine(recipe: dict, engine: str | None) -> dict:
    """A copy whose scoring models and evaluation generate with ``engine`` (``None``: as written). Only the
    engine changes: model, sampling settings and seeds stay (use one engine per runs folder: a resumed run
    reuses what is stored). Training (TRL) and its dev scores are not affected."""
    d = copy.deepcopy(recipe)
    if engine:
        for m in d.get("scoring", {}).get("models", []):
            m["engine"] = engine
        if "eval" in d:
            d["eval"]["engine"] = engine
    return d


def shared_part(recipe: dict) -> dict:
    """What every arm must have in common for one scoring run to serve them all."""
    return {**{k: recipe.get(k) for k in SHARED_KEYS}, "policy": recipe.get("train", {}).get("policy")}


def budget(recipe: dict, total_steps: int | None) -> tuple[int, int]:
    """(completions per step, optimizer steps) an arm spends."""
    stages = recipe["train"]["stages"]
    per_step = {(s.get("prompts_per_step", 128) * s.get("num_generations", 16)) for s in stages}
    if len(per_step) != 1:
        raise ExperimentError(f"arm {recipe.get('name')!r}: stages differ in prompts_per_step x num_generations")
    steps = total_steps if total_steps and len(stages) > 1 else sum(s.get("max_steps", 1000) for s in stages)
    if total_steps and len(stages) == 1 and steps != total_steps:
        raise ExperimentError(f"arm {recipe.get('name')!r}: max_steps {steps} != the experiment's total_steps {total_steps}")
    if total_steps and len(stages) > 2:
        raise ExperimentError(f"arm {recipe.get('name')!r}: total_steps supports one or two stages")
    if total_steps and len(stages) == 2 and stages[0].get("max_steps", 1000) >= total_steps:
        raise ExperimentError(f"arm {recipe.get('name')!r}: stage 1's max_steps must be below total_steps "
                              f"{total_steps}, or stage 2 may get no steps")
    return per_step.pop(), steps


def check(manifest: dict, names: list[str], folder: Path = HERE) -> dict[str, dict]:
    """Load every arm of the named experiments; check shared sections and equal budgets."""
    arms: dict[str, dict] = {}
    for name in names:
        if name not in manifest["experiments"]:
            raise ExperimentError(f"unknown experiment {name!r} (known: {', '.join(manifest['experiments'])})")
        exp = manifest["experiments"][name]
        budgets = {}
        for arm in exp["arms"]:
            arms.setdefault(arm, arm_dict(arm, folder))
            budgets[arm] = budget(arms[arm], exp.get("total_steps"))
        if len(set(budgets.values())) != 1:
            raise ExperimentError(f"experiment {name!r}: arms spend different budgets "
                                  f"(completions per step, steps): {budgets}")
    first, ref = next(iter(arms.items()))
    for arm, d in arms.items():
        for key, value in shared_part(d).items():
            if value != shared_part(ref)[key]:
                raise ExperimentError(f"arm {arm!r}: section {key!r} differs from arm {first!r}'s; all arms "
                                      "must share it so that one scoring run per seed serves them all")
    return arms


def expand(manifest: dict, names: list[str], seeds: list[int]) -> list[tuple[int, str]]:
    """(seed, arm) in run order: seeds outermost, each arm once per seed even if two experiments share it."""
    plan: list[tuple[int, str]] = []
    for seed in seeds:
        for name in names:
            for arm in manifest["experiments"][name]["arms"]:
                if (seed, arm) not in plan:
                    plan.append((seed, arm))
    return plan


def stage2_steps(total_steps: int, stage1_steps: int) -> int:
    """Stage 2's share of the budget once stage 1 has used ``stage1_steps``."""
    if stage1_steps >= total_steps:
        raise ExperimentError(f"stage 1 used {stage1_steps} of {total_steps} steps: nothing left for stage 2; "
                              "lower stage 1's max_steps below total_steps")
    return total_steps - stage1_steps


def smoke(recipe: dict) -> dict:
    """A tiny version of an arm for a plumbing check (minutes, meaningless numbers)."""
    d = copy.deepcopy(recipe)
    for src in d["data"]:
        if src.get("builtin") in ("demo_math", "chain_math", "gen_code"):
            src["n"] = 6
    d["scoring"].update(k=1, adaptive=False)
    d["scoring"]["sampling"]["max_tokens"] = 32
    levels = {"L1": "policy in [0,1]"}
    levels.update({f"L{i}_math": {"all": ["policy in [0,1]", {"retain": {"math": 1.0, "code": 0.0}}]} for i in (1, 2, 3)})
    d["levels"] = {"rules": {"models": {"policy": d["scoring"]["models"][0]["name"]}, "levels": levels}}
    d["eval"]["sampling"]["max_tokens"] = 32
    for b in d["eval"]["benchmarks"]:
        b.update(k=1, limit=2)
    for s in d["train"]["stages"]:
        s.update(prompts_per_step=2, num_generations=2, max_completion_length=32, max_steps=2, plateau=None)
        src = (s.get("dev") or {}).get("source")
        if isinstance(src, dict) and "n" in src:
            src["n"], s["dev_k"] = 4, 1
    return d


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stagerl.cli", *args]


def sh(cmd: list[str], dry: bool, retries: int = 1) -> None:
    """Print the command as a user would type it; run it (this tree's ``src`` first on the path); on an
    unexpected error (exit 1: a dead engine, not a bad recipe's 2) run it again: it resumes."""
    print("  $", " ".join(["stagerl", *cmd[3:]] if cmd[1:3] == ["-m", "stagerl.cli"] else cmd), flush=True)
    if not dry:
        env = {**os.environ, "STAGERL_TRACEBACK": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")]))}
        for attempt in range(retries + 1):
            if (code := subprocess.run(cmd, env=env).returncode) != 1 or attempt == retries:
                break
            print(f"  (failed with exit status 1: running it again, retry {attempt + 1} of {retries}; it resumes)", flush=True)
        if code:
            raise subprocess.CalledProcessError(code, cmd)


def write_recipe(recipe: dict, path: Path, dry: bool = False) -> Path:
    from stagerl.config import load_recipe

    load_recipe(recipe)  # the seeded/capped recipe must still be valid
    if not dry:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_shared(seed: int, recipe: dict, root: Path, dry: bool) -> Path:
    """Score, level and evaluate the base policy once for every arm of this seed."""
    d = {**copy.deepcopy(recipe), "name": "_shared", "runs_dir": str(root / f"seed{seed}")}
    shared = root / f"seed{seed}" / "_shared"
    if (shared / "eval" / "base" / "results.json").exists() and (shared / "levels" / "stats.json").exists():
        return shared
    path = write_recipe(d, root / f"seed{seed}" / "recipes" / "_shared.yaml", dry)
    print(f"[seed {seed}] shared scoring, levels and base evaluation -> {shared}", flush=True)
    sh(cli("score", str(path)), dry)
    sh(cli("levels", str(path)), dry)
    # the base policy under the very path `stagerl eval` gives it in the arms (``pipeline.checkpoints``),
    # so that the arms find these samples stored under the same settings and generate nothing
    base = d["train"]["policy"] if dry else resolve_policy(d["train"]["policy"])
    sh(cli("eval", str(path), "--checkpoint", f"base={base}"), dry)
    return shared


def resolve_policy(policy: str) -> str:
    from stagerl.models import resolve_model

    return str(resolve_model(policy))


def run_arm(seed: int, arm: str, recipe: dict, root: Path, total_steps: int | None, dry: bool) -> Path:
    """One arm of one seed, after ``run_shared``; skipped when its experiment.json exists."""
    run_dir, shared = root / f"seed{seed}" / arm, root / f"seed{seed}" / "_shared"
    if (run_dir / "experiment.json").exists():
        print(f"[seed {seed}] {arm}: finished, skipped ({run_dir})", flush=True)
        return run_dir
    d = {**copy.deepcopy(recipe), "name": arm, "runs_dir": str(root / f"seed{seed}")}
    path = write_recipe(d, root / f"seed{seed}" / "recipes" / f"{arm}.yaml", dry)
    print(f"[seed {seed}] {arm} -> {run_dir}", flush=True)
    spent = run_dir / "experiment.seconds.json"  # phases finished by earlier, interrupted invocations
    seconds: dict[str, float] = json.loads(spent.read_text()) if spent.exists() else {}

    def lap(key: str, since: float) -> float:
        seconds[key] = seconds.get(key, 0.0) + time.time() - since
        if not dry:
            spent.write_text(json.dumps(seconds))
        return time.time()

    t = time.time()
    if not dry:
        (run_dir / "eval").mkdir(parents=True, exist_ok=True)
        for name in ("pass_rates.parquet", "ledger.json"):
            shutil.copy2(shared / name, run_dir / name)
        if not (run_dir / "eval" / "base").exists():
            shutil.copytree(shared / "eval" / "base", run_dir / "eval" / "base")
    sh(cli("levels", str(path)), dry)
    t = lap("levels", t)
    stages = d["train"]["stages"]
    if total_steps and len(stages) == 2:
        first = {**d, "train": {**d["train"], "stages": stages[:1]}}
        sh(cli("train", str(write_recipe(first, path.with_suffix(".stage1.yaml"), dry))), dry)
        if dry:
            print(f"  (then stage 2 gets {total_steps} minus the steps stage 1 used)")
        else:
            from stagerl.curriculum.stages import stage_dir
            from stagerl.config import from_dict, StageConfig

            used = json.loads((stage_dir(run_dir, 1, from_dict(StageConfig, stages[0])) / "stage.json").read_text())["steps"]
            stages[1]["max_steps"] = stage2_steps(total_steps, used)
            print(f"  stage 1 used {used} steps: stage 2 gets {stages[1]['max_steps']}", flush=True)
            write_recipe(d, path)
    sh(cli("train", str(path)), dry)
    t = lap("train", t)
    sh(cli("eval", str(path)), dry)  # base samples are stored already: only trained stages generate
    lap("eval", t)
    sh(cli("report", str(run_dir)), dry)
    if not dry:
        info = {"arm": arm, "seed": seed, "shared": str(shared), "recipe": str(path),
                "seconds": {k: round(v, 1) for k, v in seconds.items()}}
        (run_dir / "experiment.json").write_text(json.dumps(info, indent=1))
    return run_dir


def arm_result(run_dir: Path) -> dict:
    """What one finished arm's files say (held-out results, training reward, stages, seconds), read by ``stagerl.report.read``."""
    from stagerl.report.read import read_eval, read_json, read_stages

    out: dict = {"run_dir": str(run_dir), "stages": [], "eval": read_eval(run_dir)}
    stages = read_stages(run_dir)
    for st in stages:
        info, rows = st["info"], st["metrics"]
        stage = {"name": st["dir"], "steps": info.get("steps"), "reason": info.get("reason"),
                 "problems": info.get("problems"), "domains": info.get("domains"),
                 "dev_score": [[r["step"], r["dev_score"]] for r in rows if r.get("dev_score") is not None]}
        for key in ("reward", "clipped_ratio", "reward_math", "reward_code"):
            vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            stage[f"{key}_first3"] = statistics.fmean(vals[:3]) if vals else None
            stage[f"{key}_last3"] = statistics.fmean(vals[-3:]) if vals else None
        out["stages"].append(stage)
    if out["stages"]:
        out["initial_reward"] = out["stages"][0]["reward_first3"]  # the paper's "initial training reward"
    out["final"] = stages[-1]["dir"] if stages else None
    out["seconds"] = (read_json(run_dir / "experiment.json") or {}).get("seconds")
    return out


def _stats(values: list[float]) -> dict:
    vals = [v for v in values if isinstance(v, (int, float))]
    return {"n": len(vals), "mean": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None, "values": vals}


def summarize(name: str, exp: dict, seeds: list[int], root: Path) -> dict:
    """Per arm: each seed's result, and over seeds the held-out pass@1 (base, final, gain) and the
    initial training reward (mean of the first 3 steps): mean, sample std, n, the values."""
    summary: dict = {"experiment": name, "claim": exp.get("claim"), "seeds": seeds, "arms": {}}
    for arm in exp["arms"]:
        per_seed = {s: arm_result(root / f"seed{s}" / arm) for s in seeds if (root / f"seed{s}" / arm / "experiment.json").exists()}
        over: dict = {"initial_reward": _stats([r.get("initial_reward") for r in per_seed.values()])}
        benches = sorted({b for r in per_seed.values() for res in r["eval"].values() for b in res})
        for b in benches:
            base = [r["eval"].get("base", {}).get(b, {}).get("pass@1") for r in per_seed.values()]
            final = [r["eval"].get(r["final"], {}).get(b, {}).get("pass@1") for r in per_seed.values()]
            over[b] = {"base": _stats(base), "final": _stats(final),
                       "gain": _stats([f - b0 for f, b0 in zip(final, base) if f is not None and b0 is not None])}
        summary["arms"][arm] = {"over_seeds": over, "per_seed": per_seed}
    return summary


def main(argv: list[str] | None = None) -> int:
    manifest = load_manifest()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="+", help=f"experiment names ({', '.join(manifest['experiments'])}) or 'all'")
    p.add_argument("--seeds", type=int, nargs="+", default=manifest["seeds"], help="seeds (default: experiments.yaml's)")
    p.add_argument("--runs-dir", default="runs/experiments", help="where the run folders go (default: runs/experiments)")
    p.add_argument("--arms", nargs="+", help="run only these arms of the experiments (summaries still cover every arm)")
    p.add_argument("--dry-run", action="store_true", help="check the recipes and print the plan and commands; run nothing")
    p.add_argument("--smoke", action="store_true", help="tiny sizes for a plumbing check (meaningless numbers)")
    p.add_argument("--engine", default=None, choices=("transformers", "vllm"),
                   help="generate scoring and evaluation samples with this engine (default: as the recipes say)")
    args = p.parse_args(argv)
    names = list(manifest["experiments"]) if args.experiments == ["all"] else args.experiments
    arms = check(manifest, names)
    root = Path(args.runs_dir)
    if unknown := sorted(set(args.arms or []) - set(arms)):
        p.error(f"--arms {' '.join(unknown)}: not an arm of {', '.join(names)} (arms: {', '.join(arms)})")
    plan = [(s, a) for s, a in expand(manifest, names, args.seeds) if not args.arms or a in args.arms]
    print(f"{len(plan)} arm run(s): " + ", ".join(f"{a}@seed{s}" for s, a in plan), flush=True)
    total_of = {a: e.get("total_steps") for e in manifest["experiments"].values() for a in e["arms"]}
    shared_done: set[int] = set()
    t0 = time.time()
    for seed, arm in plan:
        recipe = with_engine(with_seed(arms[arm], seed), args.engine)
        if args.smoke:
            recipe = smoke(recipe)
        total = 3 if args.smoke and total_of[arm] else total_of[arm]
        if seed not in shared_done and not (root / f"seed{seed}" / arm / "experiment.json").exists():
            run_shared(seed, recipe, root, args.dry_run)  # once per seed, for all its arms
            shared_done.add(seed)
        run_arm(seed, arm, recipe, root, total, args.dry_run)
    if args.dry_run:
        return 0
    for name in names:
        exp = manifest["experiments"][name]
        path = root / f"{name}.summary.json"
        path.write_text(json.dumps(summarize(name, exp, args.seeds, root), indent=1))
        print(f"{name}: summary {path}", flush=True)
        for seed in args.seeds:
            out = root / "compare" / f"{name}-seed{seed}"
            try:
                sh(cli("compare", *[str(root / f"seed{seed}" / a) for a in exp["arms"]], "--out", str(out)), False)
                print(f"  comparison: {out}", flush=True)
            except subprocess.CalledProcessError as e:
                print(f"  stagerl compare failed ({e}); the summary above still holds every number", flush=True)
    print(f"done in {time.time() - t0:.0f} s; arm run folders: {root}/seed<S>/<arm>/ (report/report.md in each)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))  # a clean clone works without installing
    sys.exit(main())
