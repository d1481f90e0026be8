"""Level statistics: counts per level × domain, overlaps, drops; pass-rate and count plots as PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .build import label_table, to_long  # noqa: E402
from .rules import Rules, RulesError  # noqa: E402


def _ids(df: pd.DataFrame) -> set[str]:
    return set(map(str, df["problem_id"] if "problem_id" in df.columns else df["id"]))


def level_stats(levels: dict[str, pd.DataFrame], table: pd.DataFrame, rules: Rules) -> dict:
    """Counts per level and domain, pairwise overlaps (problems shared by two levels), problems
    dropped by ``keep``, left out for missing rates, and in no level; the model bindings.

    ``dropped`` / ``skipped`` are ``None`` when the table cannot be labelled (e.g. no domains).
    Levels from :func:`build_levels` carry their labelling (``levels.labels``), which is reused;
    other level dicts are labelled here."""
    t = to_long(table)
    ids = {name: _ids(df) for name, df in levels.items()}
    in_any = set().union(*ids.values()) if ids else set()
    domains: dict[str, str] = {}
    for df in levels.values():
        domains.update(dict(zip(map(str, df["problem_id"] if "problem_id" in df.columns else df["id"]), df["domain"])))
    try:
        labels = getattr(levels, "labels", None)
        if labels is None:
            labels = label_table(t, rules, on_missing="skip", domains=domains)
        dropped: int | None = int((~labels["keep"].astype(bool)).sum()) if len(labels) else 0
        skipped: int | None = len(labels.attrs["skipped"])
        by_domain = {str(k): int(v) for k, v in labels["domain"].value_counts().items()} if len(labels) else {}
    except RulesError:
        dropped = skipped = None
        by_domain = {}
    counts = {name: {"total": len(df), **{str(k): int(v) for k, v in df["domain"].value_counts().items()}}
              for name, df in levels.items()}
    names = list(levels)
    overlaps = {f"{a}&{b}": len(ids[a] & ids[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    total = int(t["problem_id"].nunique())
    return {"problems": total, "domains": by_domain, "dropped": dropped, "skipped": skipped,
            "in_no_level": total - len(in_any), "levels": counts, "overlaps": overlaps, "models": dict(rules.models)}


def _rate_histogram(ax: plt.Axes, rates: pd.Series, model: str) -> None:
    """Bars per distinct rate when rates are k-sample fractions (0 and 1 get their own bar), else
    20 bins."""
    values = rates.dropna().round(6)
    distinct = values.value_counts().sort_index()
    if len(distinct) <= 41:
        width = 0.8 * min([b - a for a, b in zip(distinct.index[:-1], distinct.index[1:])] or [0.05])
        ax.bar(distinct.index, distinct.values, width=max(width, 0.01), edgecolor="black")
    else:
        ax.hist(values, bins=20, range=(0, 1), edgecolor="black")
    ax.set(title=f"pass rate: {model}", xlabel="pass rate", ylabel="problems", xlim=(-0.05, 1.05))


def write_stats(levels: dict[str, pd.DataFrame], table: pd.DataFrame, rules: Rules, out_dir: str | Path) -> list[Path]:
    """Write ``stats.json`` (see :func:`level_stats`), ``pass_rates.png`` (a histogram per model)
    and ``levels.png`` (problems per level, stacked by domain) into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = level_stats(levels, table, rules)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    paths = [out / "stats.json"]

    t = to_long(table)
    models = list(dict.fromkeys(t["model"].astype(str)))
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
        for ax, m in zip(axes[0], models):
            _rate_histogram(ax, t.loc[t["model"].astype(str) == m, "pass_rate"].astype(float), m)
        fig.tight_layout()
        fig.savefig(out / "pass_rates.png", dpi=110)
        plt.close(fig)
        paths.append(out / "pass_rates.png")

    counts = pd.DataFrame({n: {d: c for d, c in v.items() if d != "total"} for n, v in stats["levels"].items()},
                          index=sorted({d for v in stats["levels"].values() for d in v if d != "total"}))
    counts = counts.T.fillna(0) if counts.size else pd.DataFrame({"problems": [0] * len(levels)}, index=list(levels))
    fig, ax = plt.subplots(figsize=(max(4, 1.5 * len(counts)), 3.2))
    counts.plot.bar(stacked=True, ax=ax, rot=0)
    ax.set(title="problems per level and domain", ylabel="problems")
    fig.tight_layout()
    fig.savefig(out / "levels.png", dpi=110)
    plt.close(fig)
    paths.append(out / "levels.png")
    return paths
