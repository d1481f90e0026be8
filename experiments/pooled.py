"""Comparisons over all seeds at once (issue #24): each arm against its reference and against the base
model, pooled over the seeds, beside the spread of the per-seed differences.

Two intervals answer two questions, and the tables print both:

* **Pooled over seeds, paired by problem** (``pooled``): the held-out set is the same for every seed
  (evaluation is not seeded), so each problem's samples under an arm are summed over the seeds'
  final checkpoints (4 samples × 3 seeds = 12) and the two arms are compared problem by problem with
  ``stagerl.evaluate.stats.paired_difference`` (bootstrap over problems then samples, sign-flip
  p-value). It asks "do these trained checkpoints, taken together, differ on problems like these?";
  its MDD is about √S times smaller than one seed's. The base model's evaluation is the same samples
  in every seed (same model, same sampling seeds), so when the seeds' base counts are identical it is
  counted once, not S times (that would fake precision).
* **Between seeds** (``between``): the S per-seed differences, their mean and a t interval with S − 1
  degrees of freedom. It asks "would another training run give the same difference?"; with 3 seeds
  its t quantile is 4.30, so only a difference much larger than the seeds' spread excludes 0.
"""

from __future__ import annotations

import functools
import math
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from power import mdd_from_ci, t_quantile  # noqa: E402

from stagerl.curriculum.stages import stage_folders  # noqa: E402
from stagerl.evaluate.compare import problem_counts, problem_rewards  # noqa: E402
from stagerl.evaluate.stats import paired_difference, paired_reward_difference  # noqa: E402

# (experiment, arm, reference arm or "base", benchmarks): every comparison the claims rest on
COMPARISONS = [
    ("difficulty", "difficulty-L2", "difficulty-L1", ("heldout_math",)),
    ("difficulty", "difficulty-L3", "difficulty-L1", ("heldout_math",)),
    ("staging", "staging-single", "staging-staged", ("heldout_math",)),
    ("staging", "staging-long", "staging-staged", ("heldout_math",)),
    ("mixing", "mixing-mixed", "difficulty-L1", ("heldout_math", "heldout_code")),
] + [(exp, arm, "base", benches) for exp, arm, benches in [
    ("difficulty", "difficulty-L1", ("heldout_math", "heldout_code")), ("difficulty", "difficulty-L2", ("heldout_math",)),
    ("difficulty", "difficulty-L3", ("heldout_math",)), ("staging", "staging-staged", ("heldout_math",)),
    ("staging", "staging-single", ("heldout_math",)), ("staging", "staging-long", ("heldout_math",)),
    ("mixing", "mixing-mixed", ("heldout_math", "heldout_code"))]]


# every arm, in the order the tables and the figure show them
ARMS = ["difficulty-L1", "difficulty-L2", "difficulty-L3", "staging-staged", "staging-single", "staging-long", "mixing-mixed"]


def markdown(head: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def final_checkpoint(arm_dir: Path) -> str | None:
    """The arm's last finished stage (the folder name its evaluation is stored under), or None."""
    done = [d.name for d in stage_folders(arm_dir) if (d / "stage.json").exists()]
    return done[-1] if done else None


def _where(root: Path, seed: int, arm: str) -> tuple[Path, str] | None:
    """(eval folder, checkpoint) of an arm's final checkpoint in one seed, or of the base model."""
    if arm == "base":
        shared = root / f"seed{seed}" / "_shared" / "eval"
        return (shared, "base") if (shared / "base" / "results.json").exists() else None
    d = root / f"seed{seed}" / arm
    ck = final_checkpoint(d)
    return (d / "eval", ck) if ck and (d / "eval" / ck / "results.json").exists() else None


def _pooled_counts(per_seed: list[dict[str, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    """Each problem's (samples, successes) summed over the seeds; identical evaluations counted once."""
    distinct = [c for i, c in enumerate(per_seed) if c not in per_seed[:i]]
    out: dict[str, tuple[int, int]] = {}
    for counts in distinct:
        for pid, (n, c) in counts.items():
            a, b = out.get(pid, (0, 0))
            out[pid] = (a + n, b + c)
    return out


def _pooled_rewards(per_seed: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    distinct = [r for i, r in enumerate(per_seed) if r not in per_seed[:i]]
    out: dict[str, list[float]] = {}
    for rewards in distinct:
        for pid, rs in rewards.items():
            out.setdefault(pid, []).extend(rs)
    return out


def between(diffs: list[float]) -> dict:
    """Mean of the per-seed differences and its t interval (S − 1 degrees of freedom; None for S < 2)."""
    s = len(diffs)
    mean = statistics.fmean(diffs) if diffs else None
    if s < 2:
        return {"seeds": s, "mean": mean, "sd": None, "ci95": None, "same_sign": s}
    sd = statistics.stdev(diffs)
    half = t_quantile(0.975, s - 1) * sd / math.sqrt(s)
    sign = 1 if mean >= 0 else -1
    return {"seeds": s, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half],
            "same_sign": sum(1 for d in diffs if d * sign > 0)}


@functools.lru_cache(maxsize=4)
def heldout(root: Path, seeds: tuple[int, ...]) -> tuple[dict[str, list], set[str]]:
    """The held-out problems of each benchmark (``{name: [Problem, ...]}``, from the seeds' shared recipes)
    and the prompts of every seed's training problems (generated families can draw one question twice);
    cached, as two tables of one run ask for them."""
    import yaml

    from stagerl.data import load_source

    train: set[str] = set()
    benches: dict[str, dict] = {}
    for s in seeds:
        path = root / f"seed{s}" / "_shared" / "recipe.yaml"
        if path.exists():
            recipe = yaml.safe_load(path.read_text()) or {}
            train |= {p.prompt for spec in recipe.get("data") or [] for p in load_source(spec)}
            for b in (recipe.get("eval") or {}).get("benchmarks") or []:
                benches.setdefault(b["name"], b["source"])
    return {name: list(load_source(src)) for name, src in benches.items()}, train


def strata_table(root: Path, seeds: list[int]) -> str:
    """Held-out pass@1 by the problem's level (``meta.level``: a chain's operations, a code template's
    tier) and by whether its prompt is also a training prompt of some seed: the base model, then each
    arm's final checkpoints with their samples summed over the seeds. It shows where the gains sit, and
    whether the problems training could have memorised gain more than the others of their level."""
    problems, train = heldout(root, tuple(seeds))
    arms = ARMS
    rows = []
    for bench, probs in problems.items():
        counts = {}
        for arm in ["base", *arms]:
            per = [problem_counts(*w, bench) for s in seeds if (w := _where(root, s, arm))]
            counts[arm] = _pooled_counts(per) if per else {}
        groups: dict[tuple, list[str]] = {}
        for p in probs:
            groups.setdefault((p.meta.get("level"), p.prompt in train), []).append(p.id)
        for (level, seen), ids in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            def rate(arm, ids=ids):
                got = [counts[arm][i] for i in ids if i in counts[arm]]
                return pct(sum(c for _, c in got) / sum(n for n, _ in got) if got else None)
            rows.append([bench, level, "yes" if seen else "no", len(ids), *(rate(a) for a in ["base", *arms])])
    head = ["benchmark", "level", "prompt also in training", "problems", "base",
            *(a.split("-", 1)[1] for a in arms)]
    return markdown(head, rows)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def compare(root: Path, seeds: list[int], arm: str, ref: str, bench: str, reward: bool = False) -> dict | None:
    """``arm`` minus ``ref`` on ``bench`` over the seeds where both were evaluated: ``{"seeds",
    "per_seed": [diff, ...], "between": between(...), "pooled": paired result + "mdd"}``; None when no
    seed has both. ``reward``: compare mean rewards (code: the share of tests passed) instead of pass@1."""
    load = problem_rewards if reward else problem_counts
    sides: dict[str, list] = {"a": [], "b": []}
    used = []
    for s in seeds:
        wa, wb = _where(root, s, arm), _where(root, s, ref)
        if not wa or not wb:
            continue
        a, b = load(*wa, bench), load(*wb, bench)
        if a and b and set(a) & set(b):
            sides["a"].append(a), sides["b"].append(b), used.append(s)
    if not used:
        return None
    fn = paired_reward_difference if reward else paired_difference
    per_seed = [fn(a, b)["diff"] for a, b in zip(sides["a"], sides["b"])]
    pooled = fn(*(_pooled_rewards(sides[k]) if reward else _pooled_counts(sides[k]) for k in "ab"))
    pooled["mdd"] = mdd_from_ci(pooled["ci95"])
    return {"seeds": used, "per_seed": per_seed, "between": between(per_seed), "pooled": pooled}


def _fmt_pooled(p: dict) -> str:
    lo, hi = p["ci95"]
    return (f"{p['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p['p_value']:.3f} "
            f"({p['wins']}/{p['losses']}/{p['ties']}), MDD {p['mdd']:.3f}")


def _fmt_between(b: dict) -> str:
    if b["ci95"] is None:
        return "– (one seed)"
    lo, hi = b["ci95"]
    return f"{b['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}], sd {b['sd']:.3f}, {b['same_sign']}/{b['seeds']} seeds same sign"


def pooled_table(root: Path, seeds: list[int], experiment: str | None = None) -> str:
    """The markdown table of the comparisons in ``COMPARISONS`` (code also on tests passed), of one
    experiment or of all."""
    rows = []
    for exp, arm, ref, benches in COMPARISONS:
        if experiment not in (None, exp):
            continue
        for bench in benches:
            for reward in (False, True) if bench == "heldout_code" else (False,):
                r = compare(root, seeds, arm, ref, bench, reward)
                what = f"{bench} {'tests passed' if reward else 'pass@1'}"
                if r is None:
                    rows.append([exp, f"{arm} − {ref}", what, 0, "–", "–", "–"])
                    continue
                rows.append([exp, f"{arm} − {ref}", what, len(r["seeds"]), " ".join(f"{d:+.3f}" for d in r["per_seed"]),
                             _fmt_pooled(r["pooled"]), _fmt_between(r["between"])])
    head = ["experiment", "comparison (final checkpoints)", "benchmark", "seeds", "per-seed differences",
            "pooled over seeds, paired by problem [95% CI], p (w/l/t), MDD",
            "between seeds: mean [t 95% CI], sd, direction"]
    return markdown(head, rows)


def seeds_figure(root: Path, seeds: list[int], dest: Path) -> Path | None:
    """``dest/seeds-final.png``: every arm's final held-out pass@1 in each seed (a dot with its within-run
    95% interval), the mean over seeds (a bar) and the base model (dashed), math left and code right."""
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def result(seed: int, arm: str, bench: str) -> dict | None:
        w = _where(root, seed, arm)
        path = w and w[0] / w[1] / "results.json"
        return json.loads(path.read_text()).get(bench) if path and path.exists() else None

    arms = ARMS
    panels = [("heldout_math", arms), ("heldout_code", ["difficulty-L1", "mixing-mixed"])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [len(arms), 3]})
    drawn = False
    for ax, (bench, names) in zip(axes, panels):
        for x, arm in enumerate(names):
            got = [(s, r) for s in seeds if (r := result(s, arm, bench))]
            for j, (s, r) in enumerate(got):
                lo, hi = r.get("ci95") or (r["pass@1"], r["pass@1"])
                ax.errorbar(x + (j - (len(got) - 1) / 2) * 0.18, r["pass@1"], yerr=[[r["pass@1"] - lo], [hi - r["pass@1"]]],
                            fmt="o", color=f"C{seeds.index(s)}", capsize=3, label=f"seed {s}" if x == 0 else None)
            if got:
                drawn = True
                ax.bar(x, statistics.fmean(r["pass@1"] for _, r in got), width=0.7, color="#dddddd", zorder=0)
        bases = [r["pass@1"] for s in seeds if (r := result(s, "base", bench))]
        if bases:
            ax.axhline(statistics.fmean(bases), ls="--", color="#7f7f7f", label="base model")
        ax.set_xticks(range(len(names)), [n.replace("difficulty-", "").replace("staging-", "").replace("mixing-", "")
                                          for n in names])
        ax.set_xlabel("arm (final checkpoint); bar: mean over seeds")
        ax.set_ylabel(f"{bench} pass@1 (k samples averaged)")
        ax.set_title(f"{bench}: seeds, 95% intervals")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not evaluated", ha="center", transform=ax.transAxes)
    if not drawn:
        plt.close(fig)
        return None
    dest.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(dest / "seeds-final.png", dpi=100)
    plt.close(fig)
    return dest / "seeds-final.png"


def steps_table(root: Path, seeds: list[int], bench: str = "heldout_math") -> str:
    """Held-out answers by problem level: mean length in tokens and mean number of '=' signs (a worked
    chain writes one equation per operation, so this counts the steps an answer wrote), base model then
    each arm's final checkpoints over the seeds. It shows an arm that learned to stop after one step."""
    from stagerl.store import SampleStore

    problems, _ = heldout(root, tuple(seeds))
    level = {p.id: p.meta.get("level") for p in problems.get(bench, [])}
    arms = ["base", *ARMS]
    cells: dict[str, dict] = {}
    for arm in arms:
        per: dict = {}
        where = [w for s in seeds if (w := _where(root, s, arm))]
        for folder, ck in dict.fromkeys(where) if arm != "base" else where[:1]:
            path = folder / ck / f"{bench}.sqlite"
            if path.exists():
                with SampleStore(path) as st:
                    for pid, text, tokens in st.query("SELECT problem_id, text, tokens FROM samples WHERE model = ?", (ck,)):
                        per.setdefault(level.get(str(pid)), []).append((tokens, (text or "").count("=")))
        cells[arm] = {lv: f"{statistics.fmean(t for t, _ in v):.1f} / {statistics.fmean(e for _, e in v):.1f}"
                      for lv, v in per.items()}
    levels = sorted({lv for c in cells.values() for lv in c}, key=str)
    rows = [[lv, *(cells[a].get(lv, "–") for a in arms)] for lv in levels]
    head = ["level (operations)", *(a.split("-", 1)[-1] for a in arms)]
    return markdown(head, rows)
