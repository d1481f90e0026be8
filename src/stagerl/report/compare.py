"""``stagerl compare RUN... --out DIR``: several runs on one page (the paper's figure 1: runs
trained on L1, L2 and L3 side by side). Writes ``DIR/index.html``, ``DIR/report.md`` and
``DIR/compare.json`` (final scores and paired differences against the first run)."""

from __future__ import annotations

from pathlib import Path

from ..evaluate.compare import compare_pair
from ..evaluate.stats import PAIRED_METHOD
from ..rundir import write_json
from . import plots
from .evaluation import pairs_table, results_table
from .page import Page
from .read import checkpoint_steps, fmt, read_eval, read_recipe, read_stages, step_count


def _names(run_dirs: list[Path]) -> list[str]:
    names = [d.name for d in run_dirs]
    if len(set(names)) < len(names):  # two runs of one name in different parents
        names = [f"{d.parent.name}/{d.name}" for d in run_dirs]
    if len(set(names)) < len(names):
        raise ValueError(f"compare: runs given twice: {[str(d) for d in run_dirs]}")
    return names


def build_comparison(run_dirs: list[Path], out: Path) -> Path:
    """Compare ``run_dirs`` (the first is the reference of the paired differences); return the HTML path."""
    if len(run_dirs) < 2:
        raise ValueError("compare: give at least two run folders")
    for d in run_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"compare: no run folder {d}")
    names = _names(run_dirs)
    dirs = dict(zip(names, run_dirs))
    stages = {n: read_stages(d) for n, d in dirs.items()}
    evals = {n: read_eval(d) for n, d in dirs.items()}
    palette = plots.Palette(names)
    page = Page(f"stagerl comparison of {len(names)} runs")
    page.text("Runs: " + ", ".join(f"{n} (`{d}`)" for n, d in dirs.items()) + f". Reference for the paired "
              f"differences: {names[0]}.")

    page.section("Runs")
    rows = []
    for n, d in dirs.items():
        st = stages[n]
        rewards = [m["reward"] for s in st for m in s["metrics"] if isinstance(m.get("reward"), (int, float))]
        dev = [m["dev_score"] for s in st for m in s["metrics"] if isinstance(m.get("dev_score"), (int, float))]
        levels = "; ".join(f"{s['dir']}: {', '.join(s['levels']) or '-'}" for s in st) or "-"
        rows.append([n, read_recipe(d).get("train", {}).get("policy", "?"), levels, sum(step_count(s) for s in st),
                     fmt(rewards[-1] if rewards else None), fmt(dev[-1] if dev else None)])
    page.table(["run", "policy", "stages (levels)", "steps", "last reward", "last dev score"], rows, "runs")

    page.section("Curves over training")
    dev_png = plots.run_curves(stages, "dev_score", "Held-out dev score per run", "dev pass@1", palette)
    page.image(dev_png, "dev", "held-out dev score over steps, one line per run")
    if not dev_png:
        page.missing("No dev_score rows in any run's metrics.jsonl.")
    page.image(plots.run_curves(stages, "reward", "Training reward per run (smoothed over 5 steps)", "mean reward",
                                palette, window=5), "reward", "training reward over steps, one line per run")
    points: dict[str, dict[str, list[tuple]]] = {}
    for n, d in dirs.items():
        steps = checkpoint_steps(d, stages[n])
        for ckpt, res in evals[n].items():
            if ckpt not in steps:
                continue
            for b, r in res.items():
                lo, hi = r.get("ci95", [r["pass@1"], r["pass@1"]])
                points.setdefault(b, {}).setdefault(n, []).append((steps[ckpt], r["pass@1"], lo, hi))
    png = plots.benchmark_over_steps(points, palette)
    page.image(png, "benchmarks_over_steps", "benchmark pass@1 of each run's checkpoints over training steps")
    if not png:
        page.missing("No evaluated checkpoints in these runs.")

    final = {n: _final(ev) for n, ev in evals.items()}
    page.section("Final scores")
    if any(final.values()):
        results_table(page, {n: {b: r for b, (_, r) in f.items()} for n, f in final.items()}, "final", "run")
        page.table(["run"] + sorted({b for f in final.values() for b in f}),
                   [[n] + [f[b][0] if b in f else "-" for b in sorted({b for f in final.values() for b in f})]
                    for n, f in final.items()], "final-checkpoints")
        page.text("Second table: the checkpoint each run's final score comes from (its last evaluated one).")
    else:
        page.missing("No run has an evaluated checkpoint.")

    pairs = []
    ref = names[0]
    for n in names[1:]:
        for b, (ckpt, _) in final[n].items():
            if b not in final[ref]:
                continue
            r = compare_pair(dirs[n] / "eval", ckpt, dirs[ref] / "eval", final[ref][b][0], b)
            if r:
                r.update(a=f"{n}:{ckpt}", b=f"{ref}:{final[ref][b][0]}")
                pairs.append(r)
    page.section("Paired differences")
    if pairs:
        pairs_table(page, pairs, "paired")
        page.text(f"Paired by problem id from the runs' eval stores. Method: {PAIRED_METHOD}.")
    else:
        page.missing("No benchmark problems shared by the runs' final checkpoints (or their eval stores are missing).")

    out.mkdir(parents=True, exist_ok=True)
    summary = {"runs": {n: {"dir": str(dirs[n]), "final": {b: {"checkpoint": c, "pass@1": r["pass@1"],
                                                                "ci95": r.get("ci95")} for b, (c, r) in final[n].items()}}
                        for n in names},
               "method": PAIRED_METHOD, "pairs": pairs}
    write_json(out / "compare.json", summary)
    return page.write(out)


def _final(results: dict[str, dict]) -> dict[str, tuple[str, dict]]:
    """``{benchmark: (checkpoint, results)}`` of the last evaluated checkpoint per benchmark."""
    out = {}
    for ckpt, res in results.items():  # read_eval lists base first, then stages in order
        for b, r in res.items():
            out[b] = (ckpt, r)
    return out
