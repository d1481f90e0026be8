"""Level statistics: counts per level × domain, overlaps, drops; pass-rate histograms as PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .rules import Rules  # noqa: E402


def level_stats(levels: dict[str, pd.DataFrame], table: pd.DataFrame, rules: Rules) -> dict:
    """Counts per level and domain, pairwise overlaps (shared problems), and problems dropped."""
    ids = {name: set(df["problem_id"] if "problem_id" in df else df["id"]) for name, df in levels.items()}
    in_any = set().union(*ids.values()) if ids else set()
    domains = table.drop_duplicates("problem_id").set_index("problem_id")["domain"] if "domain" in table else None
    counts = {}
    for name, df in levels.items():
        counts[name] = {"total": len(df), **{str(k): int(v) for k, v in df["domain"].value_counts().items()}}
    names = list(levels)
    overlaps = {f"{a}&{b}": len(ids[a] & ids[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    total = table["problem_id"].nunique()
    return {"problems": int(total), "in_no_level": int(total - len(in_any)), "levels": counts, "overlaps": overlaps,
            "models": rules.models, "domains": {str(k): int(v) for k, v in domains.value_counts().items()} if domains is not None else {}}


def write_stats(levels: dict[str, pd.DataFrame], table: pd.DataFrame, rules: Rules, out_dir: str | Path) -> list[Path]:
    """``stats.json``, ``pass_rates.png`` (histogram per model) and ``levels.png`` (counts)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = level_stats(levels, table, rules)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    paths = [out / "stats.json"]

    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        ax.hist(table.loc[table["model"] == m, "pass_rate"].dropna(), bins=[i / 10 for i in range(11)], edgecolor="black")
        ax.set(title=f"pass rate: {m}", xlabel="pass rate", ylabel="problems")
    fig.tight_layout()
    fig.savefig(out / "pass_rates.png", dpi=110)
    plt.close(fig)
    paths.append(out / "pass_rates.png")

    counts = pd.DataFrame({n: {d: c for d, c in v.items() if d != "total"} for n, v in stats["levels"].items()}).T.fillna(0)
    if counts.size:
        ax = counts.plot.bar(stacked=True, figsize=(max(4, 1.5 * len(counts)), 3.2), rot=0)
        ax.set(title="problems per level and domain", ylabel="problems")
        ax.figure.tight_layout()
        ax.figure.savefig(out / "levels.png", dpi=110)
        plt.close(ax.figure)
        paths.append(out / "levels.png")
    return paths
