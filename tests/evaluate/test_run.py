"""evaluate_checkpoint on a real (tiny) model and the shipped LiveCodeBench set."""

import json

from stagerl.config import EvalConfig, SamplingConfig, from_dict
from stagerl.evaluate import evaluate_checkpoint


def test_lcb_results_say_they_use_public_tests_only(tmp_path, tiny_model_dir):
    cfg = from_dict(EvalConfig, {"sampling": {"max_tokens": 8}, "max_tokens_by_checkpoint": {"tiny": 4},
                                 "call_size": 3, "benchmarks": [{"name": "lcb_test", "k": 2, "limit": 3}]})
    results = evaluate_checkpoint("tiny", tiny_model_dir, cfg, tmp_path / "tiny", progress=False)
    r = results["lcb_test"]
    assert "public example tests only" in r["note"] and "first 3 of 279" in r["note"]
    assert r["problems"] == 3 and r["of"] == 279 and r["samples"] == 6 and r["call_size"] == 3
    assert r["max_tokens"] == 4 and r["mean_tokens"] <= 4  # the checkpoint's own max_tokens
    assert r["by_domain"]["code"]["problems"] == 3 and set(r["pass@k"]) == {"1", "2"}
    lo, hi = r["ci95"]
    assert lo <= r["pass@1"] <= hi and 0 <= r["truncated_share"] <= 1
    assert json.loads((tmp_path / "tiny" / "results.json").read_text()) == results


def test_eval_config_checks_its_fields():
    import pytest

    from stagerl.config import ConfigError

    with pytest.raises(ConfigError, match="call_size"):
        EvalConfig(call_size=0, sampling=SamplingConfig())
    with pytest.raises(ConfigError, match="max_tokens_by_checkpoint"):
        EvalConfig(max_tokens_by_checkpoint={"base": 0})
