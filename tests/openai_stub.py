"""A real OpenAI-compatible chat-completions server on loopback whose answer text a test sets.

The response body is written by hand, so a test can send what real servers do send: a lone
surrogate escape (``"\\ud800"``) or bytes that are not UTF-8. It counts requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    """``with StubServer(r'\\boxed{7}') as s: s.url``: every completion's content is ``content``
    (raw JSON string body text, so escapes go through as written) or ``raw_bytes`` if set."""

    def __init__(self, content: str = "\\\\boxed{7}", raw_bytes: bytes | None = None) -> None:
        self.content, self.raw_bytes, self.requests = content, raw_bytes, 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                stub.requests += 1
                n = int(body.get("n", 1))
                text = stub.raw_bytes if stub.raw_bytes is not None else stub.content.encode()
                choices = [b'{"index": ' + str(i).encode() + b', "message": {"role": "assistant", "content": "'
                           + text + b'"}, "finish_reason": "stop"}' for i in range(n)]
                out = b'{"choices": [' + b", ".join(choices) + b'], "usage": {"completion_tokens": ' + \
                    str(3 * n).encode() + b"}}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
