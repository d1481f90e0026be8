"""TRL imports vLLM only in the processes that generate with it (train/trl_vllm.py): a stage's process
without ``trl.use_vllm`` and the ``stagerl`` command itself load TRL's trainer without vLLM; a stage
with it gets vLLM as before. Real spawned processes, the installed TRL and vLLM."""

import importlib.util
import os
import subprocess
import sys

import pytest

from stagerl.config import StageConfig
from stagerl.train.runner import _run_in_child
from stagerl.train.trl_vllm import ENV, child_value

# without vLLM installed there is nothing to hide (found, not imported: the spawned children import this file)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")


def _what_the_child_sees(stage):
    import importlib

    from stagerl.train import grpo  # noqa: F401 (already imported while unpickling this function)
    return os.environ.get(ENV), "vllm" in sys.modules, importlib.import_module("trl.import_utils").is_vllm_available()


def test_each_stage_process_gets_vllm_only_where_the_stage_uses_it(monkeypatch):
    """If a later TRL imports vLLM elsewhere, the first assertion fails: hiding no longer saves anything."""
    monkeypatch.delenv(ENV, raising=False)  # a program that imports stagerl (the command sets 0 for itself)
    plain = StageConfig(name="plain")
    served = StageConfig(name="served", trl={"use_vllm": True, "vllm_mode": "server"})
    assert _run_in_child(_what_the_child_sees, {"stage": plain}, {}) == ("0", False, False)
    assert ENV not in os.environ  # the parent's environment is as it was
    monkeypatch.setenv(ENV, "0")  # as the stagerl command sets it for itself
    assert _run_in_child(_what_the_child_sees, {"stage": served}, {}) == ("1", True, True)
    assert os.environ[ENV] == "0"
    monkeypatch.setenv(ENV, "1")  # the user turned hiding off
    assert child_value(plain) == "1"
    monkeypatch.setenv(ENV, "0")
    assert child_value(plain) == "0"


def test_the_command_hides_vllm_from_trl_in_its_own_process_only_when_run_as_a_command(tmp_path):
    """``stagerl`` as a command sets the variable for itself; ``main([...])`` inside a program leaves
    the program's environment alone (it may build a vLLM trainer in-process)."""
    from stagerl.cli import main

    env = {k: v for k, v in os.environ.items() if k != ENV}
    code = ("import os, sys; from stagerl.cli import main; sys.argv = ['stagerl', 'recipe', 'demo'];"
            f"main(); print(os.environ.get({ENV!r}), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stderr.strip().splitlines()[-1] == "0", out.stderr[-2000:]
    before = os.environ.get(ENV)
    assert main(["recipe", "demo"]) == 0
    assert os.environ.get(ENV) == before
