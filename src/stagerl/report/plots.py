"""Plots of a run, drawn from run-folder files only (never a model)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _smooth(values: list[float], window: int) -> list[float]:
    return pd.Series(values, dtype=float).rolling(window, min_periods=1).mean().tolist()


def plot_training(stages: list[dict], out: Path, metric: str = "reward", window: int = 5) -> Path | None:
    """Per-stage curves (one panel each, titled with the stage's levels) and the staged curve:
    the stages laid end to end with a dashed line at each switch point."""
    stages = [s for s in stages if s["metrics"]]
    if not stages:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    offset, switch_points = 0, []
    for s in stages:
        steps = [m.get("step", i + 1) for i, m in enumerate(s["metrics"])]
        ys = [m.get(metric) for m in s["metrics"]]
        pts = [(x, y) for x, y in zip(steps, ys) if y is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        label = f"{s['name']} ({', '.join(s.get('levels', []))})"
        axes[0].plot(xs, ys, alpha=0.3)
        axes[0].plot(xs, _smooth(list(ys), window), label=label)
        axes[1].plot([x + offset for x in xs], _smooth(list(ys), window), label=label)
        offset += max(xs)
        switch_points.append(offset)
    for x in switch_points[:-1]:
        axes[1].axvline(x, color="gray", linestyle="--", linewidth=1)
        axes[1].annotate("switch", (x, axes[1].get_ylim()[1]), ha="center", va="bottom", fontsize=8)
    axes[0].set(title=f"Training {metric} per stage / level", xlabel="step", ylabel=metric)
    axes[1].set(title="Staged curve (dashed: stage switch)", xlabel="global step", ylabel=metric)
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_benchmarks(results: dict[str, dict], out: Path) -> Path | None:
    """Grouped bars: pass@1 per benchmark, one bar per evaluated checkpoint."""
    rows = [(ckpt, bench, r["pass@1"]) for ckpt, res in results.items() for bench, r in res.items()]
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=["checkpoint", "benchmark", "pass@1"])
    table = df.pivot(index="benchmark", columns="checkpoint", values="pass@1")[list(results)]
    ax = table.plot.bar(figsize=(max(5, 1.8 * len(table)), 4), rot=0)
    ax.set(title="pass@1 (averaged over k samples)", ylabel="pass@1", ylim=(0, max(1e-3, table.max().max()) * 1.25))
    for c in ax.containers:
        ax.bar_label(c, fmt="%.3f", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.figure.tight_layout()
    ax.figure.savefig(out, dpi=120)
    plt.close(ax.figure)
    return out


def plot_pass_rates(table: pd.DataFrame, out: Path) -> Path | None:
    """Histogram of per-problem pass rates, one panel per reference model."""
    if table.empty:
        return None
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        ax.hist(table.loc[table["model"] == m, "pass_rate"], bins=[i / 10 for i in range(11)], edgecolor="black")
        ax.set(title=m, xlabel="pass rate", ylabel="problems")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
