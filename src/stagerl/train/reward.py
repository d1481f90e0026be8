"""The one TRL reward function of a stage, and the per-step metrics only it can see.

TRL calls the reward function on every process with that process's share of the generation batch,
then gathers the rewards (in process order) and cuts them into groups of ``num_generations``
consecutive completions. TRL's ``log_metric`` averages what each process logs, so a per-process
mean per domain would become a mean of means. Instead the function gathers its per-completion
``(domain, reward, tokens)`` across processes itself (``accelerate.utils.gather_object``; every
process calls the reward function at the same point, so the collective is safe) and logs values of
the *global* batch, identical on every process:

``reward_math`` / ``reward_code``
    mean reward of that domain's completions in the step's global batch (absent when it has none);
``signal``
    share of groups (one prompt's ``num_generations`` completions, cut as TRL cuts them) whose
    rewards are not all equal: the groups that carry a GRPO learning signal;
``tokens``
    completion tokens generated for the step (the stage's cost ledger sums them).

One call per optimizer step (the adapter keeps ``steps_per_generation`` = gradient accumulation
and ``num_iterations`` = 1), so each value is that step's.
"""

from __future__ import annotations

from typing import Any, Callable

from accelerate.utils import gather_object

from ..config import RewardsConfig
from ..data.problem import Problem
from ..rewards import problem_rewards


def batch_metrics(domains: list[str], scores: list[float], tokens: list[int], num_generations: int) -> dict[str, float]:
    """The logged values of one global batch (in TRL's order: groups are consecutive runs of G)."""
    out: dict[str, float] = {}
    for domain in ("math", "code"):
        mine = [s for s, d in zip(scores, domains) if d == domain]
        if mine:
            out[f"reward_{domain}"] = sum(mine) / len(mine)
    groups = [scores[i:i + num_generations] for i in range(0, len(scores), num_generations)]
    if groups:
        out["signal"] = sum(max(g) - min(g) > 1e-9 for g in groups) / len(groups)
    out["tokens"] = float(sum(tokens))
    return out


def make_reward(pool: list[Problem], rewards: RewardsConfig | None, num_generations: int) -> Callable[..., list[float]]:
    """The TRL reward function: grade each completion against its problem (``problem_index`` column),
    routed by domain under the recipe's ``rewards`` section (grading workers, math time bound), and
    log the global batch's ``reward_<domain>``, ``signal`` and ``tokens``."""
    rewards = rewards or RewardsConfig()

    def problem_reward(completions: list, problem_index: list[int], completion_ids: list | None = None,
                       log_metric: Callable[[str, float], None] | None = None, **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        problems = [pool[i] for i in problem_index]
        scores = problem_rewards(problems, texts, workers=rewards.workers, math_timeout=rewards.math_timeout)
        if log_metric is not None:
            lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [0] * len(scores)
            local = [(p.domain, s, n) for p, s, n in zip(problems, scores, lengths)]
            rows = gather_object(local)
            values = batch_metrics([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                   num_generations)
            for name in sorted(values):
                log_metric(name, values[name])
        return scores

    return problem_reward
