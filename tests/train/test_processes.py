"""Two stages × two steps under ``accelerate launch`` with two processes (CPU, gloo), through the CLI."""

import json
import subprocess
import sys

import pandas as pd
from transformers import AutoModelForCausalLM

from stagerl.train.identity import fingerprint

LOG = {"log_completions": True, "num_completions_to_print": 0}   # TRL writes each step's gathered batch


def test_two_processes_two_stages(kit, make_run, tiny_model_dir, tmp_path):
    stages = [kit.tiny_stage(max_steps=2, prompts_per_step=3, trl=LOG),
              kit.tiny_stage(name="s2", levels=["L2"], max_steps=2, prompts_per_step=3, max_completion_length=12,
                             mask_truncated_completions=True, entropy_coef=0.0, trl=LOG)]
    recipe, run_dir = make_run(tiny_model_dir, stages)
    # accelerate's torchrun launcher (--multi_gpu); on a machine without a GPU the ranks are CPU processes
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "stagerl.cli", "train", str(recipe)]
    done = subprocess.run(cmd, env=kit.cli_env(), capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]

    problems = {p.prompt: p for p in kit.MATH + kit.CODE}
    s1, s2 = kit.stage_json(run_dir, "1_s1"), kit.stage_json(run_dir, "2_s2")
    for name, info in (("1_s1", s1), ("2_s2", s2)):
        assert info["processes"] == 2 and info["steps"] == 2
        rows = [json.loads(x) for x in kit.metric_lines(run_dir, name)]
        assert [r["step"] for r in rows] == [1, 2]                     # rank 0 alone writes: each step once
        for step in (1, 2):  # the global batch (both ranks, gathered by TRL) keeps math:code = 2:1
            df = pd.read_parquet(run_dir / "stages" / name / "checkpoints" / "completions" /
                                 f"completions_{step:05d}.parquet")
            domains = [problems[p[-1]["content"].split("\n")[0]].domain for p in df["prompt"]]
            assert len(domains) == 3 * 2 and domains.count("math") == 2 * 2 and domains.count("code") == 1 * 2
    # stage 2 started from stage 1's complete, saved checkpoint
    assert s2["policy"] == s1["checkpoint"]
    assert s2["identity"]["start"]["fingerprint"] == fingerprint(s1["checkpoint"]) != fingerprint(tiny_model_dir)
    AutoModelForCausalLM.from_pretrained(s1["checkpoint"])
    assert s2["loss"]["mask_truncated_completions"] is True and s2["loss"]["entropy_coef"] == 0.0
