"""Benchmark evaluation: k samples per problem through the same engines, rewards and store as
scoring (so a killed evaluation resumes), reported as pass@1 averaged over the k samples with a
95% interval, pass@k' for every k' <= k, and breakdowns (see ``stats.py`` for the methods).

``<out_dir>/results.json`` maps each benchmark to::

    pass@1, ci95 [lo, hi], stderr, ci_method   pass@1 averaged over k, its interval and method
    pass@k {"1": {value, stderr}, ...}          unbiased pass@k' for k' = 1..k
    k, problems, of, samples                    k; problems evaluated (of the benchmark's total)
    by_domain / by_level / by_difficulty        {group: {problems, pass@1, ci95, stderr}}
    truncated, truncated_share                  samples cut at max_tokens, and their share
    mean_reward, mean_tokens, tokens, seconds   partial credit (code), generation cost
    max_tokens, sampling, call_size             how it was sampled
    note                                        where the benchmark differs from the paper's
    sandbox                                     the code isolation its grading ran under
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from pathlib import Path

import pandas as pd

from ..config import EvalConfig, ModelRef, PromptConfig, RewardsConfig, ScoringConfig
from ..rewards import sandbox_record
from ..rundir import write_json
from .stats import CI_METHOD, pass1_interval, pass_at_ks

NOTES = {
    "builtin:lcb_test": ("public example tests only (1-6 per problem, ~2.6 on average); the paper's "
                         "LiveCodeBench also runs hidden tests, so a pass here is a weaker check"),
    "builtin:lcb_train": "public example tests only (1-6 per problem); not the official LiveCodeBench scoring",
}


def level_ids(run_dir: str | Path) -> dict[str, set[str]]:
    """``{level: problem ids}`` from ``<run>/levels/*.parquet`` (empty when there are none)."""
    out = {}
    for f in sorted((Path(run_dir) / "levels").glob("*.parquet")):
        df = pd.read_parquet(f)
        col = "problem_id" if "problem_id" in df.columns else "id"
        out[f.stem] = set(map(str, df[col]))
    return out


def _groups(table: pd.DataFrame, key: pd.Series) -> dict[str, dict]:
    out = {}
    for name in sorted(key.dropna().unique(), key=str):
        g = table[key == name]
        out[str(name)] = pass1_interval(list(zip(g["samples"], g["successes"])))
    return out


def summarize(table: pd.DataFrame, k: int, levels: dict[str, set[str]] | None = None,
              difficulty: dict[str, object] | None = None) -> dict:
    """The statistics of one benchmark's pass-rate table (one row per problem, one model)."""
    table = table[table["samples"] > 0]
    if table.empty:
        raise ValueError("no sampled problems to summarize")
    counts = list(zip(table["samples"].astype(int), table["successes"].astype(int)))
    out = pass1_interval(counts)
    out["ci_method"] = CI_METHOD
    out["pass@k"] = pass_at_ks(counts)
    out.update(k=k, samples=int(table["samples"].sum()))
    out["by_domain"] = _groups(table, table["domain"])
    out["by_level"] = {}
    for name, ids in (levels or {}).items():
        g = table[table["problem_id"].astype(str).isin(ids)]
        if len(g):
            out["by_level"][name] = pass1_interval(list(zip(g["samples"], g["successes"])))
    if difficulty:
        out["by_difficulty"] = _groups(table, table["problem_id"].map(difficulty))
    out["truncated"] = int(table["truncated"].sum())
    out["truncated_share"] = out["truncated"] / out["samples"]
    out["mean_reward"] = float(table["mean_reward"].mean())
    out["mean_tokens"] = float((table["mean_tokens"] * table["samples"]).sum() / out["samples"])
    out["tokens"] = int((table["mean_tokens"] * table["samples"]).sum())
    return out


def evaluate_checkpoint(name: str, model: str, cfg: EvalConfig, out_dir: str | Path,
                        prompt: PromptConfig | None = None, rewards: RewardsConfig | None = None,
                        levels: dict[str, set[str]] | None = None, progress: bool = True) -> dict[str, dict]:
    """Evaluate ``model`` (a checkpoint folder, embedded alias or hub id) on every benchmark of
    ``cfg``, graded under ``rewards`` (the recipe's ``rewards`` section); write
    ``<out_dir>/results.json`` (see the module docstring) and return it. The model is loaded once
    for all benchmarks, and only if some sample is not stored yet; this function owns the engine
    and closes it at the end. ``levels`` (``{level: problem ids}``) adds a per-level breakdown for
    problems that are levelled; ``cfg.max_tokens_by_checkpoint[name]`` sets this checkpoint's own
    ``max_tokens`` (``ModelRef.max_tokens``)."""
    from ..data import load_source
    from ..scoring import default_engine, score
    from ..store import SampleStore

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = ModelRef(name=name, model=model, engine=cfg.engine, options=dict(cfg.options),
                   max_tokens=cfg.max_tokens_by_checkpoint.get(name))
    max_tokens = ref.max_tokens or cfg.sampling.max_tokens
    benches = [(b, load_source(b.source)) for b in cfg.benchmarks]  # bad sources fail before any model loads
    results: dict[str, dict] = {}
    with ExitStack() as owner:
        shared: list = []

        def engine_factory(_ref: ModelRef) -> nullcontext:
            """Lend ``score`` the one engine (made on first need, closed by ``owner``)."""
            if not shared:
                shared.append(owner.enter_context(default_engine(ref)))
            return nullcontext(shared[0])

        for bench, problems in benches:
            total = len(problems)
            if bench.limit:
                problems = problems[: bench.limit]
            store = SampleStore(out_dir / f"{bench.name}.sqlite")
            call_size = max(1, len(problems) * bench.k if cfg.engine == "vllm" else cfg.call_size)
            scoring = ScoringConfig(models=[ref], k=bench.k, adaptive=False, sampling=cfg.sampling, call_size=call_size)
            table = score(problems, store, scoring, rewards=rewards, prompt=prompt, out_dir=out_dir / bench.name,
                          engine_factory=engine_factory, progress=progress, label=f"evaluating {bench.name}")
            difficulty = {p.id: p.meta["level"] for p in problems if p.meta.get("level") is not None}
            r = summarize(table, bench.k, levels, difficulty or None)
            r["of"] = total
            seconds = store.query("SELECT SUM(seconds) FROM samples WHERE model = ? AND idx < ?", (name, bench.k))
            r["seconds"] = float(seconds[0][0] or 0.0)
            r.update(max_tokens=max_tokens, sampling=vars(cfg.sampling), call_size=call_size)
            notes = [NOTES[str(bench.source)]] if str(bench.source) in NOTES else []
            if len(problems) < total:
                notes.append(f"subset: the first {len(problems)} of {total} problems")
            if notes:
                r["note"] = "; ".join(notes)
            r["sandbox"] = sandbox_record()  # the code isolation its grading ran under
            results[bench.name] = r
    write_json(out_dir / "results.json", results)
    return results
