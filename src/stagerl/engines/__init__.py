"""Generation engines behind one interface (see ``base.py``).

``make_engine(kind, model, **options)`` builds one: ``transformers`` (in-process, CPU or GPU),
``openai`` (any OpenAI-compatible server) or ``vllm`` (in-process vLLM, optional extra).
Each engine module is imported only when asked for, so optional dependencies stay optional.
"""

from __future__ import annotations

from typing import Any

from .base import Completion, Engine, Message, Prompt, as_messages

ENGINE_KINDS = ("transformers", "openai", "vllm")

__all__ = ["Completion", "Engine", "Message", "Prompt", "as_messages", "make_engine", "ENGINE_KINDS"]


def make_engine(kind: str, model: str, **options: Any) -> Engine:
    """Build the engine ``kind`` for ``model``; ``options`` go to the engine's constructor. The
    engine is a context manager (``with make_engine(...) as engine:`` closes it); local models are
    resolved by the engine itself (``resolve_model``), nowhere else.

    ``transformers``: ``model`` is an alias, folder or hub id (``resolve_model``); options
    ``batch_size``, ``device``, ``dtype``, ``progress``.
    ``openai``: ``model`` is the served model name; options ``base_url`` (required),
    ``api_key_env``, ``concurrency``, ``timeout``, ``max_retries``, ``progress``.
    ``vllm``: ``model`` as for ``transformers``; other options go to ``vllm.LLM``.
    """
    if kind == "transformers":
        from .hf import TransformersEngine

        return TransformersEngine(model, **options)
    if kind == "openai":
        from .openai import OpenAIEngine

        opts = dict(options)
        base_url = opts.pop("base_url", None)
        if not base_url:
            raise ValueError("engine 'openai' needs the option 'base_url' (e.g. http://localhost:8000/v1)")
        return OpenAIEngine(base_url, model, **opts)
    if kind == "vllm":
        from .vllm import VLLMEngine

        return VLLMEngine(model, **options)
    raise ValueError(f"unknown engine kind {kind!r}; expected one of {ENGINE_KINDS}")
