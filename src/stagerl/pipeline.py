"""The recipe end to end, one plain function per stage; each reads and writes the run folder.

    score  -> samples.sqlite, pass_rates.parquet, ledger.json
    levels -> levels/<level>.parquet, levels/stats.json, levels/*.png
    train  -> stages/<i>_<name>/{checkpoint/, metrics.jsonl, stage.json}
    eval   -> eval/<checkpoint>/{<benchmark>.sqlite, results.json}
    eval   -> eval/compare.json (paired differences of the checkpoints)
    report -> report/index.html (self-contained), report/report.md, report/*.png

Any stage can be re-run from the files before it; a killed stage resumes from what it stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import yaml

from . import console
from .checks import require_valid
from .config import Recipe, load_recipe, to_dict
from .data import load_source
from .data.problem import Problem
from .rundir import (RunDir, RunLock, append_jsonl, read_json, replace_dir, stage_finished, write_json,
                     write_text)


def log(msg: str) -> None:
    console.line(console.stamp(msg))


def recipe_hash(recipe: Recipe) -> str:
    """A short hash of the resolved recipe (recorded in ``history.jsonl``)."""
    return hashlib.sha256(yaml.safe_dump(to_dict(recipe), sort_keys=True).encode()).hexdigest()[:16]


_ACTIVE: set[str] = set()


@contextlib.contextmanager
def session(recipe: Recipe, command: str, wait: bool = False, world: int | None = None, table=None,
            checkpoints: dict[str, str] | None = None,
            preflight: Callable[[RunDir], None] | None = None, export=None) -> Iterator[RunDir]:
    """Check the whole recipe (all problems at once, before anything is written), lock the run
    folder, run ``preflight(run)`` (the command's own refusals, e.g. stale samples), then record
    the recipe and append the command to ``history.jsonl``. A command refused by any of these
    writes nothing. Nested sessions (``run`` calling ``score``) reuse the outer one."""
    run = RunDir(recipe.run_dir)
    if str(run.root.resolve()) in _ACTIVE:
        if preflight is not None:
            preflight(run)
        yield run
        return
    for issue in require_valid(recipe, command, world, table, checkpoints, export):
        log(str(issue))  # warnings
    if int(os.environ.get("RANK", "0")) != 0:  # another rank of `accelerate launch`: rank 0 locks and records
        if preflight is not None:
            preflight(run)
        from .rewards import configure_rewards

        configure_rewards(recipe.rewards)
        _ACTIVE.add(str(run.root.resolve()))
        try:
            yield run
        finally:
            _ACTIVE.discard(str(run.root.resolve()))
        return
    with RunLock(run.root, command, wait):
        key = str(run.root.resolve())
        if preflight is not None:
            preflight(run)
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": command, "recipe": recipe_hash(recipe),
                 "pid": os.getpid()}
        write_text(run.recipe, yaml.safe_dump(to_dict(recipe), sort_keys=False))
        append_jsonl(run.history, {**entry, "status": "started"})
        from .rewards import configure_rewards

        configure_rewards(recipe.rewards)  # the code sandbox's mode and limits, before any grading
        _ACTIVE.add(key)
        try:
            yield run
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}: {e}"
            append_jsonl(run.history, {**entry, "status": status[:500], "end": time.strftime("%Y-%m-%dT%H:%M:%S")})
            raise
        else:
            append_jsonl(run.history, {**entry, "status": "finished", "end": time.strftime("%Y-%m-%dT%H:%M:%S")})
        finally:
            _ACTIVE.discard(key)


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


def run_score(recipe: Recipe, fixed: bool = False, limit: int | None = None, rescore_changed: bool = False,
              wait: bool = False, world: int | None = None) -> pd.DataFrame:
    """Sample every problem k times per reference model; write the pass-rate table and ledger."""
    with session(recipe, "score", wait, world, preflight=_fresh_samples(recipe, limit, rescore_changed)) as run:
        from .scoring import score  # heavy imports after the checks: a refusal takes seconds
        from .store import SampleStore

        problems = load_problems(recipe)[:limit] if limit else load_problems(recipe)
        store = SampleStore(run.samples)
        adaptive = recipe.scoring.adaptive and not fixed
        log(f"scoring {len(problems)} problems with {len(recipe.scoring.models)} model(s), k={recipe.scoring.k}, "
            f"{'adaptive' if adaptive else 'fixed'} protocol -> {run.root}")
        table = score(problems, store, dataclasses.replace(recipe.scoring, adaptive=adaptive),
                      rules=bound_rules(recipe) if adaptive else None, rewards=recipe.rewards, prompt=recipe.prompt,
                      out_dir=run.root, rescore_changed=rescore_changed)
        log(f"pass-rate table: {run.pass_rates}")
    return table


def _fresh_samples(recipe: Recipe, limit: int | None, rescore_changed: bool) -> Callable[[RunDir], None]:
    """Preflight of ``score``: samples stored with other settings, or of a problem whose prompt
    changed, stop the command before it records anything."""
    def check(run: RunDir) -> None:
        problems = load_problems(recipe)[:limit] if limit else load_problems(recipe)
        from .scoring.fresh import StaleSamplesError, stale_message, stale_prompts
        from .scoring.run import check_settings
        from .store import SampleStore

        if run.samples.is_file():
            with SampleStore(run.samples) as store:
                check_settings(store, recipe.scoring.models, recipe.scoring.sampling, recipe.prompt.messages)
                moved = stale_prompts(store, problems)
                if moved and not rescore_changed:
                    raise StaleSamplesError(stale_message(store, moved))

    return check


def table_digest(table: pd.DataFrame) -> str:
    """A fingerprint of a pass-rate table's content (recorded with the levels built from it)."""
    cols = sorted(map(str, table.columns))
    rows = table[cols].sort_values(["problem_id", "model"]) if {"problem_id", "model"} <= set(cols) else table[cols]
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()[:16]


def run_levels(recipe: Recipe, table_path: str | Path | None = None, export: str | Path | None = None,
               wait: bool = False, world: int | None = None, export_format: str = "hf") -> dict:
    """Cut the scored problems into levels (replacing levels/ as one set); optionally export them
    as a Hugging Face dataset. ``levels/stats.json`` records the table and rules they came from.
    The table checks (``levels/table_check.py``) and the export folder's run before anything is
    written; an export is built aside and swapped in only when complete."""
    from .checks import table_columns
    from .levels import build_levels, export_dataset, read_frame, read_table, write_levels, write_stats

    source = Path(table_path or RunDir(recipe.run_dir).pass_rates)
    columns = table_columns(recipe, source)
    with session(recipe, "levels", wait, world, table=source, export=export,
                 preflight=lambda run: read_table(source, columns=columns)) as run:
        table = read_table(source, columns=columns)
        rules = bound_rules(recipe)
        problems = load_problems(recipe)
        levels = build_levels(table, rules, problems=problems)
        if export and not any(len(df) for df in levels.values()):  # before levels/ is replaced
            raise ValueError(f"--export {export}: every level is empty ({', '.join(levels)}): nothing to export")
        inside = source.resolve().is_relative_to(run.root.resolve())  # relative: the folder may move
        listed = set(table["problem_id"])
        inputs = {"table": str(source.resolve().relative_to(run.root.resolve()) if inside else source.resolve()),
                  "table_digest": table_digest(table), "rules": rules.to_dict(),
                  "problems_not_in_table": sum(p.id not in listed for p in problems)}
        if table_path is not None:  # a table made elsewhere: what it holds, for the card and the report
            frame = read_frame(source)
            inputs["table_info"] = {"path": str(source.resolve()), "rows": int(len(frame)),
                                    "columns": list(map(str, frame.columns)),
                                    "models": sorted(map(str, table["model"].unique())),
                                    "column_map": columns}

        def fill(tmp: Path) -> None:
            write_levels(levels, tmp)
            write_stats(levels, table, rules, tmp)
            stats = read_json(tmp / "stats.json")
            write_json(tmp / "stats.json", {**stats, "inputs": inputs})

        replace_dir(run.levels, fill)
        for name, df in levels.items():
            log(f"level {name}: {len(df)} problems")
        if export and export_format == "verl":
            from .levels.export_verl import export_verl

            export_verl(levels, Path(export), recipe.prompt.messages)
            log(f"exported the levels as verl parquet to {export}")
        elif export:
            sources = [str(s) for s in recipe.data]
            info = ({"table": inputs["table_info"], "sources": sources} if table_path is not None else
                    {"reference_models": [m.name for m in recipe.scoring.models], "k": recipe.scoring.k,
                     "sampling": vars(recipe.scoring.sampling), "sources": sources})
            export_dataset(levels, rules, Path(export), info)
            log(f"exported the leveled dataset to {export}")
    return levels


def level_problems(run_dir: Path, recipe: Recipe | None = None) -> dict[str, list[Problem]]:
    """The levels' problems; with ``recipe``, levels built from another table or rules are refused."""
    from .levels import read_level, read_table

    run = RunDir(run_dir)
    files = run.level_files()
    if not files:
        raise FileNotFoundError(f"no levels in {run.levels}: run `stagerl levels` first")
    inputs = read_json(run.level_stats).get("inputs") if run.level_stats.is_file() else None
    if recipe is not None and inputs:
        again = "; run `stagerl levels` again"
        table = run.root / inputs["table"]  # an absolute path stays as it is
        if not table.is_file():
            raise FileNotFoundError(f"{run.level_stats}: the levels were built from {table}, which is gone{again}")
        if table_digest(read_table(table)) != inputs["table_digest"]:
            raise ValueError(f"{run.levels}: built from an older version of {table} (it changed since){again}")
        if bound_rules(recipe).to_dict() != inputs["rules"]:
            raise ValueError(f"{run.levels}: built with other level rules than the recipe's (levels.rules / "
                             f"levels.bind changed){again}")
    return {f.stem: read_level(f) for f in files}


def run_train(recipe: Recipe, wait: bool = False, world: int | None = None, retrain: bool = False) -> list[dict]:
    """Train the policy through the recipe's stages, each on its levels' problems.

    A finished stage whose settings, problems or starting checkpoint changed stops the command
    (``StageChangedError`` naming the change) unless ``retrain`` is set, which trains it again."""
    found: dict[str, list[Problem]] = {}
    with session(recipe, "train", wait, world,
                 preflight=lambda run: found.update(level_problems(run.root, recipe))) as run:
        from .models import resolve_model
        from .train import train_stages

        levels = found
        policy = resolve_model(recipe.train.policy)
        log(f"training {recipe.train.policy} through {len(recipe.train.stages)} stage(s)")
        return train_stages(policy, levels, recipe.train.stages, run.root,
                            rewards=recipe.rewards, messages=recipe.prompt.messages, retrain=retrain)


def checkpoints(recipe: Recipe) -> dict[str, str]:
    """The policy before training (``base``) and each finished stage's checkpoint."""
    from .models import resolve_model

    found = {"base": resolve_model(recipe.train.policy)}
    for d in RunDir(recipe.run_dir).stage_folders():
        if stage_finished(d):
            found[d.name] = str(d / "checkpoint")
    return found


def run_eval(recipe: Recipe, which: dict[str, str] | None = None, wait: bool = False,
             world: int | None = None) -> dict[str, dict]:
    """pass@1 (averaged over k samples, with a 95% interval) of each checkpoint on each benchmark,
    then paired comparisons of the checkpoints (``eval/compare.json``)."""
    results = {}
    with session(recipe, "eval", wait, world, checkpoints=which) as run:
        from .evaluate import compare_run, evaluate_checkpoint, level_ids

        levels = level_ids(run.root)
        for name, path in (which or checkpoints(recipe)).items():
            log(f"evaluating {name} ({path})")
            results[name] = evaluate_checkpoint(name, path, recipe.eval, run.eval(name), recipe.prompt,
                                                rewards=recipe.rewards, levels=levels)
            for bench, r in results[name].items():
                lo, hi = r["ci95"]
                log(f"  {bench}: pass@1 = {r['pass@1']:.3f} [95% CI {lo:.3f}, {hi:.3f}] over {r['problems']} problems"
                    f" x k={r['k']}" + (f"  (note: {r['note']})" if r.get("note") else ""))
        for p in compare_run(run.root / "eval")["pairs"]:
            lo, hi = p["ci95"]
            log(f"  {p['benchmark']}: {p['a']} - {p['b']} = {p['diff']:+.3f} [95% CI {lo:+.3f}, {hi:+.3f}], "
                f"p = {p['p_value']:.3f} on {p['problems']} paired problems")
    return results


def run_report(run_dir: str | Path) -> Path:
    """The report of an existing run folder (a missing folder is an error, never created)."""
    from .report import build_report

    path = build_report(RunDir(run_dir).require().root)
    log(f"report: {path}")
    return path


def run_compare(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Several runs on one page (``<out>/index.html``, ``report.md``, ``compare.json``)."""
    from .report import build_comparison

    path = build_comparison([Path(d) for d in run_dirs], Path(out))
    log(f"comparison: {path}")
    return path


def run_all(recipe: Recipe, wait: bool = False, world: int | None = None, retrain: bool = False) -> Path:
    """score -> levels -> eval(base) -> train -> eval(stages) -> report, the whole recipe checked first."""
    t0 = time.time()
    with session(recipe, "run", wait, world, preflight=_fresh_samples(recipe, None, False)) as run:
        run_score(recipe)
        run_levels(recipe)
        from .models import resolve_model

        run_eval(recipe, {"base": resolve_model(recipe.train.policy)})
        run_train(recipe, retrain=retrain)
        trained = {k: v for k, v in checkpoints(recipe).items() if k != "base"}
        run_eval(recipe, trained)
        path = run_report(run.root)
        write_json(run.run_json, {"seconds": round(time.time() - t0, 1)})
    log(f"done in {time.time() - t0:.0f} s; run folder: {run.root}")
    return path


def demo(runs_dir: str = "runs", name: str | None = None, wait: bool = False) -> Path:
    """The whole recipe on the embedded default (SmolLM2-135M-Instruct) on the CPU."""
    recipe = load_recipe("demo")
    recipe.runs_dir = runs_dir
    recipe.name = name or time.strftime("demo-%Y%m%d-%H%M%S")
    run_all(recipe, wait)
    return recipe.run_dir
