"""``stagerl <stage>``: parses arguments and calls one pipeline function per stage, nothing else."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

RECIPE_HELP = "recipe YAML file, or a built-in recipe name (demo, paper)"
TABLE_FORM_HELP = ("how --table holds its difficulty: am-team, polaris, flat, stagerl (our --export folder), or a "
                   "YAML mapping file (docs/tables.md)")
RETRAIN_HELP = ("train again a stage whose settings, problems or starting checkpoint changed since it trained "
                "(and the stages after it), replacing their folders; without it such a stage stops the command")


def _recipe(args: argparse.Namespace):
    from .config import load_recipe

    recipe = load_recipe(args.recipe)
    if getattr(args, "name", None):
        recipe.name = args.name
    if getattr(args, "runs_dir", None):
        recipe.runs_dir = args.runs_dir
    if getattr(args, "table_columns", None):
        from .levels.columns import parse_columns

        recipe.levels.table_columns = {**recipe.levels.table_columns, **parse_columns(args.table_columns)}
    if getattr(args, "require_all", False):
        recipe.levels.require_all = True
    from .rundir import run_name_problem

    problem = run_name_problem(recipe.name)
    if problem:
        raise ValueError(f"--name: {problem}")
    return recipe


def _checkpoint_pairs(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--checkpoint expects NAME=PATH, got {item!r}")
        out[name] = path
    return out


def _eval_recipe(args: argparse.Namespace):
    """The recipe with ``--benchmark``, ``--limit`` and ``--k`` applied to its benchmarks."""
    from .config import BenchmarkConfig

    recipe = _recipe(args)
    if args.benchmark:
        known = {b.name: b for b in recipe.eval.benchmarks}
        recipe.eval.benchmarks = [known.get(name) or BenchmarkConfig(name=name) for name in args.benchmark]
    for b in recipe.eval.benchmarks:
        if args.limit:
            b.limit = args.limit
        if args.k:
            b.k = args.k
    return recipe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stagerl", description="Difficulty-aware staged RL for LLM reasoners: "
                                "score -> levels -> train -> eval -> report, all in one run folder.")
    sub = p.add_subparsers(dest="command", required=True, metavar="<stage>")

    def with_recipe(name: str, help: str, work: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("recipe", help=RECIPE_HELP)
        sp.add_argument("--name", help="run name (overrides the recipe's); the run folder is RUNS_DIR/NAME")
        sp.add_argument("--runs-dir", help="parent folder of run folders (default: the recipe's, 'runs')")
        sp.add_argument("--world-size", type=int, help="training processes the batch is split over "
                        "(default: $WORLD_SIZE or 1)")
        if work:
            sp.add_argument("--wait", action="store_true",
                            help="if another process works in the run folder, wait for it instead of stopping")
        return sp

    def table_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--table-columns", action="append", metavar="OURS=THEIRS,...",
                        help="the table's column names, e.g. problem_id=qid,pass_rate=acc or, one column per model, "
                             "r1-7b=acc_7b (adds to the recipe's levels.table_columns)")
        sp.add_argument("--require-all", action="store_true",
                        help="every problem of the recipe's data must have a row in the table (levels.require_all)")

    sp = with_recipe("check", "check the whole recipe (in seconds, nothing is run) and print the plan", work=False)
    sp.add_argument("--table", help="the pass-rate table `stagerl levels --table` would use (the same checks)")
    sp.add_argument("--table-form", help=TABLE_FORM_HELP)
    sp.add_argument("--export", metavar="DIR", help="the folder `stagerl levels --export` would write")
    table_options(sp)

    sp = with_recipe("score", "sample each problem k times per reference model; write pass_rates.parquet")
    sp.add_argument("--fixed", action="store_true", help="the paper's fixed protocol: all k samples for every pair")
    sp.add_argument("--limit", type=int, help="score only the first N problems")
    sp.add_argument("--rescore-changed", action="store_true",
                    help="delete the stored samples of problems whose prompt changed, and draw them again")

    sp = with_recipe("levels", "cut scored problems into difficulty levels by the recipe's rules")
    sp.add_argument("--table", help="a pass-rate table made elsewhere (parquet/csv/jsonl, long or one column per model; "
                    "with --table-form also a folder of our export or hf:NAME[:FILES])")
    sp.add_argument("--table-form", help=TABLE_FORM_HELP)
    sp.add_argument("--export", metavar="DIR", help="also write a Hugging Face dataset folder with a dataset card "
                    "(built aside, swapped in when complete)")
    sp.add_argument("--format", choices=("hf", "verl"), default="hf",
                    help="--export as a Hugging Face dataset folder (hf) or as verl RL parquet files (verl)")
    table_options(sp)

    sp = sub.add_parser("export-plan", help="the recipe's staged plan as another trainer's commands (docs/verl.md)",
                        description="the recipe's staged plan as another trainer's commands (markdown on stdout)")
    sp.add_argument("recipe", help=RECIPE_HELP)
    sp.add_argument("--format", choices=("verl",), default="verl", help="the trainer (verl)")
    sp.add_argument("--data", default="$DATA", help="the folder `stagerl levels --export DIR --format verl` wrote")

    sp = with_recipe("train", "staged GRPO training of the policy on the levels (TRL)")
    sp.add_argument("--retrain", action="store_true", help=RETRAIN_HELP)

    sp = with_recipe("eval", "pass@1 averaged over k samples on the recipe's benchmarks")
    sp.add_argument("--checkpoint", action="append", metavar="NAME=PATH",
                    help="evaluate this checkpoint (repeatable); default: base policy and every finished stage")
    sp.add_argument("--benchmark", action="append", metavar="NAME",
                    help="only this benchmark (repeatable): one of the recipe's, or a built-in set (math500, lcb_test, ...)")
    sp.add_argument("--limit", type=int, help="evaluate only the first N problems of each benchmark")
    sp.add_argument("--k", type=int, help="samples per problem (overrides the recipe's k)")

    sp = sub.add_parser("recipe", help="print a built-in recipe's YAML (start your own from it)",
                        description="print a built-in recipe's YAML, comments and all: "
                                    "`stagerl recipe demo > my.yaml`, then edit")
    sp.add_argument("builtin", nargs="?", help="a built-in recipe name; none lists them")

    sp = sub.add_parser("report", help="one HTML page (report/index.html) and its markdown twin from a run folder",
                        description="one self-contained HTML page (report/index.html) and its markdown twin "
                                    "(report/report.md) from a run folder's files")
    sp.add_argument("run_dir", help="the run folder (e.g. runs/demo-...)")

    sp = sub.add_parser("status", help="where runs stand: who works in them, scoring, levels, each stage's step, "
                        "evaluations (reads files only; any time, also mid-run)",
                        description="where runs stand, read from their folders without loading anything or taking "
                                    "their lock: the process working there now (or how the last command ended), "
                                    "scoring, levels, each stage's step, reward, dev score and pace, evaluations")
    sp.add_argument("run_dirs", nargs="+", metavar="RUN",
                    help="run folders, or a folder holding run folders up to 3 levels down (runs/, runs/experiments/)")

    sp = sub.add_parser("compare", help="several runs on one page: curves, final scores, paired differences",
                        description="several runs on one page: dev and benchmark curves over steps, final scores "
                                    "with 95%% intervals, paired differences against the first run")
    sp.add_argument("runs", nargs="+", metavar="RUN", help="run folders (the first is the reference)")
    sp.add_argument("--out", required=True, metavar="DIR", help="folder for index.html, report.md, compare.json")

    sp = with_recipe("run", "the whole recipe: score, levels, eval base, train, eval stages, report")
    sp.add_argument("--retrain", action="store_true", help=RETRAIN_HELP)

    sp = sub.add_parser("demo", help="the whole recipe on the embedded SmolLM2-135M, on the CPU (README: its time)",
                        description="the whole recipe on the embedded SmolLM2-135M, on the CPU (the README gives "
                                    "its measured time and the machine)")
    sp.add_argument("--runs-dir", default="runs", help="parent folder of the run folder (default: runs)")
    sp.add_argument("--name", help="run name (default: demo-<timestamp>)")
    sp.add_argument("--wait", action="store_true", help="wait for another process working in the run folder")
    for command in sub.choices.values():  # every command: quiet by default (console.py)
        command.add_argument("--verbose", action="store_true", help="also show the libraries' logs, warnings, "
                             "progress bars and TRL's raw per-step dictionaries")
    return p


def _table(args: argparse.Namespace):
    """``--table``, converted first through ``--table-form`` (or from an ``hf:`` source) to a long table file."""
    if args.table and (args.table_form or str(args.table).startswith("hf:")):
        from .scoring.published import convert

        return str(convert(args.table, args.table_form))
    return args.table


def _check(args: argparse.Namespace) -> int:
    from .checks import inspect_recipe, plan_lines

    recipe = _recipe(args)
    found = inspect_recipe(recipe, args.world_size, "check", table=_table(args), export=args.export)
    print("\n".join(plan_lines(recipe, found)))
    return 2 if found.errors else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import console

    console.setup(args.verbose)
    if argv is None:  # the command itself (not main([...]) inside a program that may train in-process):
        from .train.trl_vllm import ENV  # it builds no trainer (stages train in children), so TRL need not import vLLM

        os.environ.setdefault(ENV, "0")
    from . import pipeline

    common = {k: getattr(args, k) for k in ("wait",) if hasattr(args, k)}
    if hasattr(args, "world_size") and args.command != "check":
        common["world"] = args.world_size
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "recipe":
            from .config import builtin_recipe_text

            print(builtin_recipe_text(args.builtin), end="")
            return 0
        if args.command == "score":
            pipeline.run_score(_recipe(args), fixed=args.fixed, limit=args.limit,
                               rescore_changed=args.rescore_changed, **common)
        elif args.command == "levels":
            pipeline.run_levels(_recipe(args), table_path=_table(args), export=args.export,
                                export_format=args.format, **common)
        elif args.command == "train":
            pipeline.run_train(_recipe(args), retrain=args.retrain, **common)
        elif args.command == "eval":
            pipeline.run_eval(_eval_recipe(args), _checkpoint_pairs(args.checkpoint), **common)
        elif args.command == "export-plan":
            from .config import load_recipe
            from .curriculum.verl_plan import verl_plan

            print(verl_plan(load_recipe(args.recipe), args.data), end="")
        elif args.command == "report":
            pipeline.run_report(args.run_dir)
        elif args.command == "status":
            from .status import run_status

            run_status(args.run_dirs)
        elif args.command == "compare":
            pipeline.run_compare(args.runs, args.out)
        elif args.command == "run":
            pipeline.run_all(_recipe(args), retrain=args.retrain, **common)
        elif args.command == "demo":
            run_dir = pipeline.demo(runs_dir=args.runs_dir, name=args.name, **common)
            print(f"\nDemo finished. Run folder: {run_dir}\nReport: {run_dir / 'report' / 'index.html'}")
    except KeyboardInterrupt:
        print("interrupted: everything generated so far is stored; run the same command again to resume",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:  # config, data, level and file errors: say what and where
        if os.environ.get("STAGERL_TRACEBACK"):  # where it came from, for a bug report or an unattended run's log
            traceback.print_exc()
        print(f"stagerl {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
