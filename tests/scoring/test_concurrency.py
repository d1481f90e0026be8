"""Scoring keeps a served model's ``concurrency`` requests in flight (real loopback HTTP server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stagerl.config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig
from stagerl.data.problem import Problem
from stagerl.levels.rules import bind, load_rules
from stagerl.scoring import score
from stagerl.store import SampleStore

DELAY_S = 0.4  # each answer takes this long, so requests sent together overlap on a loaded box


class CountingServer:
    """A threaded OpenAI-compatible chat-completions server that records requests in flight."""

    def __init__(self) -> None:
        self.lock, self.in_flight, self.peak, self.bodies = threading.Lock(), 0, 0, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    owner.in_flight += 1
                    owner.peak = max(owner.peak, owner.in_flight)
                    owner.bodies.append(body)
                time.sleep(DELAY_S)
                n = int(body.get("n", 1))
                data = json.dumps({"choices": [{"index": i, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "\\boxed{0}"}}
                                               for i in range(n)],
                                   "usage": {"completion_tokens": 4 * n}}).encode()
                with owner.lock:
                    owner.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "CountingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("concurrency, call_size", [(32, 64), (24, 8)])
def test_scoring_keeps_concurrency_requests_in_flight(tmp_path, concurrency, call_size):
    # rounds of 4 (adaptive; answers are always wrong, so every pair draws all k = 8 in two rounds):
    # main kept at most call_size // 4 requests in flight (16 and 2 here)
    problems = [Problem(id=f"p{i}", domain="math", prompt=f"What is {i} + 7?", answer=str(i + 7)) for i in range(40)]
    rules = bind(load_rules("demo"), {"policy": "served"})
    with CountingServer() as server:
        ref = ModelRef(name="served", model="m", engine="openai",
                       options={"base_url": server.url, "concurrency": concurrency, "api_key_env": ""})
        store = SampleStore(tmp_path / "samples.sqlite")
        cfg = ScoringConfig(models=[ref], k=8, adaptive=True, round_size=4, call_size=call_size,
                            sampling=SamplingConfig(max_tokens=8))
        table = score(problems, store, cfg, rules=rules, rewards=RewardsConfig(workers=1), progress=False)
    assert len(store) == 40 * 8 and (table["samples"] == 8).all()
    assert server.peak == concurrency
    assert all(b.get("n", 1) == 1 and "seed" in b for b in server.bodies)  # one seeded request per sample
    assert len({b["seed"] for b in server.bodies}) == 40 * 8
