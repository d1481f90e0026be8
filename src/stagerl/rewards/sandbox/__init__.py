"""Sandbox for untrusted programs: warm slots whose trusted supervisor forks one child per test.

- ``sandbox/isolation.py``: the mode (``bwrap`` or the explicit ``unsafe-limits``), the probe that
  fails closed, the bubblewrap command line, what holds where (``sandbox_status``).
- ``sandbox/slot.py``: one slot (start, talk, close, run a program's tests on it).
- ``sandbox/supervisor.py``: the trusted supervisor inside the sandbox (stdlib only).
- this module: limits, the job queue and its slot runner threads, the public API.

Threat model: the submission controls its child completely (it may patch builtins, ``json``,
``sys.exit``, write any bytes to any fd it holds, signal or fork). It never sees expected outputs:
they stay in this process and verdicts are made by the caller; what it can emit is at most "a
value for the current test". A slot that dies or stalls fails only the test in flight. A slot
that cannot start, or a child that cannot be set up, is an infrastructure error: retried, then
:class:`SandboxError` (never a score of 0). When bubblewrap cannot run, grading raises
``SandboxError`` before any model code runs, unless ``unsafe-limits`` was asked for by name.
See ``docs/sandbox.md``.

Slots are owned by long-lived daemon threads (``--die-with-parent`` ties a sandbox to the thread
that spawned it), fed from one queue: safe from many threads; other processes lease other uids.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace

from . import slot as slots
from .isolation import (MODES, OPT_OUT, PYTHON, SandboxError, describe, probe_bwrap, remove_stale_workdirs,
                                requested_mode)

__all__ = ["Limits", "SandboxError", "configure", "configure_sandbox", "sandbox_status", "sandbox_record",
           "check", "submit", "run_tests", "run_batch", "shutdown", "MODES", "PYTHON"]

MAX_SLOTS = 64


@dataclass(frozen=True)
class Limits:
    """Per-test limits (see ``configure`` for the process-wide defaults)."""

    timeout_s: float = 6.0
    """Wall clock per test (LiveCodeBench's 6 s); the whole process tree is killed after it."""
    cpu_s: int = 7
    memory_mb: int = 2048
    """Address space of each process of the program (``RLIMIT_AS``)."""
    fsize_mb: int = 32
    nproc: int = 64
    """Processes (and threads) of the program (``RLIMIT_NPROC`` per slot; a fork bomb stops here)."""
    output_mb: int = 32
    """Stdout (or call-mode result) cap; beyond it the test is killed with ``output_limit``."""


_limits = Limits()
_configured_mode = "bwrap"
_lock = threading.Lock()
_probed: dict[str, str | None] = {}
"""mode -> None (usable) or the cause it is not; probed once per process."""
_announced: set[str] = set()
_jobs: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []


def configure(**changes: float) -> Limits:
    """Change the default ``Limits`` of this process (e.g. ``timeout_s=2``); returns the old ones."""
    global _limits
    old, _limits = _limits, replace(_limits, **changes)
    return old


def configure_sandbox(mode: str | None = None, **limits: float) -> None:
    """Set the isolation mode (``bwrap`` or ``unsafe-limits``) and default limits of this process.

    A change of mode stops the running slots. ``STAGERL_SANDBOX``, when set, still overrides the mode.
    """
    global _configured_mode
    if mode is not None:
        if mode not in MODES:
            raise SandboxError(f"rewards.sandbox: unknown sandbox mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode != _configured_mode:
            shutdown()
            _configured_mode = mode
    if limits:
        configure(**limits)


def _mode() -> str:
    """The mode in use; probes bubblewrap once and raises ``SandboxError`` when it cannot hold."""
    mode = requested_mode(_configured_mode)
    with _lock:
        if mode not in _probed:
            remove_stale_workdirs()  # left by a process killed before it could clean up
            _probed[mode] = probe_bwrap() if mode == "bwrap" else None
        why = _probed[mode]
    if why is not None:
        raise SandboxError(f"the code sandbox cannot run, so no model-written code was run: {why}. Fix that, {OPT_OUT}")
    return mode


def check() -> str:
    """The mode in use after a successful probe; ``SandboxError`` (cause and fix) otherwise."""
    return _mode()


def sandbox_status() -> str:
    """What holds here: ``'bwrap (...): ...'``, ``'unsafe-limits: NOT ISOLATED ...'``, or why the
    requested mode cannot run (``'unusable: ...'``). Probes on first call; never raises."""
    try:
        return describe(_mode(), _limits)
    except SandboxError as e:
        return f"unusable: {e}"


def sandbox_record() -> dict:
    """``{"mode": ..., "status": ...}`` for the run folder (ledger.json, stage.json, results.json)."""
    try:
        mode = requested_mode(_configured_mode)
    except SandboxError as e:
        return {"mode": "invalid", "status": f"unusable: {e}"}
    return {"mode": mode, "status": sandbox_status()}


ANNOUNCED_ENV = "STAGERL_SANDBOX_ANNOUNCED"
"""The line this process (or the command that started it) printed: a stage's spawned child inherits
it and stays quiet when its sandbox is the same, so a command states its sandbox once."""


def _announce(mode: str) -> None:
    with _lock:
        if mode in _announced:
            return
        _announced.add(mode)
    line = describe(mode, _limits)
    if mode != "bwrap":
        line = "WARNING: " + line
    if os.environ.get(ANNOUNCED_ENV) == line:
        return
    os.environ[ANNOUNCED_ENV] = line
    print(f"stagerl: code sandbox: {line}", file=sys.stderr, flush=True)


def _slot_runner() -> None:
    slot: slots.Slot | None = None
    while True:
        item = _jobs.get()
        if item is None:
            if slot is not None:
                slots.close(slot, graceful=True)
            return
        mode, args, fut = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            slot, res = slots.run_job(slot, mode, *args)
            fut.set_result(res)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            if slot is not None:
                slots.close(slot)
            slot = None
            fut.set_exception(e)


def _ensure_runners(n: int) -> None:
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        while len(_threads) < min(max(n, 1), MAX_SLOTS):
            t = threading.Thread(target=_slot_runner, name="stagerl-sandbox-slot", daemon=True)
            t.start()
            _threads.append(t)


def submit(code: str, inputs: list, fn_name: str | None = None, limits: Limits | None = None,
           workers: int | None = None) -> Future:
    """Queue one program against all its inputs; the future gives one report per input.

    Raises ``SandboxError`` at once (nothing queued, nothing run) when the sandbox cannot hold.
    """
    mode = _mode()
    _announce(mode)
    _ensure_runners(workers or os.cpu_count() or 1)
    fut: Future = Future()
    _jobs.put((mode, (code, list(inputs), fn_name, limits or _limits), fut))
    return fut


def run_tests(code: str, inputs: list, fn_name: str | None = None, limits: Limits | None = None) -> list[dict]:
    """Run ``code`` on each input (stdin text, or an argument list when ``fn_name`` is given).

    One report per input, what the program did and no verdict: ``status`` (``ok``, ``timeout``,
    ``output_limit``, ``crash``), ``exit`` (negative: killed by that signal), ``seconds``,
    ``stderr`` (first 4 KiB), and ``stdout`` (stdin mode) or ``value``/``has_value`` (call mode).
    Raises ``SandboxError`` when the sandbox cannot run.
    """
    return submit(code, inputs, fn_name, limits, workers=1).result()


def run_batch(items: list[tuple[str, list, str | None]], workers: int | None = None,
              limits: Limits | None = None) -> list[list[dict]]:
    """``run_tests`` for many ``(code, inputs, fn_name)`` at once, ``workers`` slots in parallel."""
    if not items:
        return []
    futs = [submit(code, inputs, fn, limits, workers) for code, inputs, fn in items]
    return [f.result() for f in futs]


def shutdown() -> None:
    """Stop every slot of this process (idempotent); later calls start fresh ones."""
    with _lock:
        threads = list(_threads)
        _threads.clear()
    for _ in threads:
        _jobs.put(None)
    for t in threads:
        t.join(timeout=30)
    for slot in list(slots.live):
        slots.close(slot)


def _after_fork_in_child() -> None:
    global _jobs, _lock
    _lock = threading.Lock()
    _jobs = queue.SimpleQueue()
    _threads.clear()
    slots.drop_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
