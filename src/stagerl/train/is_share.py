"""How much of each step the vLLM importance-sampling (IS) correction zeroes or clips, in ``metrics.jsonl``.

Under ``use_vllm`` TRL re-weights each completion by the ratio of the trainer's and vLLM's
probabilities of it (``vllm_importance_sampling_mode``, bounds ``vllm_importance_sampling_clip_min``
/ ``_clip_max``). ``*_mask`` modes set a weight outside the bounds to 0 (the sequence or token is
dropped from the loss); ``*_truncate`` modes clip it to the bound. TRL 1.16 logs the ratio's
min/mean/max (``sampling/importance_sampling_ratio/*``), not how much was dropped, and a ratio's
min says nothing about its share. :class:`ISShareMixin` adds one metric per training step:

* ``sampling/is_masked_share`` (``*_mask`` modes): the share of completions (``sequence_mask``) or
  of completion tokens (``token_mask``) whose weight is 0;
* ``sampling/is_clipped_share`` (``*_truncate`` modes): the share whose weight sits at a bound.

Counted over the batch the step trains on (after online filtering), summed over processes. The
report shows them per stage when present (``report/render.py``).
"""

from __future__ import annotations

from typing import Any

import torch

MASKED, CLIPPED = "sampling/is_masked_share", "sampling/is_clipped_share"


def is_counts(ratio: torch.Tensor, completion_mask: torch.Tensor, mode: str, clip_min: float | None,
              clip_max: float | None) -> tuple[str, torch.Tensor]:
    """The metric name and ``[affected, total]`` for one batch: sequences for ``sequence_*`` modes
    (``ratio`` is ``(B, 1)``), completion tokens for ``token_*`` modes (``ratio`` is ``(B, T)``)."""
    live = completion_mask.bool()
    if mode.startswith("sequence"):
        rows = live.any(dim=1)
        values, count = ratio.reshape(-1)[rows], rows.sum()
    else:
        values, count = ratio[live], live.sum()
    if mode.endswith("mask"):
        hit = values == 0
        name = MASKED
    else:
        hit = torch.zeros_like(values, dtype=torch.bool)
        if clip_max is not None:
            hit |= values >= clip_max
        if clip_min is not None:
            hit |= values <= clip_min
        name = CLIPPED
    return name, torch.stack([hit.sum(), count]).to(torch.float64)


class ISShareMixin:
    """Mixed in before a ``GRPOTrainer`` class (:func:`with_is_share`): logs the share after TRL's step."""

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)  # type: ignore[misc]
        ratio = out.get("importance_sampling_ratio")
        if ratio is None or not self.model.training or not (self.use_vllm and self.vllm_importance_sampling_correction):
            return out
        mask = out["completion_mask"] if "tool_mask" not in out else out["completion_mask"] * out["tool_mask"]
        name, counts = is_counts(ratio, mask, self.vllm_importance_sampling_mode,
                                 self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max)
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.gather(counts.to(self.accelerator.device).unsqueeze(0)).sum(dim=0)
        hit, total = counts.tolist()
        self._metrics["train"][name].append(hit / total if total else float("nan"))
        return out


def with_is_share(trainer_cls: type) -> type:
    """``trainer_cls`` with :class:`ISShareMixin` in front (its own name kept for logs)."""
    return type(trainer_cls.__name__, (ISShareMixin, trainer_cls), {"__module__": trainer_cls.__module__})
