"""A real reward with known structure, shared by the online-trainer tests (test_online.py and the
two-process online_main.py): problems named ``hard*`` always score 0; the others score the parity of
a hash of the completion text, so their groups almost always differ."""

from __future__ import annotations

import hashlib

from stagerl.train.online import has_signal


class ParityReward:
    """Records per call (one generation round) the problem ids, the rewards and, once ``trainer`` is
    set, the trainer's global step."""

    __name__ = "parity"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.rewards: list[list[float]] = []
        self.steps: list[int] = []
        self.trainer = None

    def __call__(self, completions, problem_id, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        self.calls.append(list(problem_id))
        self.rewards.append([0.0 if pid.startswith("hard") else float(hashlib.sha256(t.encode()).digest()[0] % 2)
                             for pid, t in zip(problem_id, texts)])
        if self.trainer is not None:
            self.steps.append(self.trainer.state.global_step)
        return self.rewards[-1]

    def empty_groups(self, r: int, G: int) -> list[str]:
        """Problem ids of round ``r``'s groups without signal."""
        ids, rs = self.calls[r], self.rewards[r]
        return [ids[g] for g in range(0, len(ids), G) if not has_signal(rs[g:g + G])]
