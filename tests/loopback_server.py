"""A threaded OpenAI-compatible chat-completions server on loopback that counts requests in flight."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY_S = 0.4  # each answer takes this long, so requests sent together overlap on a loaded box


class CountingServer:
    """A threaded OpenAI-compatible chat-completions server that records requests in flight."""

    def __init__(self, content: str = "\\boxed{0}", delay: float = DELAY_S, expect: int | None = None,
                 hold: float = 5.0) -> None:
        self.lock, self.in_flight, self.peak, self.bodies = threading.Lock(), 0, 0, []
        self.content, self.delay, self.expect, self.hold = content, delay, expect, hold
        self.arrived = threading.Condition(self.lock)
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
                    owner.arrived.notify_all()
                    if owner.expect:  # wait (bounded) for the client's other requests: a loaded box
                        # must not hide a client that keeps `expect` in flight, nor fake one that does not
                        owner.arrived.wait_for(lambda: owner.peak >= owner.expect, timeout=owner.hold)
                time.sleep(owner.delay)
                n = int(body.get("n", 1))
                data = json.dumps({"choices": [{"index": i, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": owner.content}}
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
