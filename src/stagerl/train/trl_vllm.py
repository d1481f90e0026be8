"""Keep TRL from importing vLLM in a process that will not generate with TRL's vLLM path.

TRL 1.16 imports vLLM whenever it is installed, at the import of ``GRPOTrainer``
(``trl.generation.vllm_generation``). On vLLM's CPU build that is about 6 s of CPU (a third of
the trainer's import), paid by every stage's process and by every ``stagerl`` command, also when
no stage sets ``trl.use_vllm``. With ``STAGERL_TRL_VLLM=0`` in its environment, a process hides
vLLM from TRL (``trl.import_utils.is_vllm_available`` answers False) before TRL's trainer module
is imported. stagerl's own vLLM engine (``engines/vllm.py``) imports vLLM itself and is unaffected.

Who sets it: the CLI sets 0 for its own process (it never builds a trainer; the stages train in
child processes), and the runner sets it for each stage's process: 1 where the stage sets
``trl.use_vllm``, else 0. ``STAGERL_TRL_VLLM=1`` set by the user turns hiding off everywhere.
Unset, a process that imports stagerl (``isolate=False`` training included) is left as it is.
If a later TRL imports vLLM elsewhere, hiding saves nothing but changes nothing either
(tests/train/test_trl_vllm.py notices).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

ENV = "STAGERL_TRL_VLLM"


def uses_trl_vllm(stage: Any) -> bool:
    """Whether a stage generates through TRL's vLLM path (``trl: {use_vllm: true}``)."""
    return bool(getattr(stage, "trl", None) and stage.trl.get("use_vllm"))


def _absent(min_version: str | None = None) -> bool:
    return False


def hide_vllm_if_asked() -> None:
    """Under ``STAGERL_TRL_VLLM=0``, make TRL see no vLLM in this process. Call it before TRL's
    trainer is imported; after that TRL has decided, and this changes nothing."""
    if os.environ.get(ENV) != "0":
        return
    utils = importlib.import_module("trl.import_utils")  # (trl's lazy module has no attribute for it)
    if "trl.generation" not in sys.modules:
        utils.is_vllm_available = _absent


def child_value(stage: Any) -> str:
    """``STAGERL_TRL_VLLM`` for the process of ``stage``: 1 where the stage uses TRL's vLLM or the
    user set 1 in this process (hiding turned off), else 0."""
    return "1" if uses_trl_vllm(stage) or os.environ.get(ENV) == "1" else "0"
