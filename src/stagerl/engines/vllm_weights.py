"""A vLLM weight-transfer backend that needs no GPU: ``stagerl_file``.

TRL's server mode pushes the trainer's weights into ``vllm serve`` after each optimizer step over
vLLM's NCCL weight-transfer engine, which needs CUDA on both sides. On a CPU (vLLM's CPU build,
trainer and server on one machine) this backend moves the same tensors through a file instead:
the trainer writes them as safetensors into a directory both processes see (``/dev/shm`` where it
exists) and posts the file's path to the server's ``/update_weights``; the server's worker reads
it and loads the tensors with the model's ``load_weights`` inside vLLM's layer-wise reload
lifecycle (as the NCCL engine does), so vLLM's CPU kernels get their repacked weights again.
The trainer side is ``stagerl.train.vllm_client.FileSyncClient``.

vLLM finds the backend through the ``vllm.general_plugins`` entry point that the stagerl package
declares (``register`` below), in every vLLM process of an environment where stagerl is installed.
Start the server with ``--weight-transfer-config '{"backend": "stagerl_file"}'`` and
``VLLM_SERVER_DEV_MODE=1`` (docs/vllm.md). Tested on the CPU in tests/train/test_vllm_trl.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from vllm.distributed.weight_transfer.base import (
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)

BACKEND = "stagerl_file"


def register() -> None:
    """vLLM general plugin: make ``stagerl_file`` a weight-transfer backend in this process."""
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    try:
        WeightTransferEngineFactory.register_engine(BACKEND, __name__, "FileWeightTransferEngine")
    except ValueError:  # already registered (plugins loaded twice in one process)
        pass


def repack_tied_heads(model: torch.nn.Module) -> int:
    """Repack the output head of a model whose head shares the input embeddings (SmolLM2, Qwen2.5
    0.5B-3B); returns how many heads were repacked. On the CPU, vLLM computes a head with a packed
    copy of its weight made when the model loaded (``dispatch_cpu_unquantized_gemm``). A weight
    update reloads the embeddings in place, but the head receives no tensor of its own (the
    checkpoint has none), so layer-wise reload does not process it again and it kept computing
    with the old embeddings: found by the weight-sync probe (the served log-probability of a text
    was that of the new model with the old head, to 5 digits). GPU kernels read the shared tensor
    itself, so there is nothing to do there."""
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return 0
    embeddings = {m.weight.data_ptr() for m in model.modules()
                  if isinstance(m, VocabParallelEmbedding) and not isinstance(m, ParallelLMHead)}
    repacked = 0
    for module in model.modules():
        if isinstance(module, ParallelLMHead) and module.weight.data_ptr() in embeddings:
            module.quant_method.process_weights_after_loading(module)
            repacked += 1
    return repacked


@dataclass
class FileInitInfo(WeightTransferInitInfo):
    directory: str = ""
    """The directory the trainer writes weight files into; the server reads only from it."""


@dataclass
class FileUpdateInfo(WeightTransferUpdateInfo):
    path: str = ""
    """One safetensors file holding the tensors of this update."""
    names: list[str] = field(default_factory=list)
    """The tensors to load from it, in the trainer's order (vLLM parameter names)."""


class FileWeightTransferEngine(WeightTransferEngine[FileInitInfo, FileUpdateInfo]):
    """Loads the tensors of a safetensors file that the trainer wrote, in checkpoint format."""

    init_info_cls = FileInitInfo
    update_info_cls = FileUpdateInfo
    supports_draft_weight_update = False

    directory: Path | None = None

    def init_transfer_engine(self, init_info: FileInitInfo) -> None:
        directory = Path(init_info.directory)
        if not init_info.directory or not directory.is_dir():
            raise ValueError(f"{BACKEND}: the trainer's weight directory {init_info.directory!r} is not a "
                             "directory this server can see (trainer and server must share a file system)")
        self.directory = directory.resolve()

    def start_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def finish_weight_update(self) -> None:
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)
        repack_tied_heads(self.model)

    def update_weights(self, update_info: dict) -> None:
        self.receive_weights(self.parse_update_info(update_info))
        if torch.cuda.is_available():
            torch.accelerator.synchronize()

    def receive_weights(self, update_info: FileUpdateInfo) -> None:
        if self.directory is None:
            raise RuntimeError(f"{BACKEND}: no weight directory yet (init_weight_transfer_engine first)")
        path = Path(update_info.path).resolve()
        if path.parent != self.directory:
            raise ValueError(f"{BACKEND}: {update_info.path} is outside the trainer's weight directory {self.directory}")
        from safetensors.torch import load_file

        tensors = load_file(str(path), device="cpu")
        missing = [n for n in update_info.names if n not in tensors]
        if missing:
            raise ValueError(f"{BACKEND}: {path.name} lacks {missing[:3]} ({len(missing)} of {len(update_info.names)})")
        self.model.load_weights([(n, tensors[n].to(self.device)) for n in update_info.names])

    def shutdown(self) -> None:
        self.directory = None
