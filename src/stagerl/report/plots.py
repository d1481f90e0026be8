"""Figures of a run (or of several), drawn from run-folder data only; each returns PNG bytes (or
``None`` when there is nothing to draw). Every figure is titled, its axes labelled, with a legend;
one ``Palette`` per page gives a name (model, level, stage, checkpoint, run) the same colour on
every figure."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
FIXED = {"base": "#7f7f7f"}


class Palette:
    """Colour by name: fixed ones (``base`` is grey), then the next free colour at a name's first use."""

    def __init__(self, names: list[str] = ()) -> None:
        self.colours: dict[str, str] = {}
        for n in names:
            self[n]

    def __getitem__(self, name: str) -> str:
        if name not in self.colours:
            self.colours[name] = FIXED.get(name) or COLOURS[len([c for c in self.colours if c not in FIXED])
                                                            % len(COLOURS)]
        return self.colours[name]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _smooth(values: list[float], window: int) -> list[float]:
    return pd.Series(values, dtype=float).rolling(window, min_periods=1).mean().tolist()


def pass_rate_histograms(table: pd.DataFrame, palette: Palette) -> bytes | None:
    """Per-problem pass rates, one panel per reference model (difficulty scoring)."""
    if table is None or table.empty:
        return None
    models = list(dict.fromkeys(table["model"].astype(str)))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.3), squeeze=False)
    for ax, m in zip(axes[0], models):
        rates = table.loc[table["model"].astype(str) == m, "pass_rate"].dropna()
        ax.hist(rates, bins=[i / 10 for i in range(11)], color=palette[m], edgecolor="black", label=m)
        ax.set(title=f"Pass rates of {m}", xlabel="pass rate over its samples", ylabel="problems", xlim=(0, 1))
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def level_counts(stats: dict, palette: Palette) -> bytes | None:
    """Problems per level, math solid and code hatched, in each level's colour."""
    levels = stats.get("levels") or {}
    if not levels:
        return None
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(levels) + 2), 3.4))
    names = list(levels)
    bottom = [0] * len(names)
    for domain, hatch in (("math", None), ("code", "//")):
        vals = [levels[n].get(domain, 0) for n in names]
        ax.bar(names, vals, bottom=bottom, color=[palette[n] for n in names], hatch=hatch, edgecolor="black",
               alpha=1.0 if hatch is None else 0.55, label=domain)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for x, total in enumerate(bottom):
        ax.annotate(str(total), (x, total), ha="center", va="bottom", fontsize=9)
    ax.set(title="Problems per level (math solid, code hatched)", xlabel="level", ylabel="problems",
           ylim=(0, max(bottom + [1]) * 1.2))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _stage_lines(ax, stages: list[dict], key: str, palette: Palette, window: int, raw: bool = True) -> bool:
    drawn = False
    for s in stages:
        pts = [(m["_global"], m[key]) for m in s["metrics"] if isinstance(m.get(key), (int, float))]
        if not pts:
            continue
        xs, ys = zip(*pts)
        label = f"{s['dir']} ({', '.join(s['levels'])})" if s["levels"] else s["dir"]
        if raw and window > 1:
            ax.plot(xs, ys, color=palette[s["dir"]], alpha=0.25, linewidth=1)
        ys_s = _smooth(list(ys), window) if window > 1 else list(ys)
        ax.plot(xs, ys_s, color=palette[s["dir"]], marker="o" if len(xs) < 12 else None, label=label)
        drawn = True
    return drawn


def _switches(ax, stages: list[dict]) -> None:
    for s in stages[1:]:
        if s["metrics"]:
            ax.axvline(s["start"] + 0.5, color="black", linestyle="--", linewidth=1)
            ax.annotate(f" switch to {s['dir']}", (s["start"] + 0.5, 0.98), xycoords=("data", "axes fraction"),
                        ha="left", va="top", fontsize=8, annotation_clip=False,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def training_curves(stages: list[dict], palette: Palette, window: int = 5) -> bytes | None:
    """The paper's figure 2: training reward over the staged run, the stage switch marked, beside
    the held-out dev score (``dev_score`` rows of metrics.jsonl)."""
    if not any(s["metrics"] for s in stages):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    _stage_lines(axes[0], stages, "reward", palette, window)
    axes[0].set(title=f"Training reward (smoothed over {window} steps; faint: raw)", xlabel="global step",
                ylabel="mean reward")
    if _stage_lines(axes[1], stages, "dev_score", palette, 1, raw=False):
        axes[1].set(title="Held-out dev score", xlabel="global step", ylabel="dev pass@1")
    else:
        axes[1].text(0.5, 0.5, "no dev evaluation in metrics.jsonl", ha="center", va="center",
                     transform=axes[1].transAxes, color="gray")
        axes[1].set(title="Held-out dev score", xlabel="global step", ylabel="dev pass@1")
    for ax in axes:
        _switches(ax, stages)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    return _png(fig)


def signal_meter(stages: list[dict], palette: Palette) -> bytes | None:
    """Share of groups with non-zero reward variance (the ``signal`` key) per step."""
    if not any(isinstance(m.get("signal"), (int, float)) for s in stages for m in s["metrics"]):
        return None
    fig, ax = plt.subplots(figsize=(8, 3.4))
    _stage_lines(ax, stages, "signal", palette, 1, raw=False)
    _switches(ax, stages)
    ax.set(title="Signal meter: share of groups that carry a gradient", xlabel="global step",
           ylabel="groups with reward variance > 0", ylim=(-0.05, 1.05))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def benchmark_bars(results: dict[str, dict], palette: Palette) -> bytes | None:
    """The paper's figures 3 and 4: pass@1 per benchmark for base and each stage, with 95% intervals."""
    ckpts = list(results)
    benches = list(dict.fromkeys(b for r in results.values() for b in r))
    if not benches:
        return None
    width = 0.8 / len(ckpts)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 + len(benches) * len(ckpts) * 0.9), 4))
    top = 0.0
    for i, c in enumerate(ckpts):
        xs, ys, err = [], [], [[], []]
        for j, b in enumerate(benches):
            r = results[c].get(b)
            if not r:
                continue
            lo, hi = r.get("ci95", [r["pass@1"], r["pass@1"]])
            xs.append(j + (i - (len(ckpts) - 1) / 2) * width)
            ys.append(r["pass@1"])
            err[0].append(max(0.0, r["pass@1"] - lo))
            err[1].append(max(0.0, hi - r["pass@1"]))
            top = max(top, hi)
        bars = ax.bar(xs, ys, width=width, yerr=err, capsize=4, color=palette[c], edgecolor="black", label=c)
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(range(len(benches)), benches)
    ax.set(title="Benchmarks: pass@1 averaged over k samples (bars: 95% CI)", xlabel="benchmark",
           ylabel="pass@1", ylim=(0, max(0.05, top) * 1.2))
    ax.legend(title="checkpoint", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def pass_at_k_curves(results: dict[str, dict], palette: Palette) -> bytes | None:
    """pass@k' against k' per benchmark, one line per checkpoint."""
    benches = [b for b in dict.fromkeys(b for r in results.values() for b in r)
               if any(len(r.get(b, {}).get("pass@k", {})) > 1 for r in results.values())]
    if not benches:
        return None
    fig, axes = plt.subplots(1, len(benches), figsize=(4.5 * len(benches), 3.5), squeeze=False)
    for ax, b in zip(axes[0], benches):
        for c, res in results.items():
            pk = res.get(b, {}).get("pass@k", {})
            if pk:
                ks = sorted(int(k) for k in pk)
                ax.plot(ks, [pk[str(k)]["value"] for k in ks], marker="o", color=palette[c], label=c)
        ax.set(title=f"pass@k on {b}", xlabel="k (samples drawn)", ylabel="pass@k", ylim=(0, 1.05))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _png(fig)


def run_curves(runs: dict[str, list[dict]], key: str, title: str, ylabel: str, palette: Palette,
               window: int = 1) -> bytes | None:
    """One line per run (all its stages end to end) of a metrics.jsonl key (the paper's figure 1)."""
    series = {}
    for run, stages in runs.items():
        pts = [(m["_global"], m[key]) for s in stages for m in s["metrics"] if isinstance(m.get(key), (int, float))]
        if pts:
            series[run] = pts
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for run, pts in series.items():
        xs, ys = zip(*pts)
        ax.plot(xs, _smooth(list(ys), window), color=palette[run], marker="o" if len(xs) < 12 else None, label=run)
    ax.set(title=title, xlabel="global step", ylabel=ylabel)
    ax.legend(title="run", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def benchmark_over_steps(points: dict[str, dict[str, list[tuple]]], palette: Palette) -> bytes | None:
    """``{benchmark: {run: [(step, pass@1, lo, hi), ...]}}``: pass@1 of each run's checkpoints over
    training steps, one panel per benchmark, error bars the 95% intervals."""
    if not points:
        return None
    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 3.8), squeeze=False)
    for ax, (bench, runs) in zip(axes[0], points.items()):
        for run, pts in runs.items():
            pts = sorted(pts)
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            err = [[y - p[2] for y, p in zip(ys, pts)], [p[3] - y for y, p in zip(ys, pts)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, color=palette[run], label=run)
        ax.set(title=f"{bench}: pass@1 over training", xlabel="global step of the checkpoint", ylabel="pass@1")
        ax.set_ylim(bottom=0)
        ax.legend(title="run", fontsize=8)
        ax.grid(alpha=0.3)
    return _png(fig)
