"""The openai engine against a real ``transformers serve`` (SmolLM2-135M) on loopback.

Retry behaviour is tested with a real flaky proxy (a loopback ``http.server``) in front of that
server: it answers the first requests with an error status, then forwards to the real server.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from loopback import Loopback
from served import free_port, start, stop
from stagerl.engines import make_engine
from stagerl.engines.openai import OpenAIEngine, OpenAIEngineError, split_tokens

READY_TIMEOUT_S = 120


def serve_command(model_dir: str, port: int) -> list[str]:
    exe = Path(sys.executable).with_name("transformers")
    exe_s = str(exe) if exe.exists() else (shutil.which("transformers") or "transformers")
    return [exe_s, "serve", model_dir, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]


@pytest.fixture(scope="module")
def server(smollm2_dir, tmp_path_factory):
    """A real ``transformers serve`` pinned to SmolLM2; always stopped (whole process group)."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    try:
        proc = start(serve_command(smollm2_dir, port), port, log, READY_TIMEOUT_S)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield f"http://127.0.0.1:{port}/v1", smollm2_dir
    finally:
        stop(proc, timeout=15)


class FlakyProxy(Loopback):
    """Loopback proxy: the first ``failures`` POSTs get ``status``; the rest go to ``upstream``."""

    prefix = ""

    def __init__(self, upstream: str, failures: int = 0, status: int = 503, headers: dict | None = None) -> None:
        self.upstream, self.failures, self.status, self.headers = upstream, failures, status, headers or {}
        self.requests: list[tuple[str, str | None, dict]] = []  # (path, authorization, body)
        super().__init__()

    def answer(self, request, body: bytes) -> tuple[int, bytes, dict]:
        self.requests.append((request.path, request.headers.get("Authorization"), json.loads(body)))
        if self.failures > 0:
            self.failures -= 1
            return self.status, b'{"error": "try again"}', self.headers
        r = httpx.post(self.upstream + request.path, content=body, timeout=120, headers={"Content-Type": "application/json"})
        return r.status_code, r.content, {}


def test_generates_n_samples_per_prompt_from_a_real_server(server):
    base_url, model = server
    eng = make_engine("openai", model, base_url=base_url, concurrency=4)
    heard: dict[int, list] = {}
    out = eng.generate(["Say hello.", "What is 2 + 2?", "Name a fruit."], n=2, max_tokens=6, seed=3,
                       on_done=lambda i, c: heard.setdefault(i, c) is c or pytest.fail(f"prompt {i} reported twice"))
    eng.close()
    assert [len(r) for r in out] == [2, 2, 2]
    assert heard == dict(enumerate(out))  # each prompt reported once, with what the call returns
    for c in (c for r in out for c in r):
        assert c.text and 1 <= c.tokens <= 6 and c.finish in ("stop", "length")
    # transformers serve ignores n: the engine noticed and sent single requests instead
    assert eng.n_supported is False


def test_retries_5xx_then_succeeds_sending_the_key_and_per_sample_seeds(server, monkeypatch):
    base_url, model = server
    monkeypatch.setenv("STAGERL_TEST_KEY", "sk-test-123")
    with FlakyProxy(base_url.removesuffix("/v1"), failures=2, status=503) as proxy:
        eng = OpenAIEngine(proxy.url + "/v1", model, api_key_env="STAGERL_TEST_KEY", concurrency=1, backoff=0.01)
        out = eng.generate(["Say hello."], n=3, max_tokens=4, seed=10)
    assert len(out[0]) == 3 and all(c.tokens == 4 and c.finish == "length" for c in out[0])
    bodies = [b for _, _, b in proxy.requests]
    assert len(bodies) == 2 + 1 + 3  # two 503s, then the n=3 probe, then three single requests
    assert bodies[0] == bodies[1] == bodies[2] and bodies[0]["n"] == 3 and bodies[0]["seed"] == 10
    assert sorted(b["seed"] for b in bodies[3:]) == [10, 11, 12] and all("n" not in b for b in bodies[3:])
    assert {auth for _, auth, _ in proxy.requests} == {"Bearer sk-test-123"}
    assert "sk-test" not in repr(eng)


def test_429_honours_retry_after(server):
    base_url, model = server
    with FlakyProxy(base_url.removesuffix("/v1"), failures=1, status=429, headers={"Retry-After": "0"}) as proxy:
        eng = OpenAIEngine(proxy.url + "/v1", model, backoff=60.0)
        t0 = time.perf_counter()
        out = eng.generate(["hi"], n=1, max_tokens=2)
    assert len(proxy.requests) == 2 and out[0][0].tokens == 2
    assert time.perf_counter() - t0 < 12.0  # a backoff wait would take >= 15 s (capped at 30 s, jitter >= 0.5)


def test_4xx_from_the_real_server_is_not_retried(server):
    base_url, _ = server
    with FlakyProxy(base_url.removesuffix("/v1")) as proxy:
        eng = OpenAIEngine(proxy.url + "/v1", "no-such-model", backoff=0.01)
        with pytest.raises(OpenAIEngineError, match="refused") as err:
            eng.generate(["hi"], n=1, max_tokens=2)
    assert err.value.status == 400 and len(proxy.requests) == 1


def test_connection_refused_is_retried_then_reported():
    # check=False: a server that goes away after the engine was made (see test_vllm_serve.py)
    eng = OpenAIEngine(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=2, backoff=0.01, check=False)
    with pytest.raises(OpenAIEngineError, match="after 3 attempts"):
        eng.generate(["hi"], n=1, max_tokens=2)


def test_a_server_that_is_not_up_is_named_when_the_engine_is_made():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(OpenAIEngineError, match=f"no server answers at {url}.*vllm serve"):
        OpenAIEngine(url, "m", backoff=60.0)  # at once: no retries, no backoff


def test_split_tokens_sums_to_total():
    assert split_tokens(10, ["a", "bbbb"]) == [2, 8]
    assert sum(split_tokens(7, ["x", "y", "z"])) == 7 and split_tokens(5, ["only"]) == [5]
