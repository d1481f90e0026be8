"""TRL's vLLM server mode on a trainer without CUDA: the weights go to the server through a file.

TRL 1.16 builds a ``VLLMClient`` in ``VLLMGeneration._init_vllm`` and calls its
``init_communicator`` (an NCCL group: CUDA only, ``NotImplementedError`` on a CPU) and later
``update_named_params`` after each optimizer step. ``FileSyncClient`` is that client with the
two transport methods replaced: ``init_communicator`` tells the server a directory (the
``stagerl_file`` backend of ``stagerl.engines.vllm_weights``), ``update_named_params`` writes the
tensors there as one safetensors file and posts its path to ``/update_weights`` between TRL's own
``start_weight_update``/``finish_weight_update`` calls. Everything else (generation, logprobs,
prefix-cache reset) is TRL's. ``file_sync_client`` puts it in place of ``VLLMClient`` while a
stage's trainer is built, only on a trainer without CUDA in server mode (a GPU trainer keeps
TRL's NCCL path); ``trl_contract`` holds the two names it relies on. Trainer and server share
a file system (one machine: a CPU run).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch
from trl.generation import vllm_generation
from trl.generation.vllm_client import VLLMClient

from ..engines.vllm_weights import BACKEND  # the server side's name (vLLM is imported by TRL's client already)

RESTART = ("VLLM_SERVER_DEV_MODE=1 python -m vllm.entrypoints.openai.api_server --model MODEL "
           f"--weight-transfer-config '{json.dumps({'backend': BACKEND})}' --logprobs-mode processed_logprobs "
           "--max-logprobs -1 (docs/vllm.md)")


def sync_root() -> str | None:
    """Where weight files go: ``STAGERL_VLLM_SYNC_DIR``, else ``/dev/shm`` (memory), else the temp dir."""
    root = os.environ.get("STAGERL_VLLM_SYNC_DIR")
    if root:
        return root
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class FileSyncClient(VLLMClient):
    """``trl``'s ``VLLMClient`` whose weight transport is a file (see the module docstring)."""

    sync_dir: Path | None = None

    def init_communicator(self, device: torch.device | str | int = 0) -> None:
        config = self.get_server_info().get("weight_transfer_config")
        backend = (config or {}).get("backend")
        if backend != BACKEND:
            raise RuntimeError(
                f"The vLLM server at {self.base_url} has weight-transfer backend {backend!r}; a trainer without CUDA "
                f"pushes its weights through files, backend {BACKEND!r}. Restart the server with: {RESTART}")
        self.sync_dir = Path(tempfile.mkdtemp(prefix="stagerl-vllm-sync-", dir=sync_root()))
        os.chmod(self.sync_dir, 0o755)  # the server may run as another user
        self._post(f"{self.base_url}/init_weight_transfer_engine", json={"init_info": {"directory": str(self.sync_dir)}})
        atexit.register(self.close_communicator)

    def update_named_params(self, metadata: list[tuple[str, str, list[int]]],
                            named_params: Iterator[tuple[str, torch.Tensor]]) -> None:
        from safetensors.torch import save_file

        if self.sync_dir is None:
            raise RuntimeError("FileSyncClient: init_communicator first")
        tensors: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for name, tensor in named_params:
            t = tensor.detach().to("cpu").contiguous()
            if t.data_ptr() in seen:  # safetensors refuses tensors that share memory (a tied head sent twice)
                t = t.clone()
            seen.add(t.data_ptr())
            tensors[name] = t
        names = [name for name, _, _ in metadata]
        if sorted(names) != sorted(tensors):
            raise RuntimeError(f"FileSyncClient: announced {len(names)} tensors, got {len(tensors)}")
        path = self.sync_dir / f"{uuid.uuid4().hex}.safetensors"
        save_file(tensors, str(path))
        os.chmod(path, 0o644)
        try:
            if not self._updating_weights:
                self._start_weight_update()
            self._post(f"{self.base_url}/update_weights", json={"update_info": {"path": str(path), "names": names}})
            if not self._updating_weights:
                self._finish_weight_update()
        finally:
            path.unlink(missing_ok=True)

    def close_communicator(self) -> None:
        if self.sync_dir is not None:
            shutil.rmtree(self.sync_dir, ignore_errors=True)
            self.sync_dir = None


def needs_file_sync(args) -> bool:
    """True when a stage uses TRL's vLLM server mode from a trainer without CUDA."""
    return bool(args.use_vllm) and args.vllm_mode == "server" and not torch.cuda.is_available()


@contextlib.contextmanager
def file_sync_client(args):
    """While a stage's trainer is built: TRL's server-mode client is ``FileSyncClient`` when
    ``needs_file_sync(args)`` (the trainer keeps the instance it made); otherwise nothing changes."""
    if not needs_file_sync(args):
        yield
        return
    original = vllm_generation.VLLMClient
    vllm_generation.VLLMClient = FileSyncClient
    try:
        yield
    finally:
        vllm_generation.VLLMClient = original
