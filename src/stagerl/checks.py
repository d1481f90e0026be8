"""The whole recipe checked before any work: every problem at once, each with its key path.

Value ranges are checked by the config classes themselves (``__post_init__``, when the recipe is
loaded); :func:`check_recipe` adds what needs more than one section or a look at the disk, in
seconds and without loading a model:

* data sources and benchmarks load (every problem's tests well formed: ``data/problem.py``);
* the level rules parse, ``levels.bind`` names their aliases, every alias is bound to a scored
  model (or a model of the ``--table`` given), and each stage's levels are levels of the rules;
* a pass-rate table (``--table``, or the run's own for ``levels``) passes the checks of
  ``levels/table_check.py`` (blank rates, ids of no problem, problems missing, the levels build),
  and an ``--export`` folder can take the dataset (``levels/export.py``);
* the run name is one folder inside ``runs_dir`` (``rundir.run_name_problem``);
* each stage's ``trl`` keys are ``trl.GRPOConfig`` fields and its batch splits over the world size;
  for commands that train (and ``check``) each stage's ``GRPOConfig`` is built, without a model, so
  a value the installed TRL refuses is found too (``train/config_check.py``);
* models and checkpoints resolve (a local path that does not exist is an error; a hub id not
  found locally is a warning: nothing is downloaded here).

Every CLI command runs these checks first and stops (exit 2) listing every problem;
``stagerl check RECIPE`` runs exactly them and prints the plan (:func:`plan_lines`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Recipe

NEEDS = {  # what a command cannot do without: (data, scoring models, stages, benchmarks)
    "score": ("data", "models"), "levels": ("data",), "train": ("stages",), "eval": ("benchmarks",),
    "run": ("data", "models", "stages"), "demo": ("data", "models", "stages"), "check": (),
}


@dataclass
class Issue:
    """One problem of a recipe: where (a key path) and what; warnings do not stop a command."""

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{'warning: ' if self.severity == 'warning' else ''}{self.path}: {self.message}"


class RecipeError(ValueError):
    """The recipe has problems; ``issues`` lists them all (the message too, one per line)."""

    def __init__(self, where: str, issues: list[Issue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        lines = "\n".join(f"  {i}" for i in issues)
        super().__init__(f"{where}: {len(errors)} problem(s); nothing was run:\n{lines}")


@dataclass
class Inspection:
    """What :func:`inspect_recipe` found: the issues and what the plan shows."""

    issues: list[Issue] = field(default_factory=list)
    sources: list[tuple[str, Counter]] = field(default_factory=list)
    benchmarks: list[tuple[str, int, int]] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    world_size: int = 1
    problems: list | None = None
    """The recipe's problems when every data source loaded (for the table checks)."""
    table: Any = None
    """The ``--table`` checks' findings (``levels.table_check.TableCheck``), when a table was given."""

    def add(self, path: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(path, str(message), severity))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


def world_size(given: int | None = None) -> int:
    """``given``, else ``$WORLD_SIZE``, else 1."""
    return int(given or os.environ.get("WORLD_SIZE") or 1)


def check_recipe(recipe: Recipe, world: int | None = None, command: str = "run", table: Any = None,
                 checkpoints: dict[str, str] | None = None, export: Any = None) -> list[Issue]:
    """Every problem of ``recipe`` for ``command`` (see the module docstring), errors and warnings."""
    return inspect_recipe(recipe, world, command, table, checkpoints, export).issues


def require_valid(recipe: Recipe, command: str = "run", world: int | None = None, table: Any = None,
                  checkpoints: dict[str, str] | None = None, export: Any = None) -> list[Issue]:
    """Raise ``RecipeError`` listing every problem if there is an error; return the warnings."""
    issues = check_recipe(recipe, world, command, table, checkpoints, export)
    if any(i.severity == "error" for i in issues):
        raise RecipeError(f"recipe {recipe.name!r}", issues)
    return issues


def inspect_recipe(recipe: Recipe, world: int | None = None, command: str = "run", table: Any = None,
                   checkpoints: dict[str, str] | None = None, export: Any = None) -> Inspection:
    out = Inspection(world_size=world_size(world))
    needs = NEEDS.get(command, NEEDS["run"])
    from .rundir import run_name_problem

    if run_name_problem(recipe.name):  # set after loading (--name): Recipe checks it when loaded
        out.add("name", run_name_problem(recipe.name))
        return out  # every path of the run folder depends on it
    _data(recipe, out, "data" in needs)
    _models(recipe, out, "models" in needs)
    if export is not None:
        from .levels.export import export_problem

        problem = export_problem(export, recipe.run_dir)
        if problem:
            out.add("--export", problem)
    rules = _rules(recipe, out, table, export is not None)
    _stages(recipe, out, rules, "stages" in needs)
    if command in ("check", "train", "run", "demo"):
        _grpo_configs(recipe, out)
    _benchmarks(recipe, out, "benchmarks" in needs, checkpoints)
    return out


def _data(recipe: Recipe, out: Inspection, needed: bool) -> None:
    from .data import load_source

    if not recipe.data and needed:
        out.add("data", "lists no training problems")
    seen: dict[str, int] = {}
    loaded: list | None = []
    for i, spec in enumerate(recipe.data):
        try:
            problems = load_source(spec)
        except (ValueError, OSError, ImportError) as e:
            out.add(f"data[{i}]", e)
            loaded = None
            continue
        if loaded is not None:
            loaded += problems
        for p in problems:
            if p.id in seen:
                out.add(f"data[{i}]", f"problem id {p.id!r} is also in data[{seen[p.id]}]: ids must be unique "
                                      "across a recipe's data sources")
                break
            seen[p.id] = i
        out.sources.append((str(spec), Counter(p.domain for p in problems)))
    out.problems = loaded if recipe.data else None


def _model(out: Inspection, path: str, spec: str, engine: str = "transformers", options: dict | None = None) -> None:
    from .models import check_model

    found = check_model(spec, engine, options)
    if found is not None:
        out.add(path, found[1], found[0])


def _models(recipe: Recipe, out: Inspection, needed: bool) -> None:
    if not recipe.scoring.models and needed:
        out.add("scoring.models", "lists no reference models")
    for i, ref in enumerate(recipe.scoring.models):
        _model(out, f"scoring.models[{i}].model", ref.model, ref.engine, ref.options)
    _model(out, "train.policy", recipe.train.policy)


def table_columns(recipe: Recipe, table: Any) -> dict[str, str]:
    """``levels.table_columns`` for a table made elsewhere; none for the run's own pass_rates.parquet."""
    return {} if _own_table(recipe, table) else dict(recipe.levels.table_columns)


def _own_table(recipe: Recipe, table: Any) -> bool:
    return Path(table).resolve() == (Path(recipe.runs_dir) / recipe.name / "pass_rates.parquet").resolve()


def _rules(recipe: Recipe, out: Inspection, table: Any, export: bool = False) -> Any:
    from .levels.rules import RulesError, bind, load_rules
    from .scoring.published import alias_used, levels_note

    try:
        rules = load_rules(recipe.levels.rules)
    except (RulesError, OSError) as e:
        out.add("levels.rules", e)
        return None
    try:
        rules = bind(rules, recipe.levels.bind) if recipe.levels.bind else rules
    except RulesError as e:
        out.add("levels.bind", e)
        return rules
    if table is not None:
        from .levels.table_check import check_table

        columns = table_columns(recipe, table)
        found = out.table = check_table(table, rules, out.problems, columns, recipe.levels.require_all, export)
        key = "--table" if columns or not _own_table(recipe, table) else "pass_rates.parquet"
        for message in found.errors:
            out.add(key, message)
        for message in found.warnings:
            out.add(key, message, "warning")
        if found.table is None:
            return rules
        scored, what = set(map(str, found.table["model"].unique())), f"models of the table {table}"
    else:
        scored, what = {m.name for m in recipe.scoring.models}, "scoring.models"
    for alias, name in rules.models.items():
        if name not in scored and alias_used(rules, alias):  # an alias no level or keep uses cannot matter
            path = f"levels.bind.{alias}" if alias in recipe.levels.bind else f"levels.rules: models.{alias}"
            out.add(path, f"rule alias {alias!r} is bound to model {name!r}, which is not scored ({what}: "
                          f"{', '.join(sorted(scored)) or 'none'}); bind it with levels.bind or score that model"
                          + levels_note(rules, scored, alias))
    return rules


def _stages(recipe: Recipe, out: Inspection, rules: Any, needed: bool) -> None:
    if not recipe.train.stages:
        if needed:
            out.add("train.stages", "lists no training stages")
        return
    from .valid import ConfigError, batch_split, did_you_mean

    valid = grpo_fields() if any(stage.trl for stage in recipe.train.stages) else set()
    for i, stage in enumerate(recipe.train.stages):
        where = f"train.stages[{i}]"
        if rules is not None:
            for name in stage.levels:
                if name not in rules.levels:
                    out.add(f"{where}.levels", f"level {name!r} is not a level of the rules"
                            f"{did_you_mean(name, rules.levels)} (levels: {', '.join(rules.levels)})")
        from .train.promises import promise_issues

        for key, message in promise_issues(stage):   # keys that would break the adapter's promises
            out.add(f"{where}.{key}", message)
        for key in stage.trl:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=3)
                out.add(f"{where}.trl.{key}", "not a field of trl.GRPOConfig"
                        + (f"; did you mean {', '.join(close)}?" if close else ""))
        split = None
        try:
            split = batch_split(stage, dict(stage.trl), out.world_size)
        except (ConfigError, ValueError, TypeError) as e:
            out.add(f"{where}.prompts_per_step", f"{e} (world size {out.world_size}: WORLD_SIZE or --world-size)")
        completions = stage.prompts_per_step * stage.num_generations
        plan = None
        if split is not None:
            from .train.plan import stage_plan

            plan = stage_plan(stage, out.world_size)
            for w in plan["warnings"]:
                out.add(f"{where}.trl", w, "warning")
        out.stages.append({"name": stage.name, "levels": stage.levels, "prompts": stage.prompts_per_step,
                           "completions": completions, "tokens": completions * stage.max_completion_length,
                           "max_steps": stage.max_steps, "split": split, "plan": plan})


def _grpo_configs(recipe: Recipe, out: Inspection) -> None:
    """Each stage's real ``trl.GRPOConfig`` built (no model) where its keys and batch passed."""
    if not recipe.train.stages:
        return
    from .train.config_check import grpo_config_issues

    for i, stage in enumerate(recipe.train.stages):
        where = f"train.stages[{i}]"
        if not any(issue.path.startswith(where + ".") for issue in out.errors):
            for path, message in grpo_config_issues(stage, out.world_size):
                out.add(f"{where}.{path}", message)


def grpo_fields() -> set[str]:
    """The field names of ``trl.GRPOConfig``, read from TRL's and Transformers' source with ``ast``
    (importing them takes seconds: torch); falls back to the import if the source is not plain."""
    try:
        found = _class_fields("trl.trainer.grpo_config", "GRPOConfig", set())
        if found and "num_generations" in found and "learning_rate" in found:
            return found
    except (OSError, SyntaxError, ValueError, AttributeError, ImportError):
        pass
    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig)}


def _class_fields(module: str, cls: str, seen: set) -> set[str]:
    """Annotated class attributes of ``module.cls`` and of its bases, followed through imports."""
    import ast
    import importlib.util

    top = importlib.util.find_spec(module.split(".")[0])  # a top-level spec imports nothing
    if top is None or not top.submodule_search_locations or (module, cls) in seen:
        return set()
    seen.add((module, cls))
    path = Path(list(top.submodule_search_locations)[0]).joinpath(*module.split(".")[1:])
    is_pkg = (path / "__init__.py").is_file()
    path = path / "__init__.py" if is_pkg else path.with_suffix(".py")
    package = module if is_pkg else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            imports.update({a.asname or a.name: (base, a.name) for a in node.names})
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            out = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                   and not ast.unparse(n.annotation).startswith(("ClassVar", "typing.ClassVar"))}
            for b in node.bases:
                if isinstance(b, ast.Name):
                    where = imports.get(b.id, (module, b.id))
                    out |= _class_fields(where[0], where[1], seen)
            return out
    if is_pkg:  # a lazy package __init__ (transformers): the class is in one of its modules
        for f in sorted(path.parent.glob("*.py")):
            if f.name != "__init__.py" and re.search(rf"^class {cls}\b", f.read_text(encoding="utf-8"), re.M):
                return _class_fields(f"{module}.{f.stem}", cls, seen)
    raise ValueError(f"no class {cls} in {module}")


def _benchmarks(recipe: Recipe, out: Inspection, needed: bool, checkpoints: dict[str, str] | None) -> None:
    from .data import load_source

    if not recipe.eval.benchmarks and needed:
        out.add("eval.benchmarks", "lists no benchmarks")
    for i, bench in enumerate(recipe.eval.benchmarks):
        try:
            n = len(load_source(bench.source))
        except (ValueError, OSError, ImportError) as e:
            out.add(f"eval.benchmarks[{i}].source", e)
            continue
        out.benchmarks.append((bench.name, min(n, bench.limit or n), bench.k))
    if recipe.eval.engine == "openai" and not recipe.eval.options.get("base_url"):
        out.add("eval.options.base_url", "the openai engine needs a base_url")
    for name, path in (checkpoints or {}).items():
        _model(out, f"--checkpoint {name}", path)


def plan_lines(recipe: Recipe, found: Inspection) -> list[str]:
    """The plan ``stagerl check`` prints: problems per source and domain, models, and per stage
    the prompts and completions per step and the token budget."""
    lines = [f"recipe {recipe.name!r} -> run folder {recipe.run_dir}", "data:"]
    for spec, counts in found.sources:
        per = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
        lines.append(f"  {spec}: {sum(counts.values())} problems ({per or 'none'})")
    total = Counter()
    for _, counts in found.sources:
        total.update(counts)
    lines.append(f"  total: {sum(total.values())} problems ({', '.join(f'{n} {d}' for d, n in sorted(total.items()))})")
    s = recipe.scoring
    lines.append(f"scoring: k={s.k}, {'adaptive (rounds of %d)' % s.round_size if s.adaptive else 'fixed protocol'}, "
                 f"max_tokens={s.sampling.max_tokens}")
    for m in s.models:
        lines.append(f"  model {m.name}: {m.model} ({m.engine})")
    lines.append(f"policy: {recipe.train.policy}")
    for st in found.stages:
        split = st["split"]
        how = (f"{split['per_device_train_batch_size']} per device x {found.world_size} process(es) x "
               f"{split['gradient_accumulation_steps']} accumulation") if split else "does not split"
        lines.append(f"stage {st['name']} on {', '.join(st['levels'])}: {st['prompts']} prompts x "
                     f"{st['completions'] // st['prompts']} = {st['completions']} completions per step ({how}); "
                     f"token budget {st['tokens']:,} per step, at most {st['tokens'] * st['max_steps']:,} "
                     f"over {st['max_steps']} steps")
        if st.get("plan"):
            p = st["plan"]
            lines.append(f"  {p['sequences_per_device_per_pass']} sequences per device per pass x "
                         f"{p['passes_per_step']} passes per step; at most "
                         f"{p['max_completion_tokens_per_device_pass']:,} completion tokens per device per pass")
    for name, n, k in found.benchmarks:
        lines.append(f"benchmark {name}: {n} problems x k={k}")
    errors = found.errors
    lines.append(f"{len(errors)} problem(s), {len(found.issues) - len(errors)} warning(s)")
    lines += [f"  {i}" for i in found.issues]
    return lines
