"""The one interface every generation engine implements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol, Union

_SURROGATE = re.compile("[\ud800-\udfff]")
Message = dict  # {"role": "user" | "system" | "assistant", "content": str}
Prompt = Union[str, list[Message]]  # a plain string is sent as one user message


@dataclass
class Completion:
    text: str
    """The generated text (no prompt, no special tokens)."""
    tokens: int
    """Number of generated tokens."""
    finish: str
    """``"stop"`` (ended by EOS/stop) or ``"length"`` (hit max_tokens: truncated)."""

    def __post_init__(self) -> None:
        self.text = safe_text(self.text) if isinstance(self.text, str) else self.text


def safe_text(text: str) -> str:
    """``text`` as valid Unicode: lone surrogates (e.g. ``"\\ud800"`` decoded from a server's
    JSON) become U+FFFD, so SQLite, files and the sandbox can encode it."""
    return _SURROGATE.sub("\ufffd", text)


OnDone = Callable[[int, list[Completion]], None]
"""``on_done(i, completions)``: prompt ``i`` of a ``generate`` call has all its completions."""


class Engine(Protocol):
    """``generate`` returns, for each prompt, ``n`` completions in sample order.

    ``seeds`` (optional, one list of ``n`` ints per prompt) asks for sample ``j`` of prompt ``i`` to
    be drawn with seed ``seeds[i][j]`` whatever else is in the call; it overrides ``seed``. What
    each engine makes of it: ``transformers`` samples every sequence with its own generator;
    ``vllm`` sends one request per sample with ``SamplingParams(seed=...)``; ``openai`` sends one
    request per sample with ``seed`` (honoured by vLLM/SGLang servers, best effort by hosted APIs).

    ``on_done`` (optional) is called, in the caller's thread, as ``on_done(i, completions)`` once
    prompt ``i`` has its ``n`` completions, while the rest of the call still runs: a caller stores
    what is finished, so a killed call loses only what was unfinished. Every prompt is reported once,
    in whatever order prompts finish; the return value still holds all of them.
    """

    name: str

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
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc: object) -> None: ...


def report_if_done(on_done: OnDone | None, out: list[list[Completion | None]], i: int) -> None:
    """Call ``on_done(i, out[i])`` if prompt ``i`` now has every completion (an engine calls this
    each time it fills a slot of ``out[i]``, so a prompt is reported exactly once)."""
    if on_done is not None and all(c is not None for c in out[i]):
        on_done(i, list(out[i]))  # type: ignore[arg-type]


def as_messages(prompt: Prompt) -> list[Message]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class ClosingEngine:
    """Engines are context managers: ``with make_engine(...) as engine:`` closes it on leaving."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - every engine defines its own
        pass


def check_seeds(seeds: list[list[int]] | None, prompts: int, n: int) -> None:
    """Raise ``ValueError`` unless ``seeds`` is ``None`` or one list of ``n`` ints per prompt."""
    if seeds is None:
        return
    if len(seeds) != prompts or any(len(s) != n for s in seeds):
        raise ValueError(f"seeds must hold {n} seed(s) for each of the {prompts} prompts, "
                         f"got lengths {[len(s) for s in seeds]}")


def bar_of(progress, total: int, desc: str):
    """An engine's bar for one call: ``progress`` False: none; True: a tqdm bar; a callable (a bar
    factory, as vLLM's ``use_tqdm`` takes: ``console.lines_for`` gives one): what it makes."""
    if callable(progress):
        return progress(total=total, desc=desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not progress)
