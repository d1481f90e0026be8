"""The scoring loop: k samples per (problem, reference model), graded and stored as they come.

Models are scored one at a time (the ladder weakest first, or reversed), each loaded only when it has
work and closed before the next, so memory holds one model. A model's phase runs in rounds:
every pair that still needs samples asks for its next missing indices (``round_size`` of them in
adaptive mode, all missing ones under the fixed protocol); the round's (problem, index) samples
are cut, in problem and index order, into engine calls of ``max(call_size, concurrency)`` samples
(``concurrency``: the engine's requests in flight, so a served model is kept busy whatever the
round size); each call's samples are graded and stored as they finish (``call.py``), and all of them
before the next call starts.

Resuming: what to generate is always computed from the store (missing indices of ``0..k-1``), so
a run killed at any moment and started again re-generates nothing it stored, and the store's
primary key makes storing anything twice impossible. Only what the call in flight had not stored is lost.

Seeds: sample ``idx`` of problem ``p`` by model ``m`` is drawn with the seed
``sample_seed(sampling.seed, m, p, idx)`` whichever call asks for it, so adaptive rounds of any
size, a resumed run and the fixed protocol all draw the same sample for the same (problem, model,
index): an adaptive pair's samples are the first m of the fixed protocol's. Engines honour it as
``Engine`` documents (``transformers``: one generator per sequence; ``vllm``: one seeded request
per sample; ``openai``: one ``n=1`` request per sample with ``seed``, on servers that honour it).
The texts are identical as long as the engine's logits for a sequence do not depend on the batch it
runs in; batched kernels can differ in the last bits between batch shapes, which changes a token
only when a draw falls within that rounding distance of a token boundary (see
``engines/sampler.py``).

Run without the stagerl CLI (used by the kill-and-resume test)::

    python -m stagerl.scoring.run --problems problems.jsonl --model tiny=/path/to/ckpt \\
        --store runs/x/samples.sqlite --out runs/x --k 8 --max-tokens 64 --option batch_size=8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ModelRef, PromptConfig, RewardsConfig, SamplingConfig, ScoringConfig, StopConfig
from ..console import lines_for, progress as progress_bar
from ..data.problem import Problem
from ..data.prompts import to_messages
from ..engines.base import Engine
from ..rewards import sandbox_record
from ..store import SampleStore
from .fresh import reconcile
from .adaptive import needs_samples, next_indices, stats_of
from .bayes_stop import may_stop
from .call import max_tokens_of, one_call, sample_seed  # noqa: F401  (sample_seed: imported from here by callers)
from .table import pass_rate_table, write_table

EngineFactory = Callable[[ModelRef], Any]
"""``factory(ref)`` returns the model's engine, or a context manager giving it (``score`` enters it
and leaves it when the model is done; a bare engine is closed then)."""
ORDERS = ("weakest-first", "strongest-first")


class ScoringError(ValueError):
    """Scoring cannot start as asked (bad arguments, or a store made with other settings)."""


def default_engine(ref: ModelRef) -> Engine:
    """``make_engine(ref.engine, ref.model, **ref.options)`` (the engine resolves a local model)."""
    from ..engines import make_engine

    return make_engine(ref.engine, ref.model, **ref.options)


_messages: Callable[[Problem], Any] = to_messages


PROBES = (Problem("probe", "math", "PROBLEM", answer="0"),
          Problem("probe", "code", "PROBLEM", tests={"inputs": ["0"], "outputs": ["0"]}))


def _fingerprint(ref: ModelRef, sampling: SamplingConfig, messages: Callable = _messages) -> dict[str, Any]:
    temp = sampling.temperature if ref.temperature is None else ref.temperature
    prompt = hashlib.sha256(json.dumps([messages(p) for p in PROBES]).encode()).hexdigest()[:16]
    return {"model": ref.model, "engine": ref.engine, "temperature": temp, "top_p": sampling.top_p,
            "max_tokens": max_tokens_of(ref, sampling), "prompt": prompt, "seeds": "per-sample"}


def _check_inputs(problems: list[Problem], store: SampleStore, cfg: ScoringConfig, messages: Callable) -> None:
    if cfg.k < 1 or cfg.round_size < 1:
        raise ScoringError(f"k and round_size must be >= 1, got k={cfg.k}, round_size={cfg.round_size}")
    if not cfg.models:
        raise ScoringError("no reference models to score with")
    if cfg.order not in ORDERS:
        raise ScoringError(f"order must be one of {ORDERS}, got {cfg.order!r}")
    seen: set[str] = set()
    for i, p in enumerate(problems):
        if p.id in seen:
            raise ScoringError(f"problem {i}: id {p.id!r} appears twice; problem ids must be unique")
        seen.add(p.id)
    names = [m.name for m in cfg.models]
    if len(set(names)) != len(names):
        raise ScoringError(f"reference model names must be unique, got {names}")
    check_settings(store, cfg.models, cfg.sampling, messages)


def check_settings(store: SampleStore, models: list[ModelRef], sampling: SamplingConfig,
                   messages: Callable = _messages) -> None:
    """Stored samples are reused only if they were made the same way: ``ScoringError`` otherwise."""
    for ref in models:
        want, had = _fingerprint(ref, sampling, messages), store.get_meta(f"model/{ref.name}")
        if had is not None and had != want:
            diff = {key: (had.get(key), want[key]) for key in want if had.get(key) != want[key]}
            raise ScoringError(f"{store.path} holds samples of model {ref.name!r} made with other settings "
                               f"(stored vs now: {diff}); use a new run folder or another model name")


@dataclass
class _Run:
    """What every step of one ``score`` call shares (instead of a dozen parameters handed down)."""

    cfg: ScoringConfig
    rewards: RewardsConfig
    messages: Callable[[Problem], Any]
    rules: Any
    store: SampleStore
    names: list[str]
    stored: dict  # model -> problem -> {idx: reward}
    bar: Any
    adaptive: bool
    stopped: set = field(default_factory=set)  # (problem, model) pairs stopped early
    joint: Any = None  # the joint rule's prior, once its calibration share is scored
    label: str = "scoring"  # what progress lines call the work
    totals: dict = field(default_factory=lambda: {"generated": 0, "stored": 0, "tokens": 0,
                                                  "start": time.perf_counter()})


def score(
    problems: list[Problem],
    store: SampleStore,
    config: ScoringConfig,
    *,
    rules: Any = None,
    rewards: RewardsConfig | None = None,
    prompt: PromptConfig | None = None,
    engine_factory: EngineFactory | None = None,
    progress: bool = True,
    out_dir: str | Path | None = None,
    rescore_changed: bool = False,
    label: str = "scoring",
) -> pd.DataFrame:
    """Score ``problems`` with the ladder ``config.models`` (weakest first); return the pass-rate table.

    ``config`` is the recipe's ``scoring`` section (models, k, adaptive, round_size, sampling,
    call_size, order). Every sample is graded with ``problem_rewards`` under ``rewards`` (the
    recipe's ``rewards`` section: grading workers, math time bound) and stored in ``store``. With
    ``config.adaptive`` and level ``rules`` (bound to the model names), pairs are sampled
    ``round_size`` at a time and stop once no open verdict depends on them (see ``adaptive.py``);
    without rules, or with ``adaptive`` off, every pair gets k samples (the paper's protocol).
    ``engine_factory(ref)`` gives each model's engine (default: ``default_engine``). ``order``:
    ``weakest-first`` (the ladder as given) or ``strongest-first``; in adaptive mode a model scored
    later is skipped where the earlier ones already settle its problems (the table keeps ladder
    order either way). With ``out_dir``, ``pass_rates.parquet`` and ``ledger.json`` are written
    there. ``prompt`` builds the chat prompt (default ``PromptConfig()``); it is part of the stored
    settings. The table's ``attrs`` hold ``generated`` (samples generated by this call) and
    ``stored`` (new rows). Stored samples of a problem whose answer or tests changed are re-graded;
    a changed prompt is an error unless ``rescore_changed`` (see ``fresh.py``), listed in
    ``attrs["regraded"]`` / ``attrs["deleted"]``. ``label`` names the work in progress lines."""
    if not isinstance(config, ScoringConfig):
        raise TypeError(f"score(problems, store, config): config must be a ScoringConfig, got {type(config).__name__}")
    messages = (prompt or PromptConfig()).messages
    _check_inputs(problems, store, config, messages)
    if rules is not None and config.adaptive and config.stop.rule != "exact" and "reward" in rules.rate.values():
        raise ScoringError(f"scoring.stop.rule {config.stop.rule!r} counts successes out of k; the level rules' "
                           f"rate: {rules.rate} (mean reward) needs scoring.stop.rule: exact")
    k, names = config.k, [m.name for m in config.models]
    rewards = rewards or RewardsConfig()
    changed = reconcile(store, problems, rescore_changed, rewards.workers, quiet=not progress)
    store.register_problems((p.id, p.domain) for p in problems)
    for ref in config.models:
        store.set_meta(f"model/{ref.name}", _fingerprint(ref, config.sampling, messages))
    store.set_meta("scoring", {"k": k, "models": names, **stop_meta(config)})

    stored = {name: store.indices(name) for name in names}
    remaining = sum(max(0, k - len([i for i in stored[m].get(p.id, {}) if i < k])) for m in names for p in problems)
    adaptive = bool(config.adaptive and rules is not None)
    bar = progress_bar(remaining, label, "sample", show=progress, bound=adaptive)  # adaptive: pairs may stop early
    run = _Run(config, rewards, messages, rules, store, names, stored, bar, adaptive=adaptive, label=label)
    try:
        models = config.models if config.order == "weakest-first" else config.models[::-1]
        parts = _parts(run, problems)
        for i, part in enumerate(parts):
            if i:  # the joint rule: the rest, with the prior fitted to the calibration share (parts[0])
                run.joint = _fit_joint(run, parts[0])
            for ref in models:
                _score_model(run, ref, part, engine_factory or default_engine)
    finally:
        bar.close()
    if run.totals["generated"]:
        store.set_meta("sandbox", sandbox_record())  # the code isolation this grading ran under
    keys = [(p.id, p.domain) for p in problems]
    table = write_table(store, out_dir, keys, names, k) if out_dir is not None else \
        pass_rate_table(store, keys, names, k)
    table.attrs.update(generated=run.totals["generated"], stored=run.totals["stored"], **changed)
    return table


def _pending(run: _Run, ref: ModelRef, problems: list[Problem]) -> list[tuple[Problem, int]]:
    """The (problem, sample index) samples of this model's next round, in problem and index order."""
    k, out = run.cfg.k, []
    for p in problems:
        have = run.stored[ref.name].get(p.id, {})
        idxs = next_indices(have, k, run.cfg.round_size if run.adaptive else k)
        if not idxs:
            continue
        if run.adaptive:
            stats = {m: stats_of(run.stored[m].get(p.id, {}), k, run.rules.measure(p.domain)) for m in run.names}
            if ref.name not in needs_samples(run.rules, stats, run.names, k, p.id, p.domain) or \
                    _bayes_stops(run, stats, ref.name, p):
                if (p.id, ref.name) not in run.stopped:  # its remaining samples will never be drawn
                    run.stopped.add((p.id, ref.name))
                    run.bar.total -= len(next_indices(have, k, k))
                    run.bar.refresh()
                continue
        out.extend((p, i) for i in idxs)
    return out


def stop_meta(config: ScoringConfig) -> dict[str, Any]:
    """What the store records of the stopping rule: nothing for the exact rule (its labels are the
    k-sample labels); the statistical rule's settings otherwise (the table then takes a pair stopped
    early at its point estimate, see ``table.py``)."""
    from ..config import to_dict

    return {} if not config.adaptive or config.stop.rule == "exact" else {"stop": to_dict(config.stop)}


def _parts(run: _Run, problems: list[Problem]) -> list[list[Problem]]:
    """The problems in scoring order: all at once, or (``joint``) the calibration share, then the rest."""
    stop = run.cfg.stop
    if not run.adaptive or stop.rule != "joint":
        return [problems]
    from .joint_stop import in_calibration

    cal = {p.id for p in problems if in_calibration(p.id, stop.calibration, stop.seed)}
    return [[p for p in problems if p.id in cal], [p for p in problems if p.id not in cal]]


def _fit_joint(run: _Run, calibration: list[Problem]) -> Any:
    """The joint prior, fitted to the calibration problems' stored samples (every model)."""
    from .joint_stop import fit_joint_prior

    stop, records = run.cfg.stop, [{m: stats_of(run.stored[m].get(p.id, {}), run.cfg.k) for m in run.names}
                                   for p in calibration]
    return fit_joint_prior(records, run.names, classes=stop.classes, draws=stop.draws, seed=stop.seed)


def _bayes_stops(run: _Run, stats: dict, model: str, problem: Problem) -> bool:
    """Whether the statistical rule (``bayes``, or ``joint`` once fitted) stops this pair now."""
    stop = run.cfg.stop
    prior = stop.prior if stop.rule == "bayes" else run.joint if stop.rule == "joint" else None
    if prior is None:
        return False
    order = run.names if run.cfg.order == "weakest-first" else run.names[::-1]
    return may_stop(run.rules, stats, order, run.cfg.k, problem.id, problem.domain, model, prior, stop.error)


def _score_model(run: _Run, ref: ModelRef, problems: list[Problem], factory: EngineFactory) -> None:
    """All rounds of one model; its engine is made on first need and left (closed) at the end."""
    with ExitStack() as stack:
        engine: Engine | None = None
        while True:
            units = _pending(run, ref, problems)
            if not units:
                return
            if engine is None:
                run.bar.set_description(f"{run.label} [loading {ref.name}]")
                made = factory(ref)
                engine = stack.enter_context(made if hasattr(made, "__enter__") else closing(made))
                run.bar.set_description(f"{run.label} [{ref.name}]")
                stack.enter_context(lines_for(engine, run.bar))  # a call can outlast a line's interval
            size = max(run.cfg.call_size, int(getattr(engine, "concurrency", 1) or 1))
            for start in range(0, len(units), size):
                one_call(run, engine, ref, units[start:start + size])


# ---------------------------------------------------------------------- entry point without the CLI


def read_problems(path: str | Path) -> list[Problem]:
    """Problems from a JSONL file of ``Problem.to_dict()`` rows (errors name the line)."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(Problem.from_dict(json.loads(line)))
            except (ValueError, TypeError) as e:
                raise ScoringError(f"{path}, line {n}: {e}") from None
    return out


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return tuple(text.split("=", 1))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    """``python -m stagerl.scoring.run``: score a JSONL problem file; print a JSON summary line."""
    ap = argparse.ArgumentParser(description="Difficulty scoring into a sample store (resumable).")
    ap.add_argument("--problems", required=True, help="JSONL file of problems")
    ap.add_argument("--model", type=_kv, action="append", required=True, help="NAME=SPEC, weakest first")
    ap.add_argument("--engine", default="transformers")
    ap.add_argument("--option", type=_kv, action="append", default=[], help="engine option KEY=VALUE (JSON value)")
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", default=None, help="folder for pass_rates.parquet and ledger.json")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--round-size", type=int, default=4)
    ap.add_argument("--fixed", action="store_true", help="all k samples for every pair")
    ap.add_argument("--rules", default=None, help="level rules (preset or YAML) for adaptive scoring")
    ap.add_argument("--stop", default="exact", choices=("exact", "bayes", "joint"), help="stopping rule (scoring.stop.rule)")
    ap.add_argument("--stop-error", type=float, default=0.01, help="budget of the statistical rule (scoring.stop.error)")
    ap.add_argument("--bind", type=_kv, action="append", default=[], help="rules alias=model name")
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--call-size", type=int, default=256)
    ap.add_argument("--order", default="strongest-first", choices=ORDERS)
    ap.add_argument("--reward-workers", type=int, default=None, help="grading processes (rewards.workers)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    options = {key: _json_or_str(v) for key, v in a.option}
    models = [ModelRef(name=n, model=s, engine=a.engine, options=dict(options)) for n, s in a.model]
    rules = None
    if a.rules and not a.fixed:
        from ..levels.rules import bind, load_rules
        rules = bind(load_rules(a.rules), dict(a.bind)) if a.bind else load_rules(a.rules)
    store = SampleStore(a.store)
    cfg = ScoringConfig(models=models, k=a.k, adaptive=not a.fixed, round_size=a.round_size,
                        sampling=SamplingConfig(a.temperature, a.top_p, a.max_tokens, a.seed), call_size=a.call_size,
                        order=a.order, stop=StopConfig(rule=a.stop, error=a.stop_error))
    table = score(read_problems(a.problems), store, cfg, rules=rules, rewards=RewardsConfig(workers=a.reward_workers),
                  progress=not a.no_progress, out_dir=a.out)
    print(json.dumps({"generated": table.attrs["generated"], "stored": table.attrs["stored"],
                      "rows": len(store), "pairs": len(table)}), flush=True)


def _json_or_str(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


if __name__ == "__main__":
    main()
