#!/usr/bin/env python
"""The tables of docs/results.md, printed from the experiments' run folders (nothing typed by hand):

    python experiments/tables.py                       # markdown on stdout, for runs/experiments
    python experiments/tables.py --plots docs/results  # also copy the comparison plots there
    python experiments/tables.py --into docs/results.md  # also write each table between its markers there

Reads ``<runs-dir>/seed<S>/<arm>/`` (levels/stats.json, stages/*/stage.json and metrics.jsonl,
eval/<checkpoint>/results.json, eval/compare.json: each checkpoint against the base, paired) and
``<runs-dir>/compare/<experiment>-seed<S>/compare.json`` (the arms against the experiment's first arm,
paired on the same held-out problems), as written by ``experiments/run.py``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import yaml

from stagerl.report.read import read_eval, read_json, read_stages
from stagerl.rundir import read_jsonl
from stagerl.store import SampleStore

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:   # power.py sits beside this file (loaded by path in the tests)
    sys.path.insert(0, str(HERE))
from pooled import markdown, pct, pooled_table, seeds_figure, steps_table, strata_table  # noqa: E402
from power import mdd_from_ci, seed_spread  # noqa: E402

ARMS = {"difficulty": ["difficulty-L1", "difficulty-L2", "difficulty-L3"],
        "staging": ["staging-staged", "staging-single", "staging-long"], "mixing": ["difficulty-L1", "mixing-mixed"]}
MIN_LEVEL = 30   # every level an arm trains on should hold at least this many problems (issue #24)


def ci(r: dict | None) -> str:
    if not r:
        return "–"
    lo, hi = r.get("ci95") or (None, None)
    return f"{r['pass@1']:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{r['pass@1']:.3f}"


def num1(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def tests(r: dict | None) -> str:
    """The mean reward of an evaluation (code: the share of tests passed, partial credit counted)."""
    return pct(r.get("mean_reward")) if r else "–"


def diff(p: dict | None) -> str:
    if not p:
        return "–"
    lo, hi = p["ci95"]
    return (f"{p['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p['p_value']:.3f} ({p['wins']}/{p['losses']}/{p['ties']}), "
            f"MDD {mdd_from_ci(p['ci95']):.3f}")


class Arm:
    """One finished arm of one seed, read with the report's readers (``stagerl.report.read``)."""

    def __init__(self, root: Path, seed: int, name: str):
        self.dir, self.name, self.seed = root / f"seed{seed}" / name, name, seed
        self.stages = [st for st in read_stages(self.dir) if st["info"]]  # finished stages (stage.json)
        self.info = [st["info"] for st in self.stages]
        self.metrics = [st["metrics"] for st in self.stages]
        stats = read_json(self.dir / "levels" / "stats.json") or {}
        self.levels, self.policy = stats.get("levels", {}), (stats.get("models") or {}).get("policy")
        self.final = self.stages[-1]["dir"] if self.stages else None
        self.eval = read_eval(self.dir)
        self.pairs = (read_json(self.dir / "eval" / "compare.json") or {}).get("pairs", [])
        self.seconds = (read_json(self.dir / "experiment.json") or {}).get("seconds", {})

    def result(self, ckpt: str | None, bench: str) -> dict | None:
        return self.eval.get(ckpt, {}).get(bench) if ckpt else None

    def gain(self, bench: str, ckpt: str | None = None) -> dict | None:
        a = ckpt or self.final
        return next((p for p in self.pairs if p["benchmark"] == bench and p["a"] == a and p["b"] == "base"), None)

    def series(self, key: str, stage: int | None = None) -> list[float]:
        rows = [r for i, m in enumerate(self.metrics) if stage in (None, i) for r in m]
        return [r[key] for r in rows if isinstance(r.get(key), (int, float))]

    def first3(self, key: str = "reward") -> float | None:
        vals = self.series(key, 0)[:3]
        return statistics.fmean(vals) if vals else None

    def last3(self, key: str = "reward") -> float | None:
        vals = self.series(key)[-3:]
        return statistics.fmean(vals) if vals else None

    def start_truncation(self) -> str:
        """The share of the policy's scoring samples of stage 1's problems (drawn before training, at the
        scoring limit) longer than stage 1's completion limit: what that limit truncates at the start,
        over every stage-1 problem rather than the few of the first steps."""
        if not self.info:
            return "–"
        cfg = self.info[0].get("config", {})
        store = next((p for p in (self.dir / "samples.sqlite", self.dir.parent / "_shared" / "samples.sqlite")
                      if p.exists()), None)
        files = [self.dir / "levels" / f"{lvl}.parquet" for lvl in cfg.get("levels", [])]
        if store is None or not self.policy or not files or not all(f.exists() for f in files):
            return "–"
        ids = {i for f in files for i in pd.read_parquet(f, columns=["id"])["id"]}
        with SampleStore(store) as st:
            toks = st.to_frame(self.policy, ids)["tokens"]
        lim = cfg["max_completion_length"]
        return f"{(toks > lim).mean():.3f} ({len(toks)} samples, limit {lim})" if len(toks) else "–"

    def dev(self) -> str:
        """dev_score per global step, e.g. ``0:0.41 4:0.44 ...`` (a later stage's step 0 is omitted: it
        holds the previous stage's last weights)."""
        out = [f"{r['_global']}:{r['dev_score']:.2f}" for i, st in enumerate(self.stages) for r in st["metrics"]
               if isinstance(r.get("dev_score"), (int, float)) and not (i and r.get("step") == 0)]
        return " ".join(out) or "–"

    def kept_seconds(self) -> float | None:
        """The arm's seconds: per phase, the larger of the time ``run.py`` clocked (its last, finished
        attempt) and the work its files keep (stages' running time, the trained checkpoints' stored
        evaluation samples), so a phase resumed after a kill is not counted as its last attempt only."""
        if not self.seconds:
            return None
        train = sum(i.get("seconds") or 0.0 for i in self.info)
        evals = sum(r.get("seconds") or 0.0 for ck, res in self.eval.items() if ck != "base" for r in res.values()
                    if isinstance(r, dict))
        return (self.seconds.get("levels", 0.0) + max(self.seconds.get("train", 0.0), train)
                + max(self.seconds.get("eval", 0.0), evals))

    def minutes(self) -> str:
        kept = self.kept_seconds()
        return "–" if kept is None else f"{kept / 60:.1f}"


def cross(root: Path, experiment: str, seed: int, a: str, bench: str) -> dict | None:
    """Paired difference of arm ``a``'s final checkpoint against the experiment's first arm."""
    pairs = (read_json(root / "compare" / f"{experiment}-seed{seed}" / "compare.json") or {}).get("pairs", [])
    return next((p for p in pairs if p["benchmark"] == bench and p["a"].split(":")[0].endswith(a)), None)


table = markdown


def setup(root: Path, seeds: list[int]) -> str:
    """Per seed, what every arm shares (``seed<S>/_shared``): the scoring samples drawn against the fixed
    protocol's k per problem, the levels cut from them, and the base model's held-out scores."""
    rows = []
    for s in seeds:
        sh = root / f"seed{s}" / "_shared"
        stats = read_json(sh / "levels" / "stats.json") or {}
        lv, dom, policy = stats.get("levels", {}), stats.get("domains", {}), (stats.get("models") or {}).get("policy")
        recipe = yaml.safe_load((sh / "recipe.yaml").read_text()) if (sh / "recipe.yaml").exists() else {}
        k = ((recipe or {}).get("scoring") or {}).get("k")
        drawn = "–"
        if policy and (sh / "samples.sqlite").exists():
            with SampleStore(sh / "samples.sqlite") as st:
                n = st.query("SELECT COUNT(*) FROM samples WHERE model = ?", (policy,))[0][0]
            drawn = f"{n} of {k * stats['problems']}" if k and stats.get("problems") else str(n)
        base = (read_eval(sh).get("base") or {})
        l1 = lv.get("L1", {})
        rows.append([s, f"{dom.get('math', '–')} + {dom.get('code', '–')}", drawn,
                     f"{l1.get('total', '–')} ({l1.get('math', 0)} + {l1.get('code', 0)})",
                     *(lv.get(n, {}).get("total", "–") for n in ("L1_math", "L2_math", "L3_math")),
                     stats.get("in_no_level", "–"), ci(base.get("heldout_math")), ci(base.get("heldout_code"))])
    return table(["seed", "training problems math + code", "policy's scoring samples (of k × problems)",
                  "L1 (math + code)", "L1_math", "L2_math", "L3_math", "in no level", "base held-out math [95% CI]",
                  "base held-out code [95% CI]"], rows)


def claim_a(root: Path, seeds: list[int]) -> str:
    rows = []
    for s in seeds:
        for lvl in ("L1", "L2", "L3"):
            arm = Arm(root, s, f"difficulty-{lvl}")
            rows.append([s, lvl, arm.levels.get(f"{lvl}_math", {}).get("total", "–"), pct(arm.first3()), pct(arm.last3()),
                         ci(arm.result("base", "heldout_math")), ci(arm.result(arm.final, "heldout_math")) if arm.final else "–",
                         diff(arm.gain("heldout_math")),
                         "(reference)" if lvl == "L1" else diff(cross(root, "difficulty", s, arm.name, "heldout_math")),
                         arm.dev(), arm.minutes()])
    return table(["seed", "level", "problems", "initial reward (steps 1–3)", "reward (last 3)", "held-out math, base",
                  "held-out math, trained [95% CI]", "trained − base (paired) [CI], p (w/l/t)",
                  "− L1 arm (paired) [CI], p", "dev score by step", "minutes"], rows)


def claim_b(root: Path, seeds: list[int]) -> str:
    rows = []
    for s in seeds:
        for name in ARMS["staging"]:
            arm = Arm(root, s, name)
            st = [f"{i.get('steps')} ({i.get('reason')})" for i in arm.info]
            clip = [pct(statistics.fmean(v)) if (v := arm.series("clipped_ratio", i)) else "–" for i in range(len(arm.info))]
            after1 = ci(arm.result(arm.stages[0]["dir"], "heldout_math")) if len(arm.stages) > 1 else "–"
            rows.append([s, name.split("-")[1], st[0] if st else "–", st[1] if len(st) > 1 else "–", " → ".join(clip) or "–",
                         after1, ci(arm.result(arm.final, "heldout_math")) if arm.final else "–", diff(arm.gain("heldout_math")),
                         "(reference)" if name.endswith("staged") else diff(cross(root, "staging", s, name, "heldout_math")),
                         arm.dev(), arm.minutes(), arm.start_truncation(), pct(arm.first3("clipped_ratio"))])
    return table(["seed", "arm", "stage-1 steps (end)", "stage-2 steps (end)", "truncated share per stage",
                  "held-out math after stage 1", "held-out math, final [95% CI]", "final − base (paired) [CI], p",
                  "− staged arm (paired) [CI], p", "dev score by step", "minutes",
                  "stage-1 limit: truncated share of the policy's scoring samples of stage-1 problems",
                  "truncated share, stage-1 training steps 1–3"], rows)


def claim_c(root: Path, seeds: list[int]) -> str:
    rows = []
    for s in seeds:
        for name in ("difficulty-L1", "mixing-mixed"):
            arm = Arm(root, s, name)
            dom = arm.info[0].get("domains", {}) if arm.info else {}
            rows.append([s, "math only" if name == "difficulty-L1" else "math + code", f"{dom.get('math', 0)} + {dom.get('code', 0)}",
                         ci(arm.result("base", "heldout_math")), ci(arm.result(arm.final, "heldout_math")),
                         ci(arm.result("base", "heldout_code")), ci(arm.result(arm.final, "heldout_code")),
                         f"{pct(arm.last3('reward_math'))} / {pct(arm.last3('reward_code'))}",
                         "(reference)" if name == "difficulty-L1" else
                         f"math {diff(cross(root, 'mixing', s, name, 'heldout_math'))}; code {diff(cross(root, 'mixing', s, name, 'heldout_code'))}",
                         f"{tests(arm.result('base', 'heldout_code'))} → {tests(arm.result(arm.final, 'heldout_code'))}",
                         "(reference)" if name == "difficulty-L1" else
                         diff((cross(root, "mixing", s, name, "heldout_code") or {}).get("reward")),
                         arm.minutes()])
    return table(["seed", "arm", "problems math + code", "held-out math, base", "held-out math, trained [95% CI]",
                  "held-out code, base", "held-out code, trained [95% CI]", "training reward math / code (last 3)",
                  "− math-only arm (paired) [CI], p", "held-out code tests passed (mean reward), base → trained",
                  "tests passed − math-only arm (paired) [CI], p", "minutes"], rows)


def spread(root: Path, seeds: list[int]) -> str:
    """Per arm: the final held-out pass@1 over seeds (between-seed sd and range) beside the mean within-run
    95% interval half-width, the gain over the base across seeds, and the smallest level the arm trained on."""
    rows = []
    for exp, names in ARMS.items():
        for name in dict.fromkeys(names):
            arms = [Arm(root, s, name) for s in seeds]
            for bench in ("heldout_math", "heldout_code") if exp == "mixing" else ("heldout_math",):
                finals = [a.result(a.final, bench) for a in arms]
                got = [r for r in finals if r]
                sp = seed_spread([r["pass@1"] for r in got])
                half = [(r["ci95"][1] - r["ci95"][0]) / 2 for r in got if r.get("ci95")]
                gains = [g for a in arms if (g := a.gain(bench))]
                gs = seed_spread([g["diff"] for g in gains])
                mdds = [mdd_from_ci(g["ci95"]) for g in gains]
                sizes = [st["problems"] for a in arms for st in a.info if isinstance(st.get("problems"), int)]
                smallest = min(sizes) if sizes else None
                rows.append([exp, name, bench, sp["seeds"], pct(sp["mean"]), pct(sp["sd"]),
                             f"{pct(sp['min'])}–{pct(sp['max'])}" if sp["seeds"] else "–",
                             pct(statistics.fmean(half)) if half else "–", pct(gs["mean"]), pct(gs["sd"]),
                             pct(statistics.fmean(mdds)) if mdds else "–",
                             "–" if smallest is None else f"{smallest}{'' if smallest >= MIN_LEVEL else ' (< 30)'}"])
    return table(["experiment", "arm", "benchmark", "seeds", "final pass@1, mean over seeds", "between-seed sd",
                  "range", "within-run 95% CI half-width (mean)", "gain over base, mean", "gain, between-seed sd",
                  "gain MDD (mean)", "smallest level trained (problems)"], rows)


def shared_minutes(root: Path, seed: int) -> float | None:
    """Minutes of the seed's shared commands (scoring, levels, base evaluation): the larger of the
    commands that finished (``_shared/history.jsonl``) and the sampling time their stores keep
    (``ledger.json``, the base evaluation's results), so samples of interrupted attempts count."""
    folder = root / f"seed{seed}" / "_shared"
    if not (folder / "history.jsonl").exists():
        return None
    done = [(datetime.fromisoformat(r["end"]) - datetime.fromisoformat(r["time"])).total_seconds()
            for r in read_jsonl(folder / "history.jsonl") if r.get("status") == "finished" and r.get("end")]
    base = read_json(folder / "eval" / "base" / "results.json") or {}
    kept = (((read_json(folder / "ledger.json") or {}).get("total") or {}).get("seconds") or 0.0) + \
        sum(r.get("seconds") or 0.0 for r in base.values() if isinstance(r, dict))
    return max(sum(done), kept) / 60


def cost(root: Path, seeds: list[int]) -> str:
    """What a seed of all arms cost: the shared scoring and base evaluation, then each arm (its
    levels, training, evaluation; ``Arm.kept_seconds``), in wall-clock minutes of the process that ran it
    (a process may have shared its core with others: say how many beside the table). Work
    redone after a kill (steps since the last checkpoint, samples unfinished) is not counted."""
    names = list(dict.fromkeys(n for arms in ARMS.values() for n in arms))
    rows = []
    for s in seeds:
        shared = shared_minutes(root, s)
        arms = [None if (sec := Arm(root, s, n).kept_seconds()) is None else sec / 60 for n in names]
        done = [m for m in [shared, *arms] if m is not None]
        rows.append([s, num1(shared), *map(num1, arms),
                     f"{sum(done) / 60:.1f}" + ("" if len(done) == len(names) + 1 else " (unfinished)")])
    return table(["seed", "shared (scoring, base eval)", *names, "hours"], rows)


def copy_plots(root: Path, seeds: list[int], dest: Path) -> list[Path]:
    """The comparison pages' PNGs as ``dest/<experiment>-seed<S>-<plot>.png``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for folder in sorted((root / "compare").glob("*-seed*")):
        if int(folder.name.rsplit("seed", 1)[1]) in seeds:
            for png in sorted(folder.glob("*.png")):
                shutil.copy2(png, dest / f"{folder.name}-{png.name}")
                out.append(dest / f"{folder.name}-{png.name}")
    return out


def fill(path: Path, sections: dict[str, str]) -> None:
    """Replace, in the markdown file ``path``, the text between ``<!-- table: <title> -->`` and the next
    ``<!-- /table -->`` by that section's table. Every marker is checked before anything is written: a
    title with no marker, or a marker with no title, is an error naming it, and the file is left as it was."""
    text = path.read_text()
    found = re.findall(r"<!-- table: (.+?) -->", text)
    missing, unknown = [t for t in sections if t not in found], [t for t in found if t not in sections]
    if missing or unknown:
        raise SystemExit(f"{path}: " + "; ".join([*(f"no marker '<!-- table: {t} -->'" for t in missing),
                                                   *(f"marker '<!-- table: {t} -->' names no table" for t in unknown)]))
    for title, body in sections.items():
        text, n = re.subn(rf"(<!-- table: {re.escape(title)} -->\n).*?(<!-- /table -->)",
                          lambda m, b=body: f"{m.group(1)}{b}\n{m.group(2)}", text, count=1, flags=re.S)
        if not n:
            raise SystemExit(f"{path}: marker '<!-- table: {title} -->' has no closing '<!-- /table -->' after it")
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", default="runs/experiments")
    p.add_argument("--seeds", type=int, nargs="+", help="default: every seed<S> folder")
    p.add_argument("--plots", help="copy the comparison plots into this folder")
    p.add_argument("--into", help="also write each table into this markdown file, between its markers "
                                  "'<!-- table: <title> -->' and '<!-- /table -->'")
    args = p.parse_args(argv)
    root = Path(args.runs_dir)
    seeds = args.seeds or sorted(int(d.name[4:]) for d in root.glob("seed*") if d.name[4:].isdigit())
    if not seeds:
        print(f"no seed<S> folders under {root}: run experiments/run.py first", file=sys.stderr)
        return 2
    sections = {}
    for title, fn in (("Shared set-up per seed: scoring, levels, base model", setup),
                      ("Claim A: difficulty, per seed", claim_a),
                      ("Claim A over seeds: pooled by problem, and between seeds", lambda r, s: pooled_table(r, s, "difficulty")),
                      ("Claim B: staging, per seed", claim_b),
                      ("Claim B over seeds: pooled by problem, and between seeds", lambda r, s: pooled_table(r, s, "staging")),
                      ("Claim C: mixing, per seed", claim_c),
                      ("Claim C over seeds: pooled by problem, and between seeds", lambda r, s: pooled_table(r, s, "mixing")),
                      ("Across seeds: between-seed spread beside within-run intervals", spread),
                      ("Where the gains sit: held-out pass@1 by problem level and overlap with training", strata_table),
                      ("Held-out math answers by level: tokens / equations written", steps_table),
                      ("Cost: wall-clock minutes of the process that ran each part", cost)):
        sections[title] = fn(root, seeds)
        print(f"### {title}\n\n{sections[title]}\n")
    if args.into:
        fill(Path(args.into), sections)
    if args.plots:
        for png in [*copy_plots(root, seeds, Path(args.plots)), seeds_figure(root, seeds, Path(args.plots))]:
            if png:
                print(f"plot: {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
