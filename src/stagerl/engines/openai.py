"""Generation through any OpenAI-compatible chat-completions server.

Tested on loopback against vLLM's OpenAI-compatible server (vLLM's CPU build, the server
``vllm serve`` runs; tests/engines/test_vllm_serve.py: concurrency, per-request seeds, a server
killed and restarted) and ``transformers serve`` (tests/engines/test_openai.py); meant also for
SGLang and hosted APIs (not run here). A server that does not answer when the engine is made is
an error naming its URL (``check_server``), before any work. Requests run concurrently on threads
over one ``httpx`` client; connection errors, timeouts, 429 and 5xx are
retried with exponential backoff and jitter (``Retry-After`` honoured), other 4xx fail at once.
The API key is read from an environment variable and sent only in the ``Authorization`` header.

``n`` samples of a prompt go in one request when the server honours ``n``; the first call probes
this, and servers that ignore or refuse ``n>1`` get ``n`` single requests instead, sample ``i``
with seed ``seed + i`` (so each sample is reproducible on servers that honour ``seed``).
With per-sample ``seeds`` (what scoring sends) every sample is its own ``n=1`` request carrying its
seed, so a sample is the same whichever call asks for it, on servers that honour ``seed`` (vLLM
does per request, tested; SGLang documents it, not run here; hosted APIs call it best effort).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx

from .base import ClosingEngine, Completion, OnDone, Prompt, as_messages, bar_of, check_seeds, report_if_done

RETRY_CAP_S = 30.0
"""Longest single wait between retries."""


class OpenAIEngineError(RuntimeError):
    """A request failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def split_tokens(total: int, texts: list[str]) -> list[int]:
    """Share ``total`` completion tokens among choices in proportion to their text length.

    OpenAI's ``usage`` counts the tokens of all ``n`` choices together; this is the estimate used
    when a server answers ``n>1`` in one response (exact when there is one choice). The parts sum
    to ``total``.
    """
    if not texts:
        return []
    weights = [max(len(t), 1) for t in texts]
    raw = [total * w / sum(weights) for w in weights]
    parts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda k: raw[k] - parts[k], reverse=True)
    for k in order[: total - sum(parts)]:
        parts[k] += 1
    return parts


def check_server(base_url: str, timeout: float = 10.0) -> None:
    """Raise ``OpenAIEngineError`` naming ``base_url`` unless some HTTP server answers there (any
    status counts: this asks whether the server is up, not whether it serves the model)."""
    url = base_url.rstrip("/") + "/models"
    try:
        httpx.get(url, timeout=timeout)
    except httpx.TransportError as e:
        raise OpenAIEngineError(f"no server answers at {base_url} ({type(e).__name__}: {e}); start it first "
                                f"(e.g. `vllm serve MODEL --port PORT`) or fix base_url") from e


class OpenAIEngine(ClosingEngine):
    """The ``openai`` engine: chat completions from a server at ``base_url`` (``.../v1``)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 600,
        max_retries: int = 5,
        backoff: float = 0.5,
        use_n: bool = True,
        progress: Any = False,
        check: bool = True,
    ) -> None:
        """``check``: fail at once, naming ``base_url``, when no server answers there
        (``check_server``); later connection errors are retried like any other."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if check:
            check_server(base_url, timeout=min(timeout, 10.0))
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.progress = progress
        self.n_supported: bool | None = None if use_n else False
        """Whether the server honours ``n>1`` (``None``: not probed yet)."""
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
                                    limits=limits)
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r}, concurrency={self.concurrency})"

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to ``base_url + path`` with retries; return the decoded JSON response."""
        url = self.base_url + path
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                r = self._client.post(url, json=payload)
            except httpx.TransportError as e:  # connection refused/reset, timeouts, protocol errors
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400:
                    try:
                        return r.json()
                    except ValueError as e:  # bytes that are not UTF-8 become U+FFFD; not JSON at all is an error
                        try:
                            return json.loads(r.content.decode("utf-8", "replace"))
                        except ValueError:
                            raise OpenAIEngineError(f"{url} answered {r.status_code} with non-JSON: "
                                                    f"{r.text[:200]!r}") from e
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                if r.status_code != 429 and r.status_code < 500:
                    raise OpenAIEngineError(f"{url} refused the request ({last})", status=r.status_code)
                wait = _retry_after(r)
            if attempt == self.max_retries:
                break
            delay = min(RETRY_CAP_S, self.backoff * 2**attempt) * random.uniform(0.5, 1.5)
            time.sleep(min(RETRY_CAP_S, wait) if wait is not None else delay)
        raise OpenAIEngineError(f"{url} failed after {self.max_retries + 1} attempts (last: {last})")

    def _chat(self, prompt: Prompt, n: int, temperature: float, top_p: float, max_tokens: int,
              seed: int | None) -> list[Completion]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": as_messages(prompt),
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
        }
        if n > 1:
            payload["n"] = n
        if seed is not None:
            payload["seed"] = seed
        data = self.post("/chat/completions", payload)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        texts = [((c.get("message") or {}).get("content") or "") for c in choices]
        total = (data.get("usage") or {}).get("completion_tokens") or 0
        counts = split_tokens(int(total), texts)
        return [
            Completion(text=t, tokens=k, finish="length" if c.get("finish_reason") == "length" else "stop")
            for c, t, k in zip(choices, texts, counts)
        ]

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
        """For each prompt, ``n`` completions in sample order (see ``Engine``); at most
        ``concurrency`` requests are in flight; ``on_done`` hears of each prompt as its last answer
        arrives."""
        if n < 1 or max_tokens < 1:
            raise ValueError(f"n and max_tokens must be >= 1, got n={n}, max_tokens={max_tokens}")
        check_seeds(seeds, len(prompts), n)
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        bar = bar_of(self.progress, len(prompts) * n, f"generate {self.model}")
        rest = list(range(len(prompts)))
        try:
            if n > 1 and self.n_supported is None and rest and seeds is None:
                first = rest.pop(0)
                got = self._probe_n(prompts[first], n, temperature, top_p, max_tokens, seed)
                if got is None:
                    rest.insert(0, first)
                else:
                    out[first] = list(got)
                    bar.update(n)
                    report_if_done(on_done, out, first)
            use_n = n > 1 and bool(self.n_supported) and seeds is None
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                if use_n:
                    jobs = {pool.submit(self._chat, prompts[i], n, temperature, top_p, max_tokens, seed): (i, None)
                            for i in rest}
                else:
                    def seed_of(i: int, j: int) -> int | None:
                        return seeds[i][j] if seeds is not None else None if seed is None else seed + j

                    jobs = {pool.submit(self._chat, prompts[i], 1, temperature, top_p, max_tokens, seed_of(i, j)): (i, j)
                            for i in rest for j in range(n)}
                for fut in as_completed(jobs):
                    (i, j), got = jobs[fut], fut.result()
                    if len(got) != (n if j is None else 1):
                        raise OpenAIEngineError(f"server returned {len(got)} choices for n={n if j is None else 1}")
                    if j is None:
                        out[i] = list(got)
                    else:
                        out[i][j] = got[0]
                    bar.update(len(got))
                    report_if_done(on_done, out, i)
        finally:
            bar.close()
        return out  # type: ignore[return-value]

    def _probe_n(self, prompt: Prompt, n: int, temperature: float, top_p: float, max_tokens: int,
                 seed: int | None) -> list[Completion] | None:
        """Send one ``n>1`` request; remember whether the server honours ``n``."""
        try:
            got = self._chat(prompt, n, temperature, top_p, max_tokens, seed)
        except OpenAIEngineError as e:
            if e.status not in (400, 422):
                raise
            got = []
        with self._lock:
            self.n_supported = len(got) == n
        return got if self.n_supported else None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return max(0.0, float(r.headers.get("retry-after", "")))
    except ValueError:
        return None
