"""A threaded OpenAI-compatible chat-completions server on loopback that counts requests in flight."""

from __future__ import annotations

import json
import threading
import time

from loopback import Loopback

DELAY_S = 0.4  # each answer takes this long, so requests sent together overlap on a loaded box


class CountingServer(Loopback):
    """A threaded OpenAI-compatible chat-completions server that records requests in flight."""

    def __init__(self, content: str = "\\boxed{0}", delay: float = DELAY_S, expect: int | None = None,
                 hold: float = 5.0) -> None:
        self.lock, self.in_flight, self.peak, self.bodies = threading.Lock(), 0, 0, []
        self.content, self.delay, self.expect, self.hold = content, delay, expect, hold
        self.arrived = threading.Condition(self.lock)
        super().__init__()

    def answer(self, request, raw: bytes) -> tuple[int, bytes, dict]:
        body = json.loads(raw)
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.bodies.append(body)
            self.arrived.notify_all()
            if self.expect:  # wait (bounded) for the client's other requests: a loaded box
                # must not hide a client that keeps `expect` in flight, nor fake one that does not
                self.arrived.wait_for(lambda: self.peak >= self.expect, timeout=self.hold)
        time.sleep(self.delay)
        n = int(body.get("n", 1))
        data = json.dumps({"choices": [{"index": i, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": self.content}}
                                       for i in range(n)],
                           "usage": {"completion_tokens": 4 * n}}).encode()
        with self.lock:
            self.in_flight -= 1
        return 200, data, {}
