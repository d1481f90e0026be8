"""The ``openai`` engine against a real vLLM server (vLLM's CPU build, the embedded SmolLM2-135M)
on loopback: concurrency, seeds, a server SIGKILLed mid-run and restarted, a server not up.

The server is vLLM's OpenAI-compatible server with TRL's flags (``vllm_server`` in
tests/conftest.py, ``served.vllm_server_command``: what ``vllm serve``/``trl vllm-serve`` run), one
for the session; the kill test restarts it. Skipped where vLLM is not installed."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

pytest.importorskip("vllm")

from loopback import Loopback  # noqa: E402
from served import VLLM_NAME as NAME, free_port  # noqa: E402
from stagerl.config import ModelRef, PromptConfig, RewardsConfig, SamplingConfig, ScoringConfig  # noqa: E402
from stagerl.data.problem import Problem  # noqa: E402
from stagerl.engines import make_engine  # noqa: E402
from stagerl.engines.openai import OpenAIEngineError  # noqa: E402
from stagerl.scoring import score  # noqa: E402
from stagerl.scoring.run import sample_seed  # noqa: E402
from stagerl.store import SampleStore  # noqa: E402


class CountingProxy(Loopback):
    """Loopback proxy to the real server that records the requests in flight at once."""

    prefix = "/v1"

    def __init__(self, upstream: str) -> None:
        self.upstream, self.lock, self.in_flight, self.peak, self.bodies = upstream, threading.Lock(), 0, 0, []
        super().__init__()

    def answer(self, request, body: bytes) -> tuple[int, bytes, dict]:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.bodies.append(json.loads(body))
        try:
            r = httpx.post(self.upstream + request.path.removeprefix("/v1"), content=body, timeout=300,
                           headers={"Content-Type": "application/json"})
            return r.status_code, r.content, {}
        finally:
            with self.lock:
                self.in_flight -= 1


def problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i:02d}", domain="math", prompt=f"What is {i} + {2 * i}?", answer=str(3 * i))
            for i in range(n)]


def scoring(url: str, k: int, concurrency: int, call_size: int, max_tokens: int = 8, **options) -> ScoringConfig:
    ref = ModelRef(name="served", model=NAME, engine="openai", temperature=1.0,
                   options={"base_url": url, "concurrency": concurrency, "api_key_env": "", **options})
    return ScoringConfig(models=[ref], k=k, adaptive=False, call_size=call_size,
                         sampling=SamplingConfig(max_tokens=max_tokens, seed=7))


def test_scoring_keeps_concurrency_requests_in_flight(tmp_path, vllm_server):
    with CountingProxy(vllm_server.url) as proxy:
        store = SampleStore(tmp_path / "samples.sqlite")
        table = score(problems(8), store, scoring(proxy.url, k=4, concurrency=8, call_size=32),
                      rewards=RewardsConfig(workers=1), progress=False)
    assert len(store) == 32 and (table["samples"] == 4).all()
    assert proxy.peak == 8
    assert all(b.get("n", 1) == 1 and "seed" in b for b in proxy.bodies) and len(proxy.bodies) == 32


def test_same_seed_same_text(vllm_server):
    with make_engine("openai", NAME, base_url=vllm_server.url, api_key_env="") as eng:
        a = eng.generate(["Name a fruit.", "Say hello."], n=2, temperature=1.0, max_tokens=12, seeds=[[5, 6], [5, 6]])
        b = eng.generate(["Say hello.", "Name a fruit."], n=2, temperature=1.0, max_tokens=12, seeds=[[5, 6], [5, 6]])
    assert [c.text for c in a[0]] == [c.text for c in b[1]] and [c.text for c in a[1]] == [c.text for c in b[0]]
    assert a[0][0].text != a[0][1].text  # another seed, another sample
    assert all(1 <= c.tokens <= 12 for r in a for c in r)


def test_server_killed_mid_run_and_restarted_loses_nothing(tmp_path, vllm_server):
    probs, k = problems(6), 2
    db = tmp_path / "samples.sqlite"
    cfg = scoring(vllm_server.url, k=k, concurrency=2, call_size=2, max_tokens=8, max_retries=1, backoff=0.05)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            score(probs, SampleStore(db), cfg, rewards=RewardsConfig(workers=1), progress=False)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            failed.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and worker.is_alive() and (not db.exists() or len(SampleStore(db)) < k):
        time.sleep(0.05)
    assert worker.is_alive(), f"scoring ended before the kill: {failed}"
    vllm_server.kill()
    worker.join(120)
    assert not worker.is_alive() and failed and isinstance(failed[0], OpenAIEngineError)
    assert vllm_server.url in str(failed[0])
    before = {(r["problem_id"], r["idx"]): r for r in SampleStore(db).samples(with_rowid=True)}
    assert k <= len(before) < len(probs) * k

    vllm_server.restart()
    table = score(probs, SampleStore(db), cfg, rewards=RewardsConfig(workers=1), progress=False)
    after = {(r["problem_id"], r["idx"]): r for r in SampleStore(db).samples(with_rowid=True)}
    assert len(after) == len(probs) * k and (table["samples"] == k).all()
    assert table.attrs["generated"] == len(probs) * k - len(before)  # nothing stored was generated again
    assert all(after[key] == row for key, row in before.items())
    # the restarted server draws a sample stored before the kill again, from its seed alone
    (pid, idx), row = next(iter(sorted(before.items())))
    prompt = PromptConfig().messages(next(p for p in probs if p.id == pid))  # what scoring sent
    with make_engine("openai", NAME, base_url=vllm_server.url, api_key_env="") as eng:
        again = eng.generate([prompt], n=1, temperature=1.0, max_tokens=8,
                             seeds=[[sample_seed(7, "served", pid, idx)]])
    assert again[0][0].text == row["text"]


def test_a_server_that_is_not_up_stops_scoring_before_any_work(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    store = SampleStore(tmp_path / "samples.sqlite")
    with pytest.raises(OpenAIEngineError, match=f"no server answers at {url}"):
        score(problems(2), store, scoring(url, k=2, concurrency=2, call_size=4), progress=False)
    assert len(store) == 0
