"""Re-levelling between stages: a stage's candidates scored again with the current policy.

The paper fixes every problem's level once, from the initial models. A stage with ``relevel`` set
(``StageConfig.relevel``) instead re-scores its candidate problems (``relevel.levels``, by default
the stage's own levels) with the policy it starts from — the previous stage's checkpoint — and
trains only on those whose pass rate lies in ``relevel.band`` (level-rule interval syntax,
``(0,1)`` by default: problems the policy neither always fails nor always solves).

Scoring is the project's adaptive scoring (``stagerl.scoring.score``) into the run's own sample
store (``samples.sqlite``) under the model name ``policy-<stage folder>``: samples are drawn in
rounds and a problem stops as soon as its band verdict is settled; a rerun (or a resume after a
crash) generates nothing already stored. The cost is in the run's ``ledger.json`` (rebuilt from the
store, so it lists the re-levelling model beside the reference models) and in::

    stages/<i>_<name>/relevel.json
      {"moves": {"<old level>": {"<new level>" | "dropped": n}},   # the stage's levels joined by '+'
       "dropped": {"too_easy": n, "too_hard": n}, "band": "(0,1)", "kept": n, "candidates": n,
       "kept_ids": [...], "cost": {"samples", "tokens", "seconds", ...}, "generated": n (this call), ...}

A problem in several candidate levels counts once under each of them (levels may overlap), so each
row of ``moves`` sums to its old level's size. Sampling uses the stage's temperature and maximum
completion length, ``relevel.top_p`` and ``stage.seed``, with the recipe's prompt.

**Several processes** (``accelerate launch``): each process scores its share of the candidates
(``candidates[rank::world]``, on its own device) into the shared store, so the work divides by the
processes and no process waits longer than the slowest share; the table is then read from the store
by every process. Samples have per-(problem, model, index) seeds and each problem's adaptive
verdict depends only on its own samples, so the result is the one-process result
(``tests/train/test_relevel_processes.py``); ``generated_by_process`` in relevel.json shows the split.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import PartialState
from accelerate.utils import gather_object

from ..config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig, StageConfig, to_dict
from ..curriculum import StageDataError, stage_dir, stage_problems
from ..data.problem import Problem
from ..data.prompts import to_messages
from ..levels.rules import decide, load_rules, parse_interval
from ..scoring import ledger, pass_rate_table, score
from ..store import SampleStore


class _RelevelStore(SampleStore):
    """The run's store, except that the scoring run's record (meta key ``scoring``: its k and
    ladder) is left as the reference scoring wrote it: re-levelling adds samples, not a ladder."""

    def set_meta(self, key: str, value: Any) -> None:
        if key != "scoring":
            super().set_meta(key, value)


def candidates(stage: StageConfig, levels: dict[str, list[Problem]]) -> list[Problem]:
    """The problems a re-levelled stage chooses from (raises ``StageDataError`` for a missing level)."""
    cand = stage.relevel.levels or stage.levels
    return stage_problems(dataclasses.replace(stage, levels=list(cand)), levels)


class _Prompt:
    """What ``score`` needs of a ``PromptConfig``: the training stages' own prompt builder."""

    def __init__(self, messages: Callable[[Problem], list[dict]]) -> None:
        self.messages = messages


def relevel_stage(policy: str | Path, stage: StageConfig, levels: dict[str, list[Problem]], run_dir: str | Path,
                  index: int, messages: Callable[[Problem], list[dict]] = to_messages,
                  rewards: RewardsConfig | None = None, engine_factory: Callable | None = None,
                  progress: bool = True) -> list[Problem]:
    """Re-score ``stage``'s candidates with ``policy``; write relevel.json; return the kept problems."""
    cfg = stage.relevel
    if cfg is None:
        raise ValueError(f"stage {stage.name!r} has no relevel settings")
    run_dir, out = Path(run_dir), stage_dir(run_dir, index, stage)
    t0 = time.time()
    cand = candidates(stage, levels)
    name = f"policy-{out.name}"
    ref = ModelRef(name=name, model=str(policy), engine="transformers", options=dict(cfg.options))
    sampling = SamplingConfig(temperature=stage.temperature, top_p=cfg.top_p, max_tokens=stage.max_completion_length,
                              seed=stage.seed)
    rules = load_rules({"models": {"policy": name}, "levels": {"band": f"policy in {cfg.band}"}})
    store = _RelevelStore(run_dir / "samples.sqlite")
    # cpu: on a machine without an accelerator, several processes form a gloo group only when asked to
    state = PartialState(cpu=not (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())))
    world, rank = state.num_processes, state.process_index
    if world > 1 and state.device.type != "cpu" and ref.engine == "transformers" and "device" not in ref.options:
        ref = dataclasses.replace(ref, options={**ref.options, "device": str(state.device)})  # this rank's device
    if state.is_main_process:
        store.register_problems((p.id, p.domain) for p in cand)  # the store's problem order, as one process makes it
    state.wait_for_everyone()
    config = ScoringConfig(models=[ref], k=cfg.k, adaptive=True, round_size=cfg.round_size, sampling=sampling)
    mine = cand[rank::world]  # each process scores its share (per-sample seeds: the samples do not depend on it)
    part = score(mine, store, config, rules=rules, rewards=rewards, prompt=_Prompt(messages),
                 engine_factory=engine_factory, progress=progress and state.is_main_process,
                 label="re-levelling") if mine else None
    by_rank = [int(part.attrs.get("generated", 0)) if part is not None else 0]
    if world > 1:
        by_rank = [int(n) for n in gather_object(by_rank)]  # also waits until every share is stored
    table = pass_rate_table(store, [(p.id, p.domain) for p in cand], [name], cfg.k)
    band = parse_interval(cfg.band, "relevel.band")
    target = "+".join(stage.levels)
    kept: set[str] = set()
    dropped = {"too_easy": 0, "too_hard": 0}
    for row in table.itertuples(index=False):
        verdict = decide(rules, {name: (row.rate_lo, row.rate_hi)}, row.problem_id, row.domain)["band"]
        if verdict:
            kept.add(row.problem_id)
        else:
            rate = row.pass_rate if row.pass_rate == row.pass_rate else 0.0
            dropped["too_easy" if rate >= band.hi else "too_hard"] += 1
    moves: dict[str, dict[str, int]] = {}
    for level in cfg.levels or stage.levels:
        for p in levels[level]:
            new = target if p.id in kept else "dropped"
            moves.setdefault(level, {}).setdefault(new, 0)
            moves[level][new] += 1
    book = ledger(store)
    info = {
        "moves": moves, "dropped": dropped, "band": cfg.band, "model": name, "policy": str(policy), "k": cfg.k,
        "levels": list(cfg.levels or stage.levels), "target": target, "candidates": len(cand), "kept": len(kept),
        "kept_ids": [p.id for p in cand if p.id in kept], "cost": book["models"].get(name, {}),
        "generated": sum(by_rank), "generated_by_process": by_rank, "seconds": round(time.time() - t0, 1),
        "config": to_dict(cfg),
    }
    if state.is_main_process:
        _write_ledger(run_dir, book)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "relevel.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(out / "relevel.json")
    if not kept:
        raise StageDataError(f"stage {stage.name!r}: re-levelling kept none of its {len(cand)} candidates "
                             f"(band {cfg.band}: {dropped['too_easy']} too easy, {dropped['too_hard']} too hard); "
                             f"widen relevel.band or add candidate levels (see {out / 'relevel.json'})")
    return [p for p in cand if p.id in kept]


def _write_ledger(run_dir: Path, book: dict) -> None:
    tmp = run_dir / ".ledger.json.tmp"
    tmp.write_text(json.dumps(book, indent=1) + "\n")
    tmp.replace(run_dir / "ledger.json")
