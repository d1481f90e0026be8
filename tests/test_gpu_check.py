"""scripts/gpu_check.py's preparation (issue 19): its preflight and its CPU dry run run here; the wheel list
follows the pinned versions. Nothing here claims a GPU result."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_preflight_names_versions_and_the_trl_contract():
    """One call (importing TRL is most of it): versions and the contract; this GPU-less machine is refused."""
    out = script("scripts/gpu_check.py", "--preflight")
    assert f"trl {metadata.version('trl')}, transformers {metadata.version('transformers')}" in out.stdout, out.stderr
    assert "TRL contract: holds" in out.stdout
    import torch

    if not torch.cuda.is_available():
        assert out.returncode == 2 and "PREFLIGHT: no CUDA device" in out.stdout
    else:
        assert out.returncode == 0 or "is not installed" in out.stdout


def test_the_wheel_list_is_the_tested_versions():
    out = script("scripts/gpu_wheels.py", "--list")
    assert out.returncode == 0, out.stderr
    listed = dict(line.split("==") for line in out.stdout.splitlines() if "==" in line and " " not in line)
    for name in ("trl", "datasets", "math-verify"):
        assert listed[name] == metadata.version(name), name
    assert "deepspeed==0.18.6 (source)" in out.stdout and "DS_BUILD_OPS=0" in out.stdout


@pytest.mark.slow
def test_dry_run_holds_on_the_cpu(tmp_path):
    """The whole plan on the CPU (fp32, no DeepSpeed): two stages, SIGKILL and resume, dev rows; minutes."""
    out = script("scripts/gpu_check.py", "--dry-run", "--keep", str(tmp_path), timeout=1800)
    lines = [x for x in out.stdout.splitlines() if x.startswith(("HELD", "FAILED"))]
    failed = [x for x in lines if x.startswith("FAILED") and "step-0 dev baseline" not in x]  # issue 19 part 2
    assert len(lines) >= 18 and not failed, out.stdout[-3000:] + out.stderr[-3000:]
    assert "STEP TIME 1_s1:" in out.stdout and "PEAK HOST MEMORY:" in out.stdout
