"""Benchmark evaluation: k samples per problem through the same engines, rewards and store as
scoring (so a killed evaluation resumes), reported as pass@1 averaged over the k samples."""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from pathlib import Path

from ..config import EvalConfig, ModelRef, PromptConfig, RewardsConfig, ScoringConfig
from ..rewards import sandbox_record
from ..rundir import write_json
from .passk import mean_pass_at_k


def evaluate_checkpoint(name: str, model: str, cfg: EvalConfig, out_dir: str | Path,
                        prompt: PromptConfig | None = None, rewards: RewardsConfig | None = None) -> dict[str, dict]:
    """Evaluate ``model`` (a checkpoint folder, embedded alias or hub id) on every benchmark of
    ``cfg``, graded under ``rewards`` (the recipe's ``rewards`` section); write
    ``<out_dir>/results.json`` and return it. The model is loaded once for all benchmarks, and only
    if some sample is not stored yet; this function owns the engine and closes it at the end."""
    from ..data import load_source
    from ..scoring import default_engine, score
    from ..store import SampleStore

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = ModelRef(name=name, model=model, engine=cfg.engine, options=dict(cfg.options))
    results: dict[str, dict] = {}
    with ExitStack() as owner:
        shared: list = []

        def engine_factory(_ref: ModelRef) -> nullcontext:
            """Lend ``score`` the one engine (made on first need, closed by ``owner``)."""
            if not shared:
                shared.append(owner.enter_context(default_engine(ref)))
            return nullcontext(shared[0])

        for bench in cfg.benchmarks:
            problems = load_source(bench.source)
            if bench.limit:
                problems = problems[: bench.limit]
            store = SampleStore(out_dir / f"{bench.name}.sqlite")
            scoring = ScoringConfig(models=[ref], k=bench.k, adaptive=False, sampling=cfg.sampling)
            table = score(problems, store, scoring, rewards=rewards, prompt=prompt, out_dir=out_dir / bench.name,
                          engine_factory=engine_factory)
            counts = list(zip(table["samples"].astype(int), table["successes"].astype(int)))
            results[bench.name] = {
                "pass@1": mean_pass_at_k(counts, 1),
                "k": bench.k,
                "problems": len(problems),
                "mean_reward": float(table["mean_reward"].mean()),
                "mean_tokens": float(table["mean_tokens"].mean()),
                "truncated": int(table["truncated"].sum()),
                "sampling": vars(cfg.sampling),
                "sandbox": sandbox_record(),  # the code isolation its grading ran under
            }
    write_json(out_dir / "results.json", results)
    return results
