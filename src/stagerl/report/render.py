"""The run report: ``report/report.md`` plus PNG plots, built from run-folder files alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ..curriculum.stages import stage_folders
from ..rundir import read_jsonl
from .plots import plot_benchmarks, plot_pass_rates, plot_training


def read_stages(run_dir: Path) -> list[dict]:
    """Each stage folder's stage.json (if any) with its metrics.jsonl lines, in stage order."""
    stages = []
    for d in stage_folders(run_dir):
        info = json.loads((d / "stage.json").read_text()) if (d / "stage.json").exists() else {}
        metrics_path = d / "metrics.jsonl"
        metrics = read_jsonl(metrics_path) if metrics_path.exists() else []  # a torn line names file and line
        cfg = info.get("config", {})
        stages.append({"dir": d.name, "name": cfg.get("name", d.name), "levels": cfg.get("levels", []), "info": info, "metrics": metrics})
    return stages


def read_eval(run_dir: Path) -> dict[str, dict]:
    """``{checkpoint: {benchmark: results}}`` from eval/<checkpoint>/results.json, base first."""
    out = {}
    paths = sorted((run_dir / "eval").glob("*/results.json"), key=lambda p: (p.parent.name != "base", p.stat().st_mtime))
    for p in paths:
        out[p.parent.name] = json.loads(p.read_text())
    return out


def build_report(run_dir: str | Path) -> Path:
    """Write ``<run>/report/report.md`` and its plots; return the markdown path."""
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    md: list[str] = [f"# stagerl run `{run_dir.name}`", ""]
    recipe_path = run_dir / "recipe.yaml"
    recipe = yaml.safe_load(recipe_path.read_text()) if recipe_path.exists() else {}
    if recipe:
        models = ", ".join(m["name"] for m in recipe.get("scoring", {}).get("models", []))
        md += [f"Policy: `{recipe.get('train', {}).get('policy', '?')}`. Reference models: {models or 'none'}. "
               f"Recipe: [`recipe.yaml`](../recipe.yaml).", ""]

    md += _sandbox_line(run_dir)
    md += _scoring_section(run_dir, out)
    md += _levels_section(run_dir)
    md += _training_section(run_dir, out)
    md += _eval_section(run_dir, out)
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path


def _scoring_section(run_dir: Path, out: Path) -> list[str]:
    table_path = run_dir / "pass_rates.parquet"
    if not table_path.exists():
        return []
    table = pd.read_parquet(table_path)
    md = ["## Difficulty scoring", "", "| model | problems | samples | mean pass rate | solved ≥ 1 | mean tokens |",
          "|---|---|---|---|---|---|"]
    for model, g in table.groupby("model", sort=False):
        md.append(f"| {model} | {len(g)} | {int(g['samples'].sum())} | {g['pass_rate'].mean():.3f} | "
                  f"{int((g['successes'] > 0).sum())} | {g['mean_tokens'].mean():.0f} |")
    ledger_path = run_dir / "ledger.json"
    if ledger_path.exists():
        ledger = json.loads(ledger_path.read_text())
        total = ledger.get("total", {})
        if total:
            md += ["", f"Cost: {total.get('tokens', 0):,} generated tokens in {total.get('seconds', 0):.0f} s "
                       f"({total.get('samples', 0):,} samples)."]
    if plot_pass_rates(table, out / "pass_rates.png"):
        md += ["", "![pass rates](pass_rates.png)"]
    return md + [""]


def _levels_section(run_dir: Path) -> list[str]:
    stats_path = run_dir / "levels" / "stats.json"
    if not stats_path.exists():
        return []
    stats = json.loads(stats_path.read_text())
    levels = stats.get("levels", {})
    domains = sorted({d for c in levels.values() for d in c if d != "total"})
    md = ["## Levels", "", f"{stats.get('problems', '?')} problems scored; {stats.get('dropped', 0)} dropped by the keep "
          f"rule; {stats.get('in_no_level', '?')} in no level.", "",
          "| level | problems | " + " | ".join(domains) + " |", "|---|---|" + "---|" * len(domains)]
    for name, counts in levels.items():
        md.append(f"| {name} | {counts.get('total', 0)} | " + " | ".join(str(counts.get(d, 0)) for d in domains) + " |")
    overlaps = {k: v for k, v in stats.get("overlaps", {}).items() if v}
    if overlaps:
        md += ["", "Overlaps: " + ", ".join(f"{k} {v}" for k, v in overlaps.items()) + "."]
    md.append("")
    for png in sorted((run_dir / "levels").glob("*.png")):
        md.append(f"![{png.stem}](../levels/{png.name})")
    return md + [""]


def _training_section(run_dir: Path, out: Path) -> list[str]:
    stages = read_stages(run_dir)
    if not stages:
        return []
    md = ["## Training", "", "| stage | levels | steps | ended because | first reward | last reward |", "|---|---|---|---|---|---|"]
    for s in stages:
        rewards = [m["reward"] for m in s["metrics"] if m.get("reward") is not None]
        first = f"{rewards[0]:.3f}" if rewards else "-"
        last = f"{rewards[-1]:.3f}" if rewards else "-"
        steps = sum(1 for m in s["metrics"] if m.get("step", 1) >= 1)  # a step-0 row holds only the dev baseline
        md.append(f"| {s['name']} | {', '.join(s['levels'])} | {steps} | {s['info'].get('reason', '?')} | {first} | {last} |")
    for s in stages:
        md += _online_lines(run_dir / "stages" / s["dir"], s)
    if plot_training(stages, out / "training.png"):
        md += ["", "![training curves](training.png)"]
    return md + [""]


def _online_lines(folder: Path, stage: dict) -> list[str]:
    """A stage's re-levelling (relevel.json: moves from old to new level, cost) and its online
    filtering totals (groups generated / dropped / skipped in metrics.jsonl), when it had them."""
    md: list[str] = []
    if (folder / "relevel.json").exists():
        info = json.loads((folder / "relevel.json").read_text())
        cols = sorted({c for row in info["moves"].values() for c in row}, key=lambda c: (c == "dropped", c))
        cost = info.get("cost", {})
        md += ["", f"Re-levelling before {stage['name']} (band {info['band']} for the policy it starts from; "
                   f"{info['kept']} of {info['candidates']} candidates kept; cost {cost.get('tokens', 0):,} tokens, "
                   f"{cost.get('samples', 0):,} samples, {cost.get('seconds', 0):.0f} s):", "",
               "| old level | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        md += [f"| {old} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |" for old, row in info["moves"].items()]
    rows = [m for m in stage["metrics"] if m.get("groups_generated") is not None]
    if rows:
        total = {k: int(sum(m.get(k) or 0 for m in rows)) for k in ("groups_generated", "groups_dropped",
                                                                     "groups_skipped", "groups_signal")}
        md += ["", f"Online filtering in {stage['name']}: {total['groups_generated']} groups generated, "
                   f"{total['groups_dropped']} dropped (all rewards equal), {total['groups_skipped']} prompts skipped "
                   f"as predicted all-equal; {total['groups_signal']} trained groups carried signal."]
    return md


def _eval_section(run_dir: Path, out: Path) -> list[str]:
    results = read_eval(run_dir)
    if not results:
        return []
    benches = list(dict.fromkeys(b for r in results.values() for b in r))
    ckpts = list(results)
    md = ["## Evaluation (pass@1 averaged over k samples)", "",
          "| benchmark | k | " + " | ".join(ckpts) + " |", "|---|---|" + "---|" * len(ckpts)]
    for b in benches:
        k = next((r[b]["k"] for r in results.values() if b in r), "?")
        cells = [f"{results[c][b]['pass@1']:.3f}" if b in results[c] else "-" for c in ckpts]
        md.append(f"| {b} | {k} | " + " | ".join(cells) + " |")
    if plot_benchmarks(results, out / "benchmarks.png"):
        md += ["", "![benchmarks](benchmarks.png)"]
    return md + [""]


def _sandbox_line(run_dir: Path) -> list[str]:
    """Which code isolation each stage's grading ran under (``sandbox`` in ledger.json, stage.json, results.json)."""
    modes: dict[str, list[str]] = {}
    for p in [run_dir / "ledger.json", *sorted(run_dir.glob("stages/*/stage.json")), *sorted(run_dir.glob("eval/*/results.json"))]:
        if not p.exists():
            continue
        data = json.loads(p.read_text())
        recs = [data.get("sandbox")] + ([v.get("sandbox") for v in data.values() if isinstance(v, dict)] if p.name == "results.json" else [])
        for mode in {r["mode"] for r in recs if isinstance(r, dict) and r.get("mode")}:
            modes.setdefault(mode, []).append(str(p.relative_to(run_dir)))
    if not modes:
        return []
    line = "Code sandbox: " + "; ".join(f"`{m}` ({', '.join(ps)})" for m, ps in modes.items()) + "."
    if set(modes) - {"bwrap"}:
        line = ("**Warning: model-written code ran WITHOUT isolation (`rewards.sandbox: unsafe-limits`), see "
                "docs/sandbox.md.** " + line)
    return [line, ""]
