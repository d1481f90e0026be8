"""One engine call of the scoring loop: (problem, index) samples, each drawn with its own seed,
graded and stored as they finish.

An engine that reports finished prompts while the call runs (``on_done``, see ``engines/base.py``:
all three built-in engines do) has them graded and stored, one transaction per flush, whenever
``FLUSH_SECONDS`` have passed since the previous flush, and the rest when the call returns. An
evaluation hands a whole benchmark to one call, which can run for an hour on a CPU or at long
lengths on a GPU; a kill now loses only what finished since the last flush and what was unfinished,
not the whole call. If the engine fails mid-call, what it finished is stored before the error goes
on. An engine without ``on_done`` has its call stored when it returns. The ``seconds`` of a stored
sample is its share of the wall time since the previous flush, so they add up to the call's time.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from typing import Any

from ..config import ModelRef, SamplingConfig
from ..data.problem import Problem
from ..engines.base import Completion, Engine
from ..rewards import problem_rewards

FLUSH_SECONDS = 30.0
"""Finished samples wait about this long before they are stored (``STAGERL_FLUSH_SECONDS`` sets it:
0 stores each prompt as it finishes)."""


def sample_seed(base: int, model: str, problem_id: str, idx: int) -> int:
    """The seed of sample ``idx`` of ``problem_id`` by ``model`` (see ``scoring/run.py``)."""
    key = json.dumps([base, model, problem_id, int(idx)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little") & 0x7FFFFFFF


def max_tokens_of(ref: ModelRef, sampling: SamplingConfig) -> int:
    """The model's own ``max_tokens`` if it has one, else the sampling default."""
    return sampling.max_tokens if ref.max_tokens is None else ref.max_tokens


def streams(engine: Engine) -> bool:
    """Whether ``engine.generate`` takes ``on_done`` (reports prompts as they finish)."""
    try:
        return "on_done" in inspect.signature(engine.generate).parameters
    except (TypeError, ValueError):
        return False


def one_call(run: Any, engine: Engine, ref: ModelRef, chunk: list[tuple[Problem, int]]) -> None:
    """Generate the (problem, index) samples of ``chunk`` in one engine call; grade and store them
    as they finish (see the module docstring). ``run`` is ``scoring/run.py``'s ``_Run``."""
    sampling = run.cfg.sampling
    temperature = sampling.temperature if ref.temperature is None else ref.temperature
    seeds = [[sample_seed(sampling.seed, ref.name, p.id, i)] for p, i in chunk]
    done: list[tuple[Problem, int, Completion]] = []
    reported: set[int] = set()
    clock = [time.perf_counter()]
    name = getattr(engine, "name", engine)

    def flush() -> None:
        if done:
            batch, done[:] = list(done), []
            now = time.perf_counter()
            _store(run, ref, batch, (now - clock[0]) / len(batch))
            clock[0] = now

    def on_done(i: int, completions: list[Completion]) -> None:
        if len(completions) != 1 or i in reported or not 0 <= i < len(chunk):
            raise RuntimeError(f"engine {name!r} reported prompt {i} of {len(chunk)} with {len(completions)} "
                               f"completions for n=1{' again' if i in reported else ''}")
        reported.add(i)
        done.append((*chunk[i], completions[0]))
        if time.perf_counter() - clock[0] >= every:
            flush()

    live, every = streams(engine), float(os.environ.get("STAGERL_FLUSH_SECONDS", FLUSH_SECONDS))
    try:
        outs = engine.generate([run.messages(p) for p, _ in chunk], n=1, temperature=temperature, top_p=sampling.top_p,
                               max_tokens=max_tokens_of(ref, sampling), seeds=seeds,
                               **({"on_done": on_done} if live else {}))
    except BaseException:
        flush()  # keep what finished before the failure
        raise
    if len(outs) != len(chunk) or any(len(o) != 1 for o in outs):
        raise RuntimeError(f"engine {name!r} returned {[len(o) for o in outs]} completions for {len(chunk)} prompts × n=1")
    if live and len(reported) != len(chunk):
        raise RuntimeError(f"engine {name!r} reported {len(reported)} of {len(chunk)} prompts as finished")
    if not live:
        done.extend((p, i, comps[0]) for (p, i), comps in zip(chunk, outs))
    flush()


def _store(run: Any, ref: ModelRef, flat: list[tuple[Problem, int, Completion]], share: float) -> None:
    """Grade ``flat``'s samples and store them in one transaction; count them in ``run``."""
    rewards = problem_rewards([p for p, _, _ in flat], [c.text for _, _, c in flat], workers=run.rewards.workers,
                              math_timeout=run.rewards.math_timeout)
    rows = [{"problem_id": p.id, "model": ref.name, "idx": i, "domain": p.domain, "text": c.text,
             "tokens": int(c.tokens), "finish": c.finish, "reward": r, "seconds": share}
            for (p, i, c), r in zip(flat, rewards)]
    totals = run.totals
    totals["stored"] += run.store.add(rows)
    for row in rows:
        run.stored[ref.name].setdefault(row["problem_id"], {})[row["idx"]] = row["reward"]
    totals["generated"] += len(rows)
    totals["tokens"] += sum(r["tokens"] for r in rows)
    elapsed = max(time.perf_counter() - totals["start"], 1e-9)
    run.bar.update(len(rows))
    run.bar.set_postfix(samples_s=f"{totals['generated'] / elapsed:.2f}", tok_s=f"{totals['tokens'] / elapsed:.1f}",
                        refresh=False)
