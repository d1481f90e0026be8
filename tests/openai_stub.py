"""A real OpenAI-compatible chat-completions server on loopback whose answer text a test sets.

The response body is written by hand, so a test can send what real servers do send: a lone
surrogate escape (``"\\ud800"``) or bytes that are not UTF-8. It counts requests."""

from __future__ import annotations

import json

from loopback import Loopback


class StubServer(Loopback):
    """``with StubServer(r'\\boxed{7}') as s: s.url``: every completion's content is ``content``
    (raw JSON string body text, so escapes go through as written) or ``raw_bytes`` if set."""

    def __init__(self, content: str = "\\\\boxed{7}", raw_bytes: bytes | None = None) -> None:
        self.content, self.raw_bytes, self.requests = content, raw_bytes, 0
        super().__init__()

    def answer(self, request, body: bytes) -> tuple[int, bytes, dict]:
        self.requests += 1
        n = int(json.loads(body).get("n", 1))
        text = self.raw_bytes if self.raw_bytes is not None else self.content.encode()
        choices = [b'{"index": ' + str(i).encode() + b', "message": {"role": "assistant", "content": "'
                   + text + b'"}, "finish_reason": "stop"}' for i in range(n)]
        out = b'{"choices": [' + b", ".join(choices) + b'], "usage": {"completion_tokens": ' + str(3 * n).encode() + b"}}"
        return 200, out, {}
