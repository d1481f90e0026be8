"""Online filtering inside a GRPO stage: dynamic sampling and predictive skipping, on TRL's trainer.

``OnlineGRPOTrainer`` subclasses ``trl.GRPOTrainer`` and overrides one method,
``_generate_and_score_completions`` (plus ``_calculate_rewards``, only to keep the rewards it
computes). TRL's sampler, generation, rewards, advantages and loss run unchanged.

A step's batch is a list of *slots*, one per prompt of the mixed batch TRL's ``RepeatSampler``
handed over (math:code at the stage's ratio). Each slot is filled with one group of
``num_generations`` completions:

* **predictive skipping** (``online.predictive_skip``): before generating, a slot whose problem is
  predicted to give an all-equal group (probability above ``skip_threshold``, or ``skip_per_sample ** G``,
  under the problem's pass-rate estimate; a problem with neither a group of its own nor a seed is never
  skipped) gets a fresh problem of the same domain from the stage's pool instead. A problem due to be skipped is
  still generated with probability ``explore``, so none is skipped for ever (by default only a slot's own
  prompt draws; ``explore_refills`` also draws for each problem a refill scans past). Every skipped prompt
  counts in ``groups_skipped``; those skipped on a seed alone (``online_prior.py``: the run's
  stored samples of the policy, before the stage's own first group of the problem) also in
  ``groups_skipped_seeded``. The prompts the exploration draw lets through are the held-out check
  of skipping: ``groups_explored`` counts them, ``groups_explored_signal`` those of them whose group
  carried signal (the share of skipped groups that would have).
* **dynamic sampling** (``online.dynamic_sampling``): after generating, a group whose rewards are
  all equal (zero variance: no GRPO signal) is dropped; its slot is refilled with a fresh problem of
  the same domain in an extra generation round (only the empty slots are generated again), at most
  ``max_extra_rounds`` rounds per step. A slot still empty after that keeps its last zero-signal
  group (it trains exactly as in plain GRPO; counted in ``groups_filled``).

Keeping each slot's domain keeps the batch's math:code mix exactly. Each group keeps the
advantages TRL computed for it in its own round (group-normalized, so rounds do not mix; with
``scale_rewards="batch"`` the std is the round's batch).

**Pass-rate estimate.** Per problem, a Beta posterior over the policy's pass rate, updated from
every group generated for it (each reward in [0, 1] counts as that share of a success), with older
evidence discounted by ``decay`` per new group so the estimate follows the policy. The chance of an
all-equal group of G is the Beta-binomial probability of 0 or G successes. The estimate and ``has_signal``
live in ``online_prior.py``, which needs no TRL (``scripts/sim_online_filter.py`` replays them).

**Metrics** (per step, in ``metrics.jsonl``): ``GROUP_KEYS`` below (``groups_dropped``: generated, not
trained on; ``groups_signal``: trained groups with non-zero reward variance), ``seed_shift``, ``seed_slope``;
TRL's own (``reward``, ...) describe every completion generated in the step, all rounds weighted by size.

Several processes: each process fills its own slots (its share of the batch must hold whole groups); the
number of extra rounds is agreed across processes, every process generates the same number of groups
per round, and the estimate is updated from every process's groups.

**Resume.** ``online_state()`` is what the next steps' decisions depend on beyond TRL's own
checkpoint: the estimate (its seeds and drift too), the exploration/refill RNG, the refill queues
(pool indices) and the stage's running totals of the group counts (``totals``, summed over
processes; ``stage.json`` ``online``). ``resume_state.py`` saves it with every checkpoint and
``load_online_state`` restores it: a resumed stage skips, refills and explores as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any, Callable

import torch
from accelerate.utils import gather_object

from .trl_vllm import hide_vllm_if_asked

hide_vllm_if_asked()  # before TRL's trainer is imported (see trl_vllm.py)
from trl import GRPOTrainer  # noqa: E402

from ..config import OnlineConfig
from ..data.problem import Problem
from .online_prior import SeededEstimator, has_signal

_PROMPT_SIDE = ("prompt_ids", "prompt_mask")
GROUP_KEYS = ("groups_generated", "groups_dropped", "groups_skipped", "groups_filled", "groups_signal",
              "extra_rounds", "groups_skipped_seeded", "groups_explored", "groups_explored_signal")


def pool_rows(pool: list[Problem], messages: Callable[[Problem], list[dict]]) -> list[dict]:
    """One dataset row per pool problem, in the form of ``stage_dataset``'s rows (fresh prompts)."""
    return [{"prompt": messages(p), "problem_index": i, "problem_id": p.id, "domain": p.domain}
            for i, p in enumerate(pool)]


class OnlineGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with dynamic sampling and predictive skipping (see the module docstring).

    ``online`` is the stage's ``OnlineConfig``; ``pool_rows`` the stage's problems as dataset rows
    (``pool_rows(pool, messages)``), the source of fresh prompts.
    """

    def __init__(self, *args: Any, online: OnlineConfig, pool_rows: list[dict], seeds: dict | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.tools or self.environment_factories is not None:
            raise ValueError("online filtering does not support tools or environments")
        self.online = online
        self.estimator = SeededEstimator.for_config(online, seeds)
        self._flags: list[bool] = []  # per admitted prompt: let through by the exploration draw
        self._explored = self._seeded = False
        self._rng = random.Random(f"{online.seed}:explore:{self.accelerator.process_index}")
        self._pool = {d: [r for r in pool_rows if r["domain"] == d] for d in ("math", "code")}
        self._queues: dict[str, list[dict]] = {d: [] for d in self._pool}
        self._last_rewards: torch.Tensor | None = None
        self.totals: Counter = Counter()
        """The stage's group counts so far (every process's groups), restored on resume."""

    # ------------------------------------------------------------------ resume

    def online_state(self) -> dict[str, Any]:
        """This process's online-filtering state as JSON-safe data (see the module docstring)."""
        version, internal, gauss = self._rng.getstate()
        return {**self.estimator.state(), "rng": [version, list(internal), gauss],
                "queues": {d: [r["problem_index"] for r in q] for d, q in self._queues.items()},
                "totals": dict(self.totals)}

    def load_online_state(self, state: dict[str, Any]) -> None:
        """Restore what ``online_state`` returned (at the same checkpoint, on the same process)."""
        self.estimator.load_state(state)
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        rows = {r["problem_index"]: r for pool in self._pool.values() for r in pool}
        self._queues = {d: [rows[i] for i in q] for d, q in state["queues"].items()}
        self.totals = Counter(state["totals"])

    # ------------------------------------------------------------------ TRL extension points

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards
        return rewards

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, Any]:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        G = self.num_generations
        slots = self._slots(inputs, G)
        stats: Counter = Counter()
        marks = {k: len(v) for k, v in self._metrics["train"].items()}
        logged: dict[str, list[tuple[float, int]]] = {}  # TRL metric -> (value, groups) per round
        rounds: list[tuple[dict, list[list[float]], int]] = []  # (output, group rewards, groups)
        chosen: list[tuple[int, int] | None] = [None] * len(slots)
        last: list[tuple[int, int] | None] = [None] * len(slots)
        todo = list(range(len(slots)))
        self.estimator.step = self.state.global_step  # seeds are discounted to the current step
        self._flags = []
        rows = [self._admit(row, stats) for row in slots]
        while True:
            flags, self._flags = self._flags, []
            before = {k: len(v) for k, v in self._metrics["train"].items()}
            out, group_rewards = self._one_round(rows, G)
            for key, values in self._metrics["train"].items():
                logged.setdefault(key, []).extend((v, len(rows)) for v in values[before.get(key, 0):])
            rounds.append((out, group_rewards, len(rows)))
            r = len(rounds) - 1
            stats["groups_generated"] += len(rows)
            for j, explored in enumerate(flags):  # the held-out check: would a skipped group have had signal?
                stats["groups_explored"] += int(explored)
                stats["groups_explored_signal"] += int(explored and has_signal(group_rewards[j]))
            for j, slot in enumerate(todo):
                last[slot] = (r, j)
                if has_signal(group_rewards[j]) or not self.online.dynamic_sampling:
                    chosen[slot] = (r, j)
            todo = [i for i in todo if chosen[i] is None]
            need = self._agree_max(len(todo))
            if need == 0 or len(rounds) > self.online.max_extra_rounds:
                break
            stats["extra_rounds"] += 1
            domains = [slots[i]["domain"] for i in todo] or [slots[0]["domain"]]
            rows = [self._fresh(domains[n % len(domains)], stats) for n in range(need)]
        picks = []
        for i in range(len(slots)):
            if chosen[i] is None:
                chosen[i] = last[i]
                stats["groups_filled"] += 1
            picks.append(chosen[i])
            r, j = chosen[i]
            stats["groups_signal"] += int(has_signal(rounds[r][1][j]))
        stats["groups_dropped"] = stats["groups_generated"] - len(slots)
        if len(rounds) > 1:
            self._collapse_metrics(marks, logged)
        self._log_stats(stats)
        return self._merge([out for out, _, _ in rounds], picks, G)

    # ------------------------------------------------------------------ slots and fresh prompts

    def _slots(self, inputs: list[dict], G: int) -> list[dict]:
        """One row per group of this process's generation batch (TRL repeats each prompt G times)."""
        if len(inputs) % G:
            raise ValueError(f"online filtering needs whole groups per process: {len(inputs)} rows are not a "
                             f"multiple of num_generations={G}; choose a per-device batch that is")
        slots = [inputs[g * G] for g in range(len(inputs) // G)]
        for g, row in enumerate(slots):
            if any(x.get("problem_index") != row.get("problem_index") for x in inputs[g * G:(g + 1) * G]):
                raise ValueError("online filtering needs each process's rows to hold whole groups of one prompt")
        return slots

    def _skip(self, row: dict, refill: bool = False) -> bool:
        """Whether predictive skipping drops this prompt now (the exploration draw lets it through;
        a refill's scan draws only with ``explore_refills``)."""
        self._explored = False
        if not self.online.predictive_skip or not self.estimator.known(row["problem_index"]):
            return False  # a problem with neither a group nor a seed is never skipped
        if self.estimator.p_all_equal(row["problem_index"], self.num_generations) <= self.online.threshold(self.num_generations):
            return False
        self._seeded = not self.estimator.groups[row["problem_index"]]
        if refill and not self.online.explore_refills:
            return True
        self._explored = self._rng.random() < self.online.explore
        return not self._explored

    def _admit(self, row: dict, stats: Counter) -> dict:
        """The slot's own prompt, or a fresh one of its domain when predictive skipping drops it."""
        if self._skip(row):
            self._count_skip(stats)
            return self._fresh(row["domain"], stats)
        self._flags.append(self._explored)
        return row

    def _count_skip(self, stats: Counter) -> None:
        stats["groups_skipped"] += 1
        stats["groups_skipped_seeded"] += int(self._seeded)

    def _fresh(self, domain: str, stats: Counter) -> dict:
        """The next prompt of ``domain`` from shuffled passes over the pool, past any it skips.

        After one full pass of skips the next prompt is taken anyway: a pool whose every problem is
        predicted all-equal still fills its slots."""
        pool = self._pool.get(domain) or [r for rows in self._pool.values() for r in rows]
        for _ in range(len(pool)):
            row = self._next(domain, pool)
            if not self._skip(row, refill=True):
                self._flags.append(self._explored)
                return row
            self._count_skip(stats)
        self._flags.append(False)
        return self._next(domain, pool)

    def _next(self, domain: str, pool: list[dict]) -> dict:
        queue = self._queues.setdefault(domain, [])
        if not queue:
            queue.extend(pool)
            self._rng.shuffle(queue)
        return queue.pop()

    # ------------------------------------------------------------------ one generation round

    def _one_round(self, rows: list[dict], G: int) -> tuple[dict, list[list[float]]]:
        """TRL's generate-and-score on ``rows`` × G; the local groups' rewards; estimate updated."""
        inputs = [dict(row) for row in rows for _ in range(G)]
        self._last_rewards = None
        out = super()._generate_and_score_completions(inputs)
        weighted = (self._last_rewards * self.reward_weights.to(self._last_rewards.device).unsqueeze(0))
        rewards = weighted.nansum(dim=1)
        rewards[torch.isnan(self._last_rewards).all(dim=1)] = torch.nan
        start = self.accelerator.process_index * len(inputs)
        local = rewards[start:start + len(inputs)].tolist()
        groups = [local[g * G:(g + 1) * G] for g in range(len(rows))]
        seen = gather_object([(row["problem_index"], group) for row, group in zip(rows, groups)])
        for key, group in seen:
            self.estimator.update(key, group)
        return out, groups

    def _agree_max(self, value: int) -> int:
        """The largest ``value`` over processes (every process then runs the same rounds)."""
        if self.accelerator.num_processes == 1:
            return value
        t = torch.tensor([value], device=self.accelerator.device)
        return int(self.accelerator.gather(t).max().item())

    # ------------------------------------------------------------------ metrics

    def _collapse_metrics(self, marks: dict[str, int], logged: dict[str, list[tuple[float, int]]]) -> None:
        """One value per TRL metric for the step: the entries the rounds appended become their mean
        weighted by each round's groups (the max or min for ``*max*`` / ``*min*`` keys)."""
        for key, pairs in logged.items():
            if len(pairs) <= 1 or key == "num_tokens":
                continue
            leaf = key.rsplit("/", 1)[-1]
            finite = [(v, w) for v, w in pairs if v == v]
            if not finite:
                value = math.nan
            elif key == "tokens":  # train/reward.py: completion tokens generated, summed over the rounds
                value = sum(v for v, _ in finite)
            elif "max" in leaf:
                value = max(v for v, _ in finite)
            elif "min" in leaf:
                value = min(v for v, _ in finite)
            else:
                value = sum(v * w for v, w in finite) / sum(w for _, w in finite)
            del self._metrics["train"][key][marks.get(key, 0):]
            self._metrics["train"][key].append(value)

    def _log_stats(self, stats: Counter) -> None:
        local = torch.tensor([float(stats[k]) for k in GROUP_KEYS], device=self.accelerator.device)
        total = self.accelerator.gather(local.unsqueeze(0)).sum(dim=0) if self.accelerator.num_processes > 1 else local
        for key, value in zip(GROUP_KEYS, total.tolist()):
            if key == "extra_rounds" and self.accelerator.num_processes > 1:
                value /= self.accelerator.num_processes  # every process ran the same rounds
            self._metrics["train"][key].append(value)
            self.totals[key] += int(value)
        if self.estimator.drift:  # the same on every process (every group updates every estimate)
            self._metrics["train"]["seed_shift"].append(self.estimator.shift)
            self._metrics["train"]["seed_slope"].append(self.estimator.slope)

    # ------------------------------------------------------------------ the step's batch

    def _merge(self, outputs: list[dict], picks: list[tuple[int, int]], G: int) -> dict[str, Any]:
        """The chosen groups' rows of every round's output as one batch (each tensor re-padded)."""
        if len(outputs) == 1 and all(r == 0 and j == i for i, (r, j) in enumerate(picks)):
            return outputs[0]
        first = outputs[0]
        merged: dict[str, Any] = {}
        for key, value in first.items():
            if key == "num_items_in_batch":
                continue
            if not isinstance(value, torch.Tensor) or value.ndim == 0:
                raise ValueError(f"online filtering cannot merge TRL output {key!r} (multimodal inputs?)")
            parts = []
            for r, j in picks:
                t = outputs[r][key][j * G:(j + 1) * G]
                parts.append(t)
            merged[key] = _cat_padded(key, parts, self._pad_value(key))
        mask = merged["completion_mask"] if "tool_mask" not in merged else merged["completion_mask"] * merged["tool_mask"]
        merged["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
        return merged

    def _pad_value(self, key: str) -> float:
        if key in ("prompt_ids", "completion_ids"):
            return self._tokenizer.pad_token_id
        if key == "tool_mask":
            return 1
        return 0


def _cat_padded(key: str, parts: list[torch.Tensor], pad: float) -> torch.Tensor:
    """Concatenate along rows; 2-D parts are padded to the widest (prompts on the left, else right)."""
    if parts[0].ndim == 1 or all(p.shape[1:] == parts[0].shape[1:] for p in parts):
        return torch.cat(parts, dim=0)
    width = max(p.shape[1] for p in parts)
    padded = []
    for p in parts:
        extra = width - p.shape[1]
        fill = torch.full((p.shape[0], extra, *p.shape[2:]), pad, dtype=p.dtype, device=p.device)
        padded.append(torch.cat([fill, p] if key in _PROMPT_SIDE else [p, fill], dim=1))
    return torch.cat(padded, dim=0)


def trainer_for(stage: Any, pool: list[Problem], messages: Callable[[Problem], list[dict]],
                seeds: dict | None = None) -> tuple[type, dict]:
    """The trainer class of a stage and its extra keyword arguments: ``OnlineGRPOTrainer`` with the
    stage's ``online`` settings, pool and seeds (``online_prior.policy_seeds``) when online filtering
    is on, else plain ``GRPOTrainer``."""
    if stage.online is None:
        return GRPOTrainer, {}
    return OnlineGRPOTrainer, {"online": stage.online, "pool_rows": pool_rows(pool, messages), "seeds": seeds}
