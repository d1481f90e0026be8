"""Held-out accuracy during training: the live policy on a dev set, every ``eval_every`` steps.

One code path, our own: the policy being trained is handed (unwrapped, as TRL unwraps it for its own
generation) to the ``transformers`` engine, and its samples go through the same ``scoring.score``
loop, rewards and ``SampleStore`` as scoring and evaluation. Each evaluation is one "model" of the
store ``stages/<i>_<name>/dev.sqlite`` named ``step-<N>``, ``dev_k`` samples per problem; its score
is the mean pass@1 over the dev problems (a sample passes when its reward is 1, as in evaluation).

* **When.** At step 0 (the starting policy, a metrics.jsonl row ``{"step": 0, "dev_score": ...}``)
  and at every step that is a multiple of ``eval_every``, before that step's row is logged, so the
  row of step N carries ``dev_score`` (also in TensorBoard / W&B). A stage that ends between two
  evaluations has no dev score for its last steps.
* **Resume.** Samples are stored as they are made. The scores so far and the evaluations' cost
  (``state()``) are saved with every checkpoint (``resume_state.py``); a stage resumed from the
  checkpoint of step S gets them back (``restore``), step 0 included, and the samples stored for
  evaluations after step S are deleted: they were made by weights the checkpoint does not hold, so
  those evaluations run again on the resumed weights (an evaluation killed half-way before the
  checkpoint of its step is redone whole). A stage that starts again from step 0 (killed before its
  first complete checkpoint) keeps the starting policy's evaluation (``step-0``) when it is complete,
  as the same weights and seeds would make the same samples again; every other evaluation of the
  earlier attempt, and a half-made step 0, is removed first. An evaluation's cost counts the tokens
  of all its samples, so a kept step 0 costs what it cost when it was made.
* **Several processes.** Every rank evaluates its share of the dev problems (``problems[rank::world]``)
  inside TRL's ``unwrap_model_for_generation`` (which gathers ZeRO-3 parameters), the pass counts
  are gathered, and every rank gets the same score, so a plateau on ``dev_score`` stops all ranks at
  the same step.
* **Best policy.** With ``keep_best`` every new best score saves the live policy (``best.py``), and
  the stage ends with the policy of its best dev score.
* **RNG.** Generation runs under ``torch.random.fork_rng`` with seeds of its own, so training's
  random streams (and a resumed run's equality with an uninterrupted one) are untouched.

The dev set (``split_dev``): ``dev: {holdout: N}`` draws N of the stage's problems (by the stage's
seed, in proportion to the domains) and removes them from training; ``dev: {source: ..., limit: N}``
loads a problem source (``builtin:math500``) as given (a training problem with the id of a dev
problem is removed from training). The plateau may watch ``dev_score``
(``plateau.metric: dev_score``); its window then counts evaluations.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback

from ..config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig, StageConfig
from ..data.problem import Problem
from .best import BestPolicy

DEV_METRIC = "dev_score"
"""The metrics.jsonl key of the dev score."""


class DevSetError(ValueError):
    """A stage's dev set cannot be built (holdout too large, empty source)."""


def _quota(sizes: dict[str, int], n: int) -> dict[str, int]:
    """``n`` split over domains in proportion to ``sizes`` (largest remainders get the rest)."""
    total = sum(sizes.values())
    exact = {d: n * s / total for d, s in sizes.items()}
    out = {d: int(v) for d, v in exact.items()}
    for d in sorted(exact, key=lambda d: exact[d] - out[d], reverse=True)[: n - sum(out.values())]:
        out[d] += 1
    return out


def split_dev(problems: list[Problem], stage: StageConfig) -> tuple[list[Problem], list[Problem]]:
    """``(training problems, dev problems)`` of a stage; no dev set when ``eval_every`` is off."""
    dev = stage.dev
    if not stage.eval_every or dev is None:
        return problems, []
    where = f"stage {stage.name!r}: dev"
    if dev.source is not None:
        from ..data import load_source

        found = load_source(dev.source)
        found = found[: dev.limit] if dev.limit else found
        if not found:
            raise DevSetError(f"{where}.source {dev.source!r} holds no problems")
        ids = {p.id for p in found}
        train = [p for p in problems if p.id not in ids]  # a dev problem is never trained on
        if not train:
            raise DevSetError(f"{where}.source {dev.source!r} holds every problem of the stage's levels {stage.levels}")
        return train, found
    if dev.holdout >= len(problems):
        raise DevSetError(f"{where}.holdout = {dev.holdout} leaves nothing to train on: the stage's levels "
                          f"{stage.levels} hold {len(problems)} problems")
    pools = {d: [p for p in problems if p.domain == d] for d in dict.fromkeys(p.domain for p in problems)}
    rng = random.Random(f"{stage.seed}:dev")
    chosen: set[str] = set()
    for domain, n in _quota({d: len(v) for d, v in pools.items()}, dev.holdout).items():
        chosen.update(p.id for p in rng.sample(pools[domain], n))
    return [p for p in problems if p.id not in chosen], [p for p in problems if p.id in chosen]


def _remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _start_afresh(path: Path, problems: list[Problem], k: int) -> None:
    """Before a stage's step 0: keep only a complete ``step-0`` evaluation of ``problems`` (``k`` samples
    each) from an earlier attempt; anything else in the store is stale (made by weights no checkpoint
    holds, or a step 0 cut short, whose samples depend on the batches they were made in)."""
    if not path.exists():
        return
    from ..store import SampleStore

    with SampleStore(path) as store:
        rows = store.query("SELECT problem_id, model, idx FROM samples")
    if {(pid, idx) for pid, model, idx in rows if model == "step-0"} != {(p.id, i) for p in problems for i in range(k)}:
        _remove_store(path)
        return
    with SampleStore(path) as store:
        store.delete_models({model for _, model, _ in rows} - {"step-0"})


class DevEvalCallback(TrainerCallback):
    """Evaluates ``trainer``'s live policy on ``problems`` at step 0 and every ``stage.eval_every`` steps.

    ``history`` maps step -> dev score; ``tokens`` and ``seconds`` are what the evaluations cost
    (tokens summed over all processes).
    """

    def __init__(self, trainer: Any, problems: list[Problem], stage: StageConfig, out_dir: str | Path,
                 messages: Callable[[Problem], list[dict]], rewards: RewardsConfig | None = None,
                 batch_size: int | None = None) -> None:
        dev = stage.dev
        self.trainer, self.problems, self.every, self.k = trainer, problems, int(stage.eval_every), stage.dev_k
        self.stage_name, self.messages, self.rewards = stage.name, messages, rewards
        self.batch_size = batch_size
        self.store_path = Path(out_dir) / "dev.sqlite"
        self.sampling = SamplingConfig(temperature=dev.temperature, top_p=dev.top_p,
                                       max_tokens=dev.max_tokens or stage.max_completion_length, seed=stage.seed)
        self.history: dict[int, float] = {}
        self.tokens, self.seconds = 0, 0.0
        self.best = BestPolicy(trainer, out_dir) if stage.keep_best else None  # best.py

    # ------------------------------------------------------------------ resume

    def state(self) -> dict[str, Any]:
        """The scores so far and what the evaluations cost (saved with each checkpoint)."""
        return {"history": {str(k): v for k, v in self.history.items()}, "tokens": self.tokens, "seconds": self.seconds}

    def restore(self, state: dict[str, Any], step: int) -> None:
        """Resume at the checkpoint of ``step``: its scores and cost back, later evaluations' samples deleted."""
        self.history = {int(k): float(v) for k, v in state["history"].items()}
        self.tokens, self.seconds = int(state["tokens"]), float(state["seconds"])
        acc = self.trainer.accelerator
        if acc.is_main_process and self.store_path.exists():
            from ..store import SampleStore

            with SampleStore(self.store_path) as store:
                later = [m for (m,) in store.query("SELECT DISTINCT model FROM samples")
                         if m.startswith("step-") and int(m[5:]) > step]
                store.delete_models(later)
        acc.wait_for_everyone()
        if self.best is not None:
            self.best.drop_after(step)

    # ------------------------------------------------------------------ events

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        if state.global_step != 0:
            return  # resumed from a checkpoint: ``restore`` has run (resume_state.py)
        acc = self.trainer.accelerator
        if acc.is_main_process:
            _start_afresh(self.store_path, self.problems, self.k)  # an earlier attempt's: only a whole step 0 stays
        acc.wait_for_everyone()
        if self.best is not None:
            self.best.drop_after(-1)  # and so are the policies it kept
        score = self.evaluate(0)
        self.trainer.log({DEV_METRIC: score})  # the step-0 row of metrics.jsonl (and TensorBoard)

    def on_step_end(self, args, state, control, **kwargs) -> None:
        step = state.global_step
        if step > 0 and step % self.every == 0:
            score = self.evaluate(step)
            # logged with TRL's own metrics of this step: the step's single row carries it (TRL averages
            # ``_metrics`` into the log it makes right after this event)
            self.trainer._metrics["train"][DEV_METRIC].append(score)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, step: int) -> float:
        """The dev score of the live policy (same value on every process); its samples are stored."""
        from trl.models import unwrap_model_for_generation

        trainer, t0 = self.trainer, time.time()
        acc, args = trainer.accelerator, trainer.args
        mine = self.problems[acc.process_index::acc.num_processes]
        with unwrap_model_for_generation(trainer.model_wrapped, acc,
                                         gather_deepspeed3_params=args.ds3_gather_for_generation,
                                         gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs) as model:
            was_training = model.training
            try:
                counts, tokens = self._score(model, mine, step) if mine else ([], 0)
            finally:
                model.train(was_training)
        parts = gather_object([(counts, tokens)])
        all_counts = [c for part_counts, _ in parts for c in part_counts]
        score = sum(c / n for n, c in all_counts) / len(all_counts)  # mean pass@1, as evaluation computes it
        if step not in self.history:  # an evaluation's tokens count once (all stored a second time: none made)
            self.tokens += sum(t for _, t in parts)
        self.history[step] = score
        self.seconds += time.time() - t0
        if acc.is_main_process:
            print(f"[stagerl] stage {self.stage_name} step {step}: dev_score {score:.3f} "
                  f"({len(all_counts)} problems x k={self.k}, {time.time() - t0:.1f} s)", flush=True)
        if self.best is not None:
            self.best.offer(step, self.history)
        return score

    def _score(self, model: Any, problems: list[Problem], step: int) -> tuple[list[tuple[int, int]], int]:
        """``(samples, successes)`` per problem and the tokens of their samples (stored or made now)."""
        from ..engines.hf import TransformersEngine
        from ..scoring import score
        from ..store import SampleStore

        name = f"step-{step}"
        ref = ModelRef(name=name, model=f"{self.stage_name}@{name}", engine="transformers")
        tokenizer = self.trainer.processing_class
        store = SampleStore(self.store_path)
        ids = [p.id for p in problems]  # this process's share: the others write to the same store meanwhile

        bf16 = bool(self.trainer.args.bf16) and torch.cuda.is_available()
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                scoring = ScoringConfig(models=[ref], k=self.k, adaptive=False, sampling=self.sampling)
                table = score(problems, store, scoring, rewards=self.rewards,
                              prompt=SimpleNamespace(messages=self.messages),  # score uses only .messages
                              engine_factory=lambda _ref: TransformersEngine(model, tokenizer,
                                                                             batch_size=self.batch_size),
                              progress=False)
            tokens = sum(int(r["tokens"]) for r in store.samples(model=name, problem_ids=ids))
        finally:
            store.close()
        counts = list(zip(table["samples"].astype(int).tolist(), table["successes"].astype(int).tolist()))
        return counts, tokens


def add_dev_eval(trainer: Any, problems: list[Problem], stage: StageConfig, out_dir: str | Path,
                 messages: Callable[[Problem], list[dict]], rewards: RewardsConfig | None = None) -> DevEvalCallback | None:
    """Register a ``DevEvalCallback`` on ``trainer`` when the stage has a dev set; return it (or None)."""
    if not problems or not stage.eval_every:
        return None
    callback = DevEvalCallback(trainer, problems, stage, out_dir, messages, rewards)
    trainer.add_callback(callback)
    return callback
