"""A threaded HTTP server on loopback for tests, as a context manager: a subclass answers each POST
(``answer``); this class owns the socket, the thread, the response framing and the shutdown."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Loopback:
    """``with Server() as s: s.url``; ``url`` ends with the class's ``prefix`` (``/v1`` by default)."""

    prefix = "/v1"

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, data, extra = owner.answer(self, body)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, dict]:
        """(status, response body, extra headers) for one POST."""
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
