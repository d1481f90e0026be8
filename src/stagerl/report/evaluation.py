"""Report sections on evaluation (intervals, paired differences, pass@k, breakdowns), cost and
sandbox mode, from results.json, eval/compare.json, ledger.json and stage.json."""

from __future__ import annotations

from pathlib import Path

from . import plots
from .page import Page
from .read import fmt, fmt_ci, fmt_diff, read_json


def results_table(page: Page, results: dict[str, dict], name: str, label: str = "checkpoint") -> None:
    """benchmark × checkpoint (or run): pass@1 [95% CI], with the benchmark's note beside it."""
    cols = list(results)
    benches = list(dict.fromkeys(b for r in results.values() for b in r))
    rows = []
    for b in benches:
        first = next(r[b] for r in results.values() if b in r)
        notes = list(dict.fromkeys(r[b]["note"] for r in results.values() if b in r and r[b].get("note")))
        rows.append([b, first.get("k", "?"), first.get("problems", "?")]
                    + [fmt_ci(results[c][b]) if b in results[c] else "-" for c in cols] + ["; ".join(notes) or "-"])
    page.table(["benchmark", "k", "problems"] + cols + ["note"], rows, name)
    method = next((r[b].get("ci_method") for r in results.values() for b in r if r[b].get("ci_method")), None)
    if method:
        page.text(f"Cells: pass@1 averaged over k samples [95% interval: {method}].")


def pairs_table(page: Page, pairs: list[dict], name: str) -> None:
    rows = [[p["benchmark"], f"{p['a']} − {p['b']}", p["problems"], fmt(p["a_pass@1"]), fmt(p["b_pass@1"]),
             fmt_diff(p), fmt(p["p_value"]), f"{p['wins']}/{p['losses']}/{p['ties']}"] for p in pairs]
    page.table(["benchmark", "a − b", "paired problems", "a pass@1", "b pass@1", "difference [95% CI]", "p-value",
                "wins/losses/ties"], rows, name)


def eval_section(page: Page, run_dir: Path, results: dict[str, dict], palette: plots.Palette) -> None:
    page.section("Evaluation")
    if not results:
        page.missing("No eval/*/results.json: no checkpoint has been evaluated.")
        return
    results_table(page, results, "eval")
    for b, note in dict.fromkeys((b, r[b]["note"]) for r in results.values() for b in r if r[b].get("note")):
        page.note(f"{b}: {note}")
    page.image(plots.benchmark_bars(results, palette), "benchmarks",
               "pass@1 per benchmark for base and each stage, with 95% intervals")
    page.sub("Paired comparisons (same problems, problem by problem)")
    compare = read_json(run_dir / "eval" / "compare.json")
    if compare and compare.get("pairs"):
        pairs_table(page, compare["pairs"], "paired")
        page.text(f"Method: {compare.get('method', '?')}. Wins: problems where a's pass rate is higher.")
    else:
        page.missing("No eval/compare.json pairs: fewer than two checkpoints evaluated on the same problems.")
    page.sub("pass@k (unbiased estimator)")
    kmax = max((len(r[b].get("pass@k", {})) for r in results.values() for b in r), default=0)
    rows = [[b, c] + [fmt(r[b]["pass@k"][str(k)]["value"]) if str(k) in r[b].get("pass@k", {}) else "-"
                      for k in range(1, kmax + 1)] for c, r in results.items() for b in r]
    page.table(["benchmark", "checkpoint"] + [f"pass@{k}" for k in range(1, kmax + 1)], rows, "passk")
    page.image(plots.pass_at_k_curves(results, palette), "passk", "pass@k against k per benchmark")
    page.sub("Breakdowns")
    rows = []
    for c, r in results.items():
        for b, res in r.items():
            for kind in ("by_domain", "by_level", "by_difficulty"):
                for group, g in (res.get(kind) or {}).items():
                    rows.append([b, c, kind[3:], group, g["problems"], fmt_ci(g)])
    if rows:
        page.table(["benchmark", "checkpoint", "by", "group", "problems", "pass@1 [95% CI]"], rows, "breakdowns")
        page.text("level: the run's levels (problems of the benchmark found in levels/*.parquet); "
                  "difficulty: the benchmark's own level field (MATH: 1-5).")
    else:
        page.missing("No breakdowns in results.json.")
    page.sub("Truncation")
    rows = [[b, c, fmt(res.get("truncated")), fmt(res.get("truncated_share")), fmt(res.get("mean_tokens"), 0),
             fmt(res.get("max_tokens"))] for c, r in results.items() for b, res in r.items()]
    page.table(["benchmark", "checkpoint", "truncated samples", "truncated share", "mean tokens", "max_tokens"],
               rows, "truncation")


def cost_section(page: Page, run_dir: Path, stages: list[dict], results: dict[str, dict]) -> None:
    """Generated tokens and seconds of every phase that recorded them."""
    page.section("Cost ledger")
    rows = []
    ledger = read_json(run_dir / "ledger.json") or {}
    for model, c in (ledger.get("models") or {}).items():
        rows.append(["scoring", model, c.get("tokens"), c.get("seconds")])
    for s in stages:
        cost = s["info"].get("cost") or {}
        if cost or "seconds" in s["info"]:
            rows.append(["training", s["dir"], cost.get("tokens"), cost.get("seconds", s["info"].get("seconds"))])
        rc = (s["relevel"] or {}).get("cost") or {}
        if rc:
            rows.append(["re-levelling", s["dir"], rc.get("tokens"), rc.get("seconds")])
    for c, r in results.items():
        for b, res in r.items():
            if "tokens" in res or "seconds" in res:
                rows.append(["evaluation", f"{c} on {b}", res.get("tokens"), res.get("seconds")])
    if not rows:
        page.missing("No cost recorded (ledger.json, stage.json cost, results.json).")
        return
    tokens = sum(r[2] or 0 for r in rows)
    seconds = sum(r[3] or 0 for r in rows)
    page.table(["phase", "what", "generated tokens", "seconds"],
               [[a, b, fmt(t), fmt(float(s), 1) if s is not None else "-"] for a, b, t, s in rows]
               + [["total", "", fmt(tokens), fmt(float(seconds), 1)]], "cost")
    page.text("Training seconds include generation and optimisation; scoring and evaluation seconds are "
              "generation time shared out over the samples of each engine call.")


def sandbox_section(page: Page, run_dir: Path, stages: list[dict], results: dict[str, dict]) -> None:
    """The isolation mode that ran model-written code, wherever a phase recorded it."""
    page.section("Sandbox")
    rows = []
    ledger = read_json(run_dir / "ledger.json") or {}
    if isinstance(ledger.get("sandbox"), dict):
        rows.append(["scoring", ledger["sandbox"]])
    for s in stages:
        if isinstance(s["info"].get("sandbox"), dict):
            rows.append([f"training {s['dir']}", s["info"]["sandbox"]])
    for c, r in results.items():
        for b, res in r.items():
            if isinstance(res.get("sandbox"), dict):
                rows.append([f"evaluation {c} on {b}", res["sandbox"]])
    if not rows:
        page.missing("No sandbox mode recorded in ledger.json, stage.json or results.json.")
        return
    page.table(["phase", "mode", "status"], [[w, r.get("mode", "?"), r.get("status", "")] for w, r in rows], "sandbox")
    if any(r.get("mode") == "unsafe-limits" for _, r in rows):
        page.warn("Some model-written code ran under unsafe-limits: resource limits only, NOT isolated from the host.")
