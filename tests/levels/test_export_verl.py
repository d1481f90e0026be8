"""Levels out for verl (issue 23): the parquet schema of verl's own data_preprocess scripts, our
rewards behind verl's custom reward signature, and, where verl is installed, verl's own
RLHFDataset and reward manager reading the export."""

import importlib.util
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from stagerl.levels import build_levels, load_rules
from stagerl.levels.export_verl import export_verl
from stagerl.rewards.verl import compute_score, trl_reward
from stagerl.scoring.published import read_published

from test_published import FIX, flat_expected, flat_problems

HAS_VERL = importlib.util.find_spec("verl") is not None
GOOD_CODE = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    levels = build_levels(read_published(FIX / "flat.csv", "flat"), load_rules("paper"), problems=flat_problems())
    out = tmp_path_factory.mktemp("verl")
    export_verl(levels, out)
    return out


def test_schema_is_what_verl_reads(export):
    """The fields verl 0.9 reads: RLHFDataset takes ``prompt`` (chat messages) and ``extra_info.index``;
    its reward managers pass ``data_source``, ``reward_model.ground_truth`` and ``extra_info`` to the
    reward function (verl/utils/dataset/rl_dataset.py, experimental/reward_loop/reward_manager/naive.py)."""
    assert sorted(p.stem for p in export.glob("*.parquet")) == ["L1", "L2", "L3"]
    table = pq.read_table(export / "L2.parquet")
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    schema = table.schema
    assert str(schema.field("prompt").type) == "list<element: struct<role: string, content: string>>"
    assert str(schema.field("reward_model").type) == "struct<style: string, ground_truth: string>"
    rows = table.to_pylist()
    assert [r["extra_info"]["id"] for r in rows] == flat_expected()["L2"]
    f6 = rows[-1]
    assert f6["ability"] == "code" and f6["prompt"][-1]["role"] == "user" and "```python" in f6["prompt"][-1]["content"]
    assert json.loads(f6["reward_model"]["ground_truth"]) == {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    assert f6["extra_info"]["level"] == "L2" and f6["extra_info"]["index"] == 2
    assert f6["extra_info"]["rates"] == {"r1-distill-qwen-1.5b": 0.25, "r1-distill-qwen-7b": 0.75,
                                         "r1-distill-qwen-32b": 1.0, "deepseek-r1": 1.0}
    f2 = rows[0]
    assert f2["ability"] == "math" and f2["reward_model"] == {"style": "rule", "ground_truth": "2"}
    assert "\\boxed{}" in f2["prompt"][-1]["content"]
    # our rewards behind verl's signature, routed by extra_info.domain (or, without it, by the ground truth)
    assert compute_score(f2["data_source"], "so \\boxed{2}", "2", f2["extra_info"]) == 1.0
    assert compute_score(f2["data_source"], "so \\boxed{3}", "2", f2["extra_info"]) == 0.0
    assert compute_score("x", GOOD_CODE, f6["reward_model"]["ground_truth"], f6["extra_info"]) == 1.0
    assert compute_score("apps", "print(0)", f6["reward_model"]["ground_truth"]) == 0.0
    assert trl_reward([[{"role": "assistant", "content": "\\boxed{2}"}], "no answer"],
                      [f2["reward_model"]] * 2, [f2["extra_info"]] * 2) == [1.0, 0.0]


def test_cli_exports_verl(tmp_path, tiny_model_dir):
    from test_published import AM, _recipe, paper_without_l3

    recipe = _recipe(tmp_path, tiny_model_dir, paper_without_l3().to_dict(), ["L2"])
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "levels", str(recipe), "--table", str(AM),
                          "--table-form", "am-team", "--export", str(tmp_path / "v"), "--format", "verl"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = pq.read_table(tmp_path / "v" / "L2.parquet").to_pylist()
    assert sorted(r["extra_info"]["id"] for r in rows) == ["What is 12/4?", "What is 17+26?", "What is 6*7?"]


@pytest.mark.skipif(not HAS_VERL, reason="verl is not installed (it is not in [dev]: see docs/verl.md)")
def test_verl_reads_and_scores_the_export(export, smollm2_dir, tmp_path):
    """verl's own RLHFDataset loads the files and verl's own reward path (the custom reward function
    loader and the naive reward manager) scores responses with our compute_score."""
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 512, "filter_overlong_prompts": True,
                            "filter_overlong_prompts_workers": 1, "cache_dir": str(tmp_path / "cache")})
    ds = RLHFDataset([str(export / "L2.parquet")], tok, cfg)
    assert len(ds) == 3
    item = ds[2]
    assert item["raw_prompt"][-1]["role"] == "user" and item["extra_info"]["id"] == "f6" and item["index"] == 2
    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://stagerl.rewards.verl", "name": "compute_score", "reward_kwargs": {}}}})
    fn = get_custom_reward_fn(config)
    manager = NaiveRewardManager(config, tok, fn)
    scores = []
    for i, text in ((0, "It is \\boxed{2}."), (0, "It is \\boxed{7}."), (2, GOOD_CODE)):
        row = ds[i]
        text_prompt = tok.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
        prompt = torch.tensor(tok(text_prompt, add_special_tokens=False)["input_ids"])
        response = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
        data = DataProto.from_dict(
            tensors={"prompts": prompt[None], "responses": response[None],
                     "attention_mask": torch.ones(1, len(prompt) + len(response), dtype=torch.long)},
            non_tensors={k: [row[k]] for k in ("data_source", "reward_model", "extra_info")})
        scores.append(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])
    assert scores == [1.0, 0.0, 1.0]
