"""Benchmark evaluation: k samples per problem through the same engines, rewards and store as
scoring (so a killed evaluation resumes), reported as pass@1 averaged over the k samples."""

from __future__ import annotations

from pathlib import Path

from ..config import EvalConfig, ModelRef, PromptConfig
from ..rewards import sandbox_record
from ..rundir import write_json
from .passk import mean_pass_at_k


class _KeepOpen:
    """Hands ``score`` the shared engine; its ``close`` leaves the model loaded for the next benchmark."""

    def __init__(self, engine) -> None:
        self.engine, self.name = engine, getattr(engine, "name", "engine")

    def generate(self, *args, **kwargs):
        return self.engine.generate(*args, **kwargs)

    def close(self) -> None:
        pass


def evaluate_checkpoint(name: str, model: str, cfg: EvalConfig, out_dir: str | Path,
                        prompt: PromptConfig | None = None) -> dict[str, dict]:
    """Evaluate ``model`` (a checkpoint folder, embedded alias or hub id) on every benchmark of
    ``cfg``; write ``<out_dir>/results.json`` and return it. The model is loaded once for all
    benchmarks, and only if some sample is not stored yet."""
    from ..data import load_source
    from ..scoring import default_engine, score
    from ..store import SampleStore

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = ModelRef(name=name, model=model, engine=cfg.engine, options=dict(cfg.options))
    messages = (prompt or PromptConfig()).messages
    shared: list = []

    def engine_factory(_ref: ModelRef) -> _KeepOpen:
        if not shared:
            shared.append(default_engine(ref))
        return _KeepOpen(shared[0])

    results: dict[str, dict] = {}
    try:
        for bench in cfg.benchmarks:
            problems = load_source(bench.source)
            if bench.limit:
                problems = problems[: bench.limit]
            store = SampleStore(out_dir / f"{bench.name}.sqlite")
            table = score(problems, [ref], store, k=bench.k, adaptive=False, sampling=cfg.sampling,
                          out_dir=out_dir / bench.name, messages=messages, engine_factory=engine_factory)
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
    finally:
        if shared:
            shared[0].close()
    write_json(out_dir / "results.json", results)
    return results
