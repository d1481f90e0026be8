"""The TRL contract (issue 19): what train/online.py, reward.py, dev_eval.py, is_share.py and grpo.py rely on in
TRL's private API holds on the installed TRL; the checker names what moved when it does not; a stage recorded
under another TRL minor version stops unless told to go on."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import trl
from trl import GRPOConfig, GRPOTrainer

from stagerl.config import StageConfig
from stagerl.train import StageChangedError, train_stages
from stagerl.train.grpo import TrainConfigError, grpo_config
from stagerl.train.identity import ACCEPT_TRL_ENV, changes, library_versions
from stagerl.train.runner import check_trl
from stagerl.train.trl_contract import ATTRIBUTES, TESTED, check_contract, trl_minor

ROOT = Path(__file__).resolve().parents[2]


def test_contract_holds_on_the_installed_trl():
    """Every overridden method, returned key, private attribute, source fact and config field is where
    stagerl expects it, on the TRL version pyproject.toml pins."""
    moved = check_contract()
    assert not moved, f"the installed trl {trl.__version__} ({trl.__file__}) moved:\n" + "\n".join(moved)
    assert trl_minor(trl.__version__) == TESTED
    major, minor = map(int, TESTED.split("."))
    pin = f'"trl>={TESTED},<{major}.{minor + 1}"'
    assert pin in (ROOT / "pyproject.toml").read_text()


def test_attributes_are_what_the_contract_says_on_a_real_trainer(tiny_model_dir, tmp_path):
    """Built on the tiny real model: the attributes the contract names exist with the types stagerl uses."""
    stage = StageConfig(name="s", levels=["L"], num_generations=2, prompts_per_step=2, max_completion_length=4,
                        max_steps=1, plateau=None, math_code_ratio=None, beta=0.0)
    from datasets import Dataset

    data = Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}]}] * 2)
    trainer = GRPOTrainer(model=tiny_model_dir, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                          args=grpo_config(stage, tmp_path), train_dataset=data)
    for name in ATTRIBUTES:
        assert hasattr(trainer, name), name
    assert isinstance(trainer._metrics["train"], defaultdict) and trainer._metrics["train"].default_factory is list
    assert isinstance(trainer._pending_metrics, defaultdict)
    assert isinstance(trainer.reward_weights, torch.Tensor) and trainer.reward_weights.tolist() == [1.0]
    assert trainer._tokenizer.pad_token_id is not None
    assert trainer.environment_factories is None and not trainer.tools
    assert trainer.num_generations == 2


def _moved_generate(self, inputs, mode):  # a "TRL" whose generate-and-score takes another argument ...
    output = {"prompt_ids": 0, "prompt_mask": 0, "completion_ids": 0, "completion_mask": 0,
              "num_items_in_batch": 0}  # ... and returns no advantages
    return output


def test_checker_names_a_renamed_method(monkeypatch):
    """TRL renaming _calculate_rewards (online.py overrides it) fails the contract, naming it."""
    monkeypatch.setattr(GRPOTrainer, "_compute_rewards", GRPOTrainer._calculate_rewards, raising=False)
    monkeypatch.delattr(GRPOTrainer, "_calculate_rewards")
    moved = check_contract()
    assert moved and moved[0] == "GRPOTrainer._calculate_rewards is gone (stagerl overrides or calls it)", moved
    with pytest.raises(TrainConfigError, match=r"(?s)moved what stagerl's trainer relies on.*_calculate_rewards is gone"
                                               r".*Nothing was trained"):
        check_trl()  # what train_stages runs before any stage
    monkeypatch.setenv(ACCEPT_TRL_ENV, "1")
    check_trl()  # explicitly accepted: a warning, training goes on


def test_checker_names_signature_keys_facts_attributes_and_defaults(monkeypatch):
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", _moved_generate)

    @dataclasses.dataclass
    class MovedConfig(GRPOConfig):
        multi_objective_aggregation: str = "normalize_then_sum"

    moved = "\n".join(check_contract(GRPOTrainer, MovedConfig))
    assert ("GRPOTrainer._generate_and_score_completions signature changed: (self, inputs, mode), "
            "stagerl expects (self, inputs)") in moved
    assert "_generate_and_score_completions no longer returns 'advantages'" in moved
    assert "no longer contains `self._pending_metrics.clear()`" in moved
    assert "GRPOConfig.multi_objective_aggregation defaults to 'normalize_then_sum'" in moved

    class NoTokenizer(GRPOTrainer):
        def __init__(self, *args, **kwargs):  # sets everything but _tokenizer
            self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    assert any(m.startswith("GRPOTrainer.__init__ no longer sets self._tokenizer")
               for m in check_contract(NoTokenizer, GRPOConfig))


def test_versions_are_recorded_and_a_trl_minor_change_stops_a_stage(kit, tiny_model_dir, tmp_path, monkeypatch):
    """stage.json records the library versions; a stage recorded under TRL 1.15 stops with the change named,
    goes on with STAGERL_ACCEPT_TRL_CHANGE=1, and trains again with --retrain."""
    base = dict(name="s1", levels=["L1"], learning_rate=1e-3, num_generations=2, prompts_per_step=2,
                max_completion_length=4, max_steps=1, math_code_ratio=None, seed=0, plateau=None, beta=0.0)
    levels = {"L1": kit.MATH[:2]}
    [info] = train_stages(tiny_model_dir, levels, [StageConfig(**base)], tmp_path, isolate=False)
    versions = library_versions()
    assert info["versions"] == versions and versions["trl"] == trl.__version__
    assert set(versions) == {"trl", "transformers", "torch", "accelerate", "deepspeed", "vllm"}
    out = tmp_path / "stages" / "1_s1"
    recorded = json.loads((out / "stage.json").read_text())
    assert recorded["versions"]["torch"] == torch.__version__ and recorded["identity"]["versions"] == versions
    recorded["identity"]["versions"]["trl"] = "1.15.2"  # as if trained under TRL 1.15
    (out / "stage.json").write_text(json.dumps(recorded))

    with pytest.raises(StageChangedError, match=re.escape(f"trl: 1.15.2 -> {trl.__version__} (another minor "
                                                          "version") + r".*--retrain"):
        train_stages(tiny_model_dir, levels, [StageConfig(**base)], tmp_path, isolate=False)
    monkeypatch.setenv(ACCEPT_TRL_ENV, "1")
    [same] = train_stages(tiny_model_dir, levels, [StageConfig(**base)], tmp_path, isolate=False)
    assert same["identity"]["versions"]["trl"] == "1.15.2"  # reused as it is
    monkeypatch.delenv(ACCEPT_TRL_ENV)
    [again] = train_stages(tiny_model_dir, levels, [StageConfig(**base)], tmp_path, retrain=True, isolate=False)
    assert again["identity"]["versions"]["trl"] == trl.__version__


def test_only_a_trl_minor_change_counts():
    ident = {"settings": {}, "problems": {"count": 1, "sha256": "x"}, "start": {"path": "/a", "fingerprint": "1"}}
    v = {"trl": "1.16.0", "transformers": "5.25.0"}
    assert changes({**ident, "versions": v}, {**ident, "versions": {**v, "trl": "1.16.3", "transformers": "5.19"}}) == []
    assert changes(ident, {**ident, "versions": v}) == []  # recorded by a stagerl that did not record versions
    [what] = changes({**ident, "versions": v}, {**ident, "versions": {**v, "trl": "2.0.1"}})
    assert what.startswith("trl: 1.16.0 -> 2.0.1 (another minor version")
