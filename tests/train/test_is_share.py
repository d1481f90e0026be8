"""The share of a step the vLLM importance-sampling correction masks or clips (issue 19): counted as TRL
weights the batch, kept in metrics.jsonl, shown in the report; the paper preset chooses its mode.

The counts run on the tensors TRL's masking and truncation produce (``torch.clamp`` / ``masked_fill`` as in
``GRPOTrainer._generate_and_score_completions``); a stage with ``use_vllm`` needs a vLLM server (issue 20)."""

from __future__ import annotations

import json
import math

import torch

from stagerl.config import load_recipe
from stagerl.report.render import build_report
from stagerl.train.callbacks import normalize_logs
from stagerl.train.is_share import CLIPPED, MASKED, ISShareMixin, is_counts, with_is_share


def _trl_weights(diff: torch.Tensor, mask: torch.Tensor, mode: str, lo, hi) -> torch.Tensor:
    """TRL 1.16's IS weights from per-token log-ratios (its code, lines 2660-2707 of grpo_trainer.py)."""
    d = (diff * mask).nan_to_num(0.0)
    ratio = torch.exp(d.sum(dim=-1, keepdim=True) if mode.startswith("sequence") else d)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=lo, max=hi)
    bad = (ratio < (lo if lo is not None else -math.inf)) | (ratio > (hi if hi is not None else math.inf))
    return ratio.masked_fill(bad, 0.0)


def test_long_sequences_are_masked_by_the_default_and_kept_by_token_truncation():
    torch.manual_seed(0)
    mask = torch.ones(4, 2000)
    mask[3, 10:] = 0  # one short completion
    diff = torch.full((4, 2000), 1e-3)  # a small, steady trainer/vLLM drift per token
    diff[0] = 0.0
    seq = _trl_weights(diff, mask, "sequence_mask", None, 3.0)
    name, (hit, total) = is_counts(seq, mask, "sequence_mask", None, 3.0)
    assert name == MASKED and (hit, total) == (2, 4)  # the two long drifting sequences: sum 2.0 > log 3
    tok = _trl_weights(diff * torch.linspace(0, 1000, 2000), mask, "token_truncate", None, 2.0)
    name, (hit, total) = is_counts(tok, mask, "token_truncate", None, 2.0)
    live = int(mask.sum())
    assert name == CLIPPED and total == live
    assert hit == int(((diff * torch.linspace(0, 1000, 2000)).exp() >= 2.0)[mask.bool()].sum()) and 0 < hit < live
    name, (hit, total) = is_counts(_trl_weights(diff, mask, "token_mask", 0.5, 1.0005), mask, "token_mask", 0.5, 1.0005)
    assert name == MASKED and hit == 2000 * 2 + 10 and total == live  # the drifting rows' tokens exceed 1.0005


def test_the_mixin_sits_before_the_trainer_and_keeps_its_name():
    from trl import GRPOTrainer

    from stagerl.train.online import OnlineGRPOTrainer

    for cls in (GRPOTrainer, OnlineGRPOTrainer):
        wrapped = with_is_share(cls)
        assert wrapped.__mro__[1:3] == (ISShareMixin, cls) and wrapped.__name__ == cls.__name__


def test_shares_reach_metrics_jsonl_and_the_report(tmp_path):
    row = normalize_logs({"loss": 0.1, CLIPPED: 0.25, "sampling/importance_sampling_ratio/max": 2.0}, 1, 3.0)
    assert row[CLIPPED] == 0.25
    stage = tmp_path / "stages" / "1_stage1"
    stage.mkdir(parents=True)
    rows = [normalize_logs({"reward": 0.5, CLIPPED: v}, i, 1.0) for i, v in ((1, 0.25), (2, 0.75))]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (stage / "stage.json").write_text(json.dumps({"reason": "max_steps", "steps": 2, "config": {"name": "stage1", "levels": ["L2"]},
                                                  "loss": {"vllm_is_mode": "token_truncate",
                                                           "vllm_is_bounds": [None, 2.0]}}))
    build_report(tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "vLLM importance-sampling correction in stage1 (token_truncate, bounds [None, 2.0]): share clipped per " \
           "step mean 0.500, max 0.750, last 0.750 over 2 steps." in report


def test_the_paper_preset_chooses_token_truncation():
    for stage in load_recipe("paper").train.stages:
        assert stage.vllm_is_correction and stage.trl["vllm_importance_sampling_mode"] == "token_truncate"
        assert stage.trl["vllm_importance_sampling_clip_max"] == 2.0
