"""The run report: ``report/index.html`` (one self-contained page) and its twin ``report/report.md``
with PNG plots, built from run-folder files alone. A section whose files are absent says so."""

from __future__ import annotations

import json
from pathlib import Path

from . import plots
from .evaluation import cost_section, eval_section, sandbox_section
from .page import Page
from .read import fmt, read_eval, read_json, read_recipe, read_stages, read_table, step_count


def build_report(run_dir: str | Path) -> Path:
    """Write ``<run>/report/index.html`` and ``report.md`` (+ PNGs); return the HTML path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder {run_dir}")
    page = Page(f"stagerl run {run_dir.name}")
    recipe = read_recipe(run_dir)
    stages = read_stages(run_dir)
    results = read_eval(run_dir)
    table = read_table(run_dir)
    models = [m["name"] for m in recipe.get("scoring", {}).get("models", [])]
    palette = plots.Palette(models + [s["dir"] for s in stages] + list(results))
    given = table is None and _table_info(run_dir)
    if recipe:
        refs = "none scored here (the levels come from a table made elsewhere)" if given else ", ".join(models) or "none"
        page.text(f"Policy: `{recipe.get('train', {}).get('policy', '?')}`. Reference models: "
                  f"{refs}. The recipe as run: `recipe.yaml` in the run folder.")
    else:
        page.missing("No recipe.yaml in this run folder.")
    _sandbox_line(page, run_dir)
    _scoring_section(page, run_dir, table, palette)
    _levels_section(page, run_dir, stages, palette)
    _training_section(page, stages, palette)
    eval_section(page, run_dir, results, palette)
    cost_section(page, run_dir, stages, results)
    sandbox_section(page, run_dir, stages, results)
    return page.write(run_dir / "report")


def _table_info(run_dir: Path) -> dict | None:
    """What ``levels --table`` recorded of a table made elsewhere (path, rows, columns, models)."""
    return ((read_json(run_dir / "levels" / "stats.json") or {}).get("inputs") or {}).get("table_info")


def _scoring_section(page: Page, run_dir: Path, table, palette: plots.Palette) -> None:
    page.section("Difficulty scoring")
    given = _table_info(run_dir)
    if given:  # levels built from a table made elsewhere (`stagerl levels --table`)
        page.text(f"Pass rates from a table made elsewhere, not scored here: `{given.get('path')}` "
                  f"({fmt(given.get('rows'))} rows; columns: {', '.join(map(str, given.get('columns', [])))}; "
                  f"models: {', '.join(map(str, given.get('models', []))) or 'none'}). How its rates were "
                  "sampled is not recorded in it.")
    if table is None:
        if not given:
            page.missing("No pass_rates.parquet: difficulty scoring has not run.")
        return
    ledger = read_json(run_dir / "ledger.json") or {}
    per = ledger.get("models", ledger)
    rows = []
    for model, g in table.groupby("model", sort=False):
        cost = per.get(model, {}) if isinstance(per.get(model), dict) else {}
        rows.append([model, len(g), int(g["samples"].sum()), fmt(g["pass_rate"].mean()), int((g["successes"] > 0).sum()),
                     int((g["successes"] == g["samples"]).sum()), fmt(g["mean_tokens"].mean(), 0),
                     fmt(cost.get("tokens")), fmt(cost.get("seconds"), 0)])
    page.table(["model", "problems", "samples", "mean pass rate", "solved ≥ 1", "solved every time", "mean tokens",
                "tokens (ledger)", "seconds (ledger)"], rows, "scoring")
    total = ledger.get("total", {})
    if total:
        page.text(f"Cost of scoring: {fmt(total.get('tokens'))} generated tokens in {fmt(total.get('seconds'), 0)} s "
                  f"({fmt(total.get('samples'))} samples).")
    else:
        page.missing("No ledger.json: the cost of scoring is unknown.")
    page.image(plots.pass_rate_histograms(table, palette), "pass_rates", "pass-rate histograms per reference model")


def _levels_section(page: Page, run_dir: Path, stages: list[dict], palette: plots.Palette) -> None:
    page.section("Levels")
    stats = read_json(run_dir / "levels" / "stats.json")
    if not stats:
        page.missing("No levels/stats.json: levels have not been built.")
    else:
        levels = stats.get("levels", {})
        domains = sorted({d for c in levels.values() for d in c if d != "total"})
        page.text(f"{fmt(stats.get('problems'))} problems with rates; {fmt(stats.get('dropped'))} dropped by the keep "
                  f"rule; {fmt(stats.get('in_no_level'))} in no level.")
        page.table(["level", "problems"] + domains,
                   [[n, c.get("total", 0)] + [c.get(d, 0) for d in domains] for n, c in levels.items()], "levels")
        names = list(levels)
        if len(names) > 1:
            ov = stats.get("overlaps", {})
            page.sub("Overlaps (problems in both levels)")
            page.table(["level"] + names, [[a] + [levels[a].get("total", 0) if a == b else
                                                  ov.get(f"{a}&{b}", ov.get(f"{b}&{a}", 0)) for b in names]
                                           for a in names], "overlaps")
        page.image(plots.level_counts(stats, palette), "levels", "problems per level and domain")
    moved = [s for s in stages if s["relevel"]]
    page.sub("Re-levelling during training")
    if not moved:
        page.missing("No stages/*/relevel.json: problems were not re-levelled during training.")
    for s in moved:
        info = s["relevel"]
        moves = info.get("moves", {})
        targets = sorted({t for row in moves.values() for t in row}, key=lambda c: (c == "dropped", c))
        cost = info.get("cost", {})
        page.text(f"Re-levelling before {s['name']} (band {info.get('band', '?')} for the policy it starts from; "
                  f"{info.get('kept', '?')} of {info.get('candidates', '?')} candidates kept; cost "
                  f"{fmt(cost.get('tokens', 0))} tokens, {fmt(cost.get('samples', 0))} samples, "
                  f"{fmt(float(cost.get('seconds', 0)), 0)} s). Rows: old level; columns: new level.")
        page.table(["old level"] + targets, [[old] + [row.get(t, 0) for t in targets] for old, row in moves.items()],
                   f"relevel-{s['dir']}")


def _training_section(page: Page, stages: list[dict], palette: plots.Palette) -> None:
    page.section("Training")
    if not stages:
        page.missing("No stages/: training has not run.")
        return
    rows = []
    for s in stages:
        rewards = [m["reward"] for m in s["metrics"] if isinstance(m.get("reward"), (int, float))]
        dev = [m["dev_score"] for m in s["metrics"] if isinstance(m.get("dev_score"), (int, float))]
        loss = s["info"].get("loss")
        loss = ", ".join(f"{k}={v}" for k, v in loss.items()) if isinstance(loss, dict) else (loss or "-")
        rows.append([s["dir"], ", ".join(s["levels"]) or "-", step_count(s), s["info"].get("reason", "not finished"),
                     fmt(rewards[0] if rewards else None), fmt(rewards[-1] if rewards else None),
                     fmt(dev[0] if dev else None), fmt(dev[-1] if dev else None), loss])
    page.table(["stage", "levels", "steps", "ended because", "first reward", "last reward", "first dev score",
                "last dev score", "loss"], rows, "training")
    for s in stages:
        loss = s["info"].get("loss") if isinstance(s["info"].get("loss"), dict) else {}
        kept = s["info"].get("kept")
        if isinstance(kept, dict):
            page.text(f"{s['name']} kept the policy of its best dev score (keep_best): step {kept.get('step')}, "
                      f"dev score {fmt(kept.get('dev_score'))}, against {fmt(kept.get('last_dev_score'))} at its last "
                      f"step {kept.get('last_step')}. The next stage and the evaluation use that policy; its dev "
                      "score, a maximum over noisy evaluations, is optimistic: judge it on held-out problems.")
        if loss.get("beta") == 0:
            page.text(f"{s['name']} trained with beta = 0: no reference model and no KL penalty (the recipe's "
                      "choice; the KL term it drops is in the stage's settings).")
        rows = [m for m in s["metrics"] if m.get("groups_generated") is not None]
        if rows:
            total = {k: int(sum(m.get(k) or 0 for m in rows)) for k in (
                "groups_generated", "groups_dropped", "groups_skipped", "groups_signal", "groups_skipped_seeded",
                "groups_explored", "groups_explored_signal")}
            page.text(f"Online filtering in {s['name']}: {total['groups_generated']} groups generated, "
                      f"{total['groups_dropped']} dropped (all rewards equal), {total['groups_skipped']} prompts "
                      f"skipped as predicted all-equal ({total['groups_skipped_seeded']} of them on an estimate seeded "
                      f"from the run's own samples of the policy); {total['groups_signal']} trained groups carried "
                      f"signal. Held-out check of the skip rule: {total['groups_explored']} would-be skips generated "
                      f"anyway, {total['groups_explored_signal']} of them carried signal.")
        for key, what in (("sampling/is_masked_share", "masked (weight 0)"), ("sampling/is_clipped_share", "clipped")):
            shares = [m[key] for m in s["metrics"] if isinstance(m.get(key), (int, float))]
            if shares:
                page.text(f"vLLM importance-sampling correction in {s['name']} ({loss.get('vllm_is_mode') or '?'}, "
                          f"bounds {loss.get('vllm_is_bounds') or '?'}): share {what} per step mean "
                          f"{fmt(sum(shares) / len(shares))}, max {fmt(max(shares))}, last {fmt(shares[-1])} "
                          f"over {len(shares)} steps.")
    page.image(plots.training_curves(stages, palette), "training",
               "training reward per stage with the stage switch, beside the held-out dev score")
    if not any("dev_score" in m for s in stages for m in s["metrics"]):
        page.missing("No dev_score rows in metrics.jsonl: no held-out dev evaluation ran during training.")
    page.sub("Signal meter")
    png = plots.signal_meter(stages, palette)
    if png:
        last = [m["signal"] for s in stages for m in s["metrics"] if isinstance(m.get("signal"), (int, float))]
        page.text(f"Share of GRPO groups whose rewards differ (a group of equal rewards has zero advantage and "
                  f"teaches nothing). Last step: {fmt(last[-1])}.")
        page.image(png, "signal", "signal meter: share of groups with non-zero reward variance")
    else:
        page.missing("No signal key in metrics.jsonl.")


def _sandbox_line(page: Page, run_dir: Path) -> None:
    """Which code isolation each stage's grading ran under (``sandbox`` in ledger.json, stage.json,
    results.json); a warning when any ran without isolation. The Sandbox section has the details."""
    modes: dict[str, list[str]] = {}
    for p in [run_dir / "ledger.json", *sorted(run_dir.glob("stages/*/stage.json")),
              *sorted(run_dir.glob("eval/*/results.json"))]:
        if not p.exists():
            continue
        data = json.loads(p.read_text())
        recs = [data.get("sandbox")] + ([v.get("sandbox") for v in data.values() if isinstance(v, dict)]
                                        if p.name == "results.json" else [])
        for mode in {r["mode"] for r in recs if isinstance(r, dict) and r.get("mode")}:
            modes.setdefault(mode, []).append(str(p.relative_to(run_dir)))
    if not modes:
        return
    line = "Code sandbox: " + "; ".join(f"`{m}` ({', '.join(ps)})" for m, ps in modes.items()) + "."
    if set(modes) - {"bwrap"}:
        page.warn("Model-written code ran WITHOUT isolation (`rewards.sandbox: unsafe-limits`), see "
                  "docs/sandbox.md. " + line)
    else:
        page.text(line)
