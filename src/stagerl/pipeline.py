"""The recipe end to end, one plain function per stage; each reads and writes the run folder.

    score  -> samples.sqlite, pass_rates.parquet, ledger.json
    levels -> levels/<level>.parquet, levels/stats.json, levels/*.png
    train  -> stages/<i>_<name>/{checkpoint/, metrics.jsonl, stage.json}
    eval   -> eval/<checkpoint>/{<benchmark>.sqlite, results.json}
    report -> report/report.md, report/*.png

Any stage can be re-run from the files before it; a killed stage resumes from what it stored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from .config import Recipe, dump_recipe, load_recipe
from .data import load_source
from .data.problem import Problem
from .rewards import configure_rewards


def log(msg: str) -> None:
    print(f"[stagerl {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare_run(recipe: Recipe) -> Path:
    """Create the run folder and record the resolved recipe in it."""
    run_dir = recipe.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_recipe(recipe, run_dir / "recipe.yaml")
    configure_rewards(recipe.rewards)  # the code sandbox's mode and limits, before any grading
    return run_dir


def load_problems(recipe: Recipe) -> list[Problem]:
    """All training problems of the recipe; ids must be unique across sources."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for spec in recipe.data:
        for p in load_source(spec):
            if p.id in seen:
                raise ValueError(f"problem id {p.id!r} appears in both {seen[p.id]} and {spec}: "
                                 "ids must be unique across a recipe's data sources")
            seen[p.id] = str(spec)
            problems.append(p)
    if not problems:
        raise ValueError("the recipe lists no training data (key 'data')")
    return problems


def bound_rules(recipe: Recipe):
    from .levels.rules import bind, load_rules

    rules = load_rules(recipe.levels.rules)
    return bind(rules, recipe.levels.bind) if recipe.levels.bind else rules


def run_score(recipe: Recipe, fixed: bool = False, limit: int | None = None) -> pd.DataFrame:
    """Sample every problem k times per reference model; write the pass-rate table and ledger."""
    from .scoring import score
    from .store import SampleStore

    run_dir = prepare_run(recipe)
    if not recipe.scoring.models:
        raise ValueError("the recipe lists no reference models (key 'scoring.models')")
    problems = load_problems(recipe)[:limit] if limit else load_problems(recipe)
    adaptive = recipe.scoring.adaptive and not fixed
    log(f"scoring {len(problems)} problems with {len(recipe.scoring.models)} model(s), k={recipe.scoring.k}, "
        f"{'adaptive' if adaptive else 'fixed'} protocol -> {run_dir}")
    store = SampleStore(run_dir / "samples.sqlite")
    table = score(problems, recipe.scoring.models, store, k=recipe.scoring.k, adaptive=adaptive,
                  round_size=recipe.scoring.round_size, sampling=recipe.scoring.sampling,
                  rules=bound_rules(recipe) if adaptive else None, reward_workers=recipe.scoring.reward_workers,
                  out_dir=run_dir, call_size=recipe.scoring.call_size, order=recipe.scoring.order,
                  messages=recipe.prompt.messages)
    log(f"pass-rate table: {run_dir / 'pass_rates.parquet'}")
    return table


def run_levels(recipe: Recipe, table_path: str | Path | None = None, export: str | Path | None = None) -> dict:
    """Cut the scored problems into levels; optionally export them as a Hugging Face dataset."""
    from .levels import build_levels, export_dataset, read_table, write_levels, write_stats

    run_dir = prepare_run(recipe)
    table = read_table(table_path or run_dir / "pass_rates.parquet")
    rules = bound_rules(recipe)
    levels = build_levels(table, rules, problems=load_problems(recipe))
    out = run_dir / "levels"
    write_levels(levels, out)
    write_stats(levels, table, rules, out)
    for name, df in levels.items():
        log(f"level {name}: {len(df)} problems")
    if export:
        info = {"reference_models": [m.name for m in recipe.scoring.models], "k": recipe.scoring.k,
                "sampling": vars(recipe.scoring.sampling), "sources": [str(s) for s in recipe.data]}
        export_dataset(levels, rules, Path(export), info)
        log(f"exported the leveled dataset to {export}")
    return levels


def level_problems(run_dir: Path) -> dict[str, list[Problem]]:
    from .levels import read_level

    files = sorted((run_dir / "levels").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no levels in {run_dir / 'levels'}: run `stagerl levels` first")
    return {f.stem: read_level(f) for f in files}


def run_train(recipe: Recipe) -> list[dict]:
    """Train the policy through the recipe's stages, each on its levels' problems."""
    from .models import resolve_model
    from .train import train_stages

    run_dir = prepare_run(recipe)
    if not recipe.train.stages:
        raise ValueError("the recipe lists no training stages (key 'train.stages')")
    levels = level_problems(run_dir)
    policy = resolve_model(recipe.train.policy)
    log(f"training {recipe.train.policy} through {len(recipe.train.stages)} stage(s)")
    return train_stages(policy, levels, recipe.train.stages, run_dir, reward_workers=recipe.scoring.reward_workers,
                        messages=recipe.prompt.messages)


def checkpoints(recipe: Recipe) -> dict[str, str]:
    """The policy before training (``base``) and each finished stage's checkpoint."""
    from .curriculum.stages import stage_folders
    from .models import resolve_model

    found = {"base": resolve_model(recipe.train.policy)}
    for d in stage_folders(recipe.run_dir):
        if (d / "checkpoint" / "config.json").exists():
            found[d.name] = str(d / "checkpoint")
    return found


def run_eval(recipe: Recipe, which: dict[str, str] | None = None) -> dict[str, dict]:
    """pass@1 (averaged over k samples) of each checkpoint on each benchmark."""
    from .evaluate import evaluate_checkpoint

    run_dir = prepare_run(recipe)
    results = {}
    for name, path in (which or checkpoints(recipe)).items():
        log(f"evaluating {name} ({path})")
        results[name] = evaluate_checkpoint(name, path, recipe.eval, run_dir / "eval" / name, recipe.prompt)
        for bench, r in results[name].items():
            log(f"  {bench}: pass@1 = {r['pass@1']:.3f} over {r['problems']} problems x k={r['k']}")
    return results


def run_report(run_dir: str | Path) -> Path:
    from .report import build_report

    path = build_report(run_dir)
    log(f"report: {path}")
    return path


def run_all(recipe: Recipe) -> Path:
    """score -> levels -> eval(base) -> train -> eval(stages) -> report."""
    t0 = time.time()
    run_dir = prepare_run(recipe)
    run_score(recipe)
    run_levels(recipe)
    from .models import resolve_model

    run_eval(recipe, {"base": resolve_model(recipe.train.policy)})
    run_train(recipe)
    trained = {k: v for k, v in checkpoints(recipe).items() if k != "base"}
    run_eval(recipe, trained)
    path = run_report(run_dir)
    (run_dir / "run.json").write_text(json.dumps({"seconds": round(time.time() - t0, 1)}, indent=1))
    log(f"done in {time.time() - t0:.0f} s; run folder: {run_dir}")
    return path


def demo(runs_dir: str = "runs", name: str | None = None) -> Path:
    """The whole recipe on the embedded default (SmolLM2-135M-Instruct) on the CPU."""
    recipe = load_recipe("demo")
    recipe.runs_dir = runs_dir
    recipe.name = name or time.strftime("demo-%Y%m%d-%H%M%S")
    run_all(recipe)
    return recipe.run_dir
