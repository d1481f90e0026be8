"""A small, self-healing process pool for Math-Verify: each item is time-bounded, a hung or crashed
worker costs only its own item.

Why not ``concurrent.futures``: one dead worker breaks a ``ProcessPoolExecutor`` and fails every
pending item, and it cannot kill a task stuck in C code (a huge integer power ignores signals).
Here every worker runs one item at a time under its own ``setitimer`` alarm (signals work: the
task runs in the worker's main thread, whatever thread the caller is on), and the parent kills
and replaces a worker that overruns its hard deadline or dies. Workers are started from a
forkserver that preloads Math-Verify (cheap respawns), die with their parent (``PR_SET_PDEATHSIG``
plus EOF on their pipe), and are shut down at exit.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.connection import Connection, wait
from typing import Any

from .extract import REL_TOL

SOFT_TIMEOUT_S = 2.0
"""Per-item alarm inside the worker (parse + verify); the item scores 0 when it fires."""
HARD_GRACE_S = 2.0
"""Extra seconds after the soft timeout before the parent kills the worker."""
MEMORY_LIMIT_BYTES = 4 << 30
"""Address-space limit of a worker (a memory bomb raises MemoryError instead of eating the host)."""


_WARMUP = (
    ("1", "1"), ("\\frac{\\sqrt{3}}{2}", "\\sin 60^\\circ"), ("2\\pi", "\\pi + \\pi"), ("x^2+1", "1+x^2"),
    ("(1, 2]", "(1,2]"), ("\\{1, 2\\}", "1, 2"), ("3 + 4i", "4i+3"), ("y = 2x", "2x"), ("x \\in [0,1]", "[0,1]"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"), ("\\text{Evelyn}", "Evelyn"),
    ("0.5", "\\frac{1}{2}"), ("\\log_2 8", "3"), ("10\\%", "0.1"), ("p - q", "\\sqrt{51}"),
    ("(0.5, 1)", "\\left(\\frac12, 1\\right)"), ("0.707107", "\\frac{\\sqrt{2}}{2}"),  # relative_float_rule's path
)


class _ItemTimeout(BaseException):
    """Raised by the worker's alarm; a BaseException so Math-Verify's ``except Exception`` lets it through."""


def _alarm(signum: int, frame: Any) -> None:
    raise _ItemTimeout()


@lru_cache(maxsize=8192)
def _parse_gold(gold: str) -> list:
    from math_verify import parse

    return parse("$" + gold + "$", parsing_timeout=None)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def _latex_config() -> list:
    from math_verify.parser import LatexExtractionConfig

    return [LatexExtractionConfig()]


def relative_float_rule(rel_tol: float = float(REL_TOL)) -> None:
    """Make Math-Verify compare a decimal with a number by relative error (``extract.REL_TOL``)
    instead of rounding both to 6 places: ``0.707107`` is not ``\\frac{\\sqrt2}{2}`` (a rounding),
    ``0.70710678118`` is. Patches ``math_verify.grader.sympy_numeric_eq`` in this process only (the
    pool's workers call it at start); ``tests/rewards/test_math_rules.py`` checks the effect, so a
    Math-Verify release that moves the function fails CI instead of silently changing the rule."""
    from math_verify import grader
    from sympy import Float, N, Number

    original = getattr(grader.sympy_numeric_eq, "__wrapped__", grader.sympy_numeric_eq)

    def numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
        atomic = grader.is_atomic_or_pct_atomic
        if (atomic(a, Number) or atomic(b, Number)) and (atomic(a, Float) or atomic(b, Float)):
            try:
                x, y = N(grader.safe_sympy_doit(a), 30), N(grader.safe_sympy_doit(b), 30)
                return bool(abs(x - y) <= rel_tol * max(abs(x), abs(y)))
            except Exception:
                pass
        return original(a, b, float_rounding, numeric_precision)

    numeric_eq.__wrapped__ = original  # type: ignore[attr-defined]
    grader.sympy_numeric_eq = numeric_eq


def grade_with_math_verify(box: str, gold: str, soft_timeout: float = SOFT_TIMEOUT_S) -> float:
    """Math-Verify verdict for a boxed answer (content of the box) against a LaTeX gold.

    Must run in a main thread (it uses ``SIGALRM``); the pool's workers do. Any error or timeout
    scores 0.
    """
    from math_verify import parse, verify

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, soft_timeout)
    try:
        g = _parse_gold(gold)
        r = parse("\\boxed{" + box + "}", extraction_config=_latex_config(), parsing_timeout=None)  # type: ignore[arg-type]
        return 1.0 if g and r and verify(g, r, timeout_seconds=None) else 0.0
    except (_ItemTimeout, Exception, RecursionError, MemoryError):
        return 0.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _worker_main(fd: int, soft_timeout: float) -> None:
    """Worker loop: receive ``(index, box, gold)``, send back ``(index, score)``; stop on EOF/None."""
    _die_with_parent()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except Exception:
        pass
    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    conn = Connection(fd)
    relative_float_rule()
    for box, gold in _WARMUP:  # first calls pay sympy's lazy imports: pay them before "ready"
        grade_with_math_verify(box, gold, max(soft_timeout, 10.0))
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        i, box, gold, *limit = msg  # the caller's time bound, if it sent one
        conn.send((i, grade_with_math_verify(box, gold, limit[0] if limit else soft_timeout)))


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen
    conn: Connection
    ready: bool = False
    item: int | None = None
    deadline: float = 0.0


_LOCK = threading.Lock()
_WORKERS: list[_Worker] = []
_OWNER_PID = os.getpid()
_SPAWN_Q: queue.Queue = queue.Queue()
_SPAWNER: threading.Thread | None = None
STARTUP_TIMEOUT_S = 120.0


def _spawner_loop() -> None:
    while True:
        fn, box = _SPAWN_Q.get()
        try:
            box.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            box.append(e)


def _on_spawner_thread(fn: Any) -> Any:
    """Run ``fn`` on one long-lived thread: PR_SET_PDEATHSIG fires when the *creating thread* exits,
    so workers must not be created by a short-lived caller thread."""
    global _SPAWNER
    if _SPAWNER is None or not _SPAWNER.is_alive():
        _SPAWNER = threading.Thread(target=_spawner_loop, daemon=True, name="stagerl-math-spawner")
        _SPAWNER.start()
    box: list = []
    _SPAWN_Q.put((fn, box))
    while not box:
        time.sleep(0.001)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _start_worker(soft_timeout: float) -> _Worker:
    ours, theirs = socket.socketpair()
    code = f"from stagerl.rewards.math.pool import _worker_main; _worker_main({theirs.fileno()}, {soft_timeout!r})"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")

    def spawn() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True,
        )

    try:
        proc = _on_spawner_thread(spawn)
    finally:
        theirs.close()
    return _Worker(proc, Connection(ours.detach()))


def _stop_worker(w: _Worker, kill: bool = False) -> None:
    try:
        if not kill:
            try:
                w.conn.send(None)
                w.proc.wait(timeout=2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass
    finally:
        w.conn.close()


def shutdown() -> None:
    """Stop every worker (called at interpreter exit; safe to call any time)."""
    with _LOCK:
        if os.getpid() == _OWNER_PID:
            for w in _WORKERS:
                _stop_worker(w)
        _WORKERS.clear()


atexit.register(shutdown)


def pool_pids() -> list[int]:
    """Process ids of the live workers (for tests and monitoring)."""
    return [w.proc.pid for w in _WORKERS if w.proc.poll() is None]


def run_math_verify(
    items: list[tuple[str, str]],
    workers: int,
    soft_timeout: float = SOFT_TIMEOUT_S,
    hard_grace: float = HARD_GRACE_S,
) -> list[float]:
    """Grade ``(box, gold)`` pairs on the shared pool (grown to ``workers`` processes).

    Each item gets ``soft_timeout`` seconds inside its worker, and the worker is killed and
    replaced after ``soft_timeout + hard_grace``; such items, and items whose worker crashed,
    score 0. Thread-safe: concurrent callers take turns.
    """
    global _OWNER_PID
    if not items:
        return []
    with _LOCK:
        if os.getpid() != _OWNER_PID:  # forked child: the workers belong to the parent
            _WORKERS.clear()
            _OWNER_PID = os.getpid()
        while len(_WORKERS) < max(1, workers):
            _WORKERS.append(_start_worker(soft_timeout))
        return _dispatch(items, soft_timeout, hard_grace)


def start_pool(workers: int, soft_timeout: float = SOFT_TIMEOUT_S) -> float:
    """Grow the shared pool to ``workers`` processes and wait until all are ready; returns seconds."""
    t0 = time.monotonic()
    run_math_verify([("1", "1")] * max(1, workers), workers, soft_timeout)
    with _LOCK:
        for w in _WORKERS:
            if not w.ready:
                msg = w.conn.recv() if w.conn.poll(STARTUP_TIMEOUT_S) else None
                w.ready = msg == "ready"
    return time.monotonic() - t0


def _dispatch(items: list[tuple[str, str]], soft_timeout: float, hard_grace: float) -> list[float]:
    results = [0.0] * len(items)
    todo = list(range(len(items) - 1, -1, -1))  # a stack, popped from the end: item 0 first
    failed_starts = 0
    crashes: dict[int, int] = {}

    def replace(w: _Worker) -> None:
        _stop_worker(w, kill=True)
        _WORKERS[_WORKERS.index(w)] = nw = _start_worker(soft_timeout)
        nw.deadline = time.monotonic() + STARTUP_TIMEOUT_S

    for w in _WORKERS:
        if not w.ready and w.deadline == 0.0:
            w.deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while todo or any(w.item is not None for w in _WORKERS):
        for w in _WORKERS:
            if w.ready and w.item is None and todo:
                i = todo.pop()
                try:
                    w.conn.send((i, *items[i], soft_timeout))
                except OSError:  # died while idle: retry the item on its replacement
                    todo.append(i)
                    replace(w)
                    continue
                w.item, w.deadline = i, time.monotonic() + soft_timeout + hard_grace
        waiting = [w for w in _WORKERS if w.item is not None or not w.ready]
        if not waiting:
            continue
        timeout = max(0.0, min(w.deadline for w in waiting) - time.monotonic())
        by_conn = {w.conn: w for w in waiting}
        for conn in wait(list(by_conn), timeout=timeout):
            w = by_conn[conn]  # type: ignore[index]
            try:
                msg = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):  # crashed: its item (if any) scores 0
                if not w.ready:
                    failed_starts += 1
                    if failed_starts > 3:
                        raise RuntimeError("math reward workers fail to start (is math-verify installed?)")
                elif w.item is not None:
                    crashes[w.item] = crashes.get(w.item, 0) + 1
                    if crashes[w.item] < 2:  # maybe it died before taking the item: retry once
                        todo.append(w.item)
                    w.item = None
                replace(w)
                continue
            if msg == "ready":
                w.ready = True
            else:
                i, score = msg
                results[i] = float(score)
                w.item = None
        now = time.monotonic()
        for w in [w for w in waiting if w.deadline <= now and (w.item is not None or not w.ready)]:
            w.item = None  # hung in C code past its alarm: kill it, the item stays 0
            replace(w)
    return results
