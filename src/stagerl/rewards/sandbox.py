"""Sandbox for untrusted programs: warm bubblewrap slots that fork one child per test.

Each slot is ``python3 -I -X int_max_str_digits=0`` running ``sandbox_runner.py`` inside
``bwrap --unshare-all --die-with-parent --new-session --clearenv --cap-drop ALL --as-pid-1``:
no network, read-only ``/usr``, a private size-limited tmpfs ``/tmp``, its own PID namespace
(the runner is PID 1: it reaps, cannot be killed from inside, and SIGKILLs every other process
after each test), a scrubbed environment and, when we are root, its own unprivileged uid (leased
across processes with an abstract socket), so ``RLIMIT_NPROC`` bounds a fork bomb to its slot.
Limits per test: CPU time, address space, file size, output size, and a wall clock enforced by
the runner (and, one level up, by this module, which kills the whole slot if the runner stalls).

Threat model: the submission controls everything inside its child process (it may patch
builtins, ``json``, ``sys.exit`` or write any bytes to any fd it holds). It never sees expected
outputs, which stay in this process and are compared here; what it can emit is at most "a value
for the current test", exactly as if it had returned it. The runner's result channel is a pipe
the child has closed; the runner is non-dumpable, so ``/proc/1/fd`` and ptrace are refused.
A slot that dies mid-job fails only the test in flight; the rest run on a fresh slot.

Without bubblewrap (or with ``STAGERL_SANDBOX=limits``) slots run with limits only, in a private
temp dir, under a dedicated uid when root; one loud warning says so. A slot that cannot start is
an infrastructure error: retried, then :class:`SandboxError` is raised (never a score of 0).

Slots are owned by long-lived daemon threads (``--die-with-parent`` ties a sandbox to the thread
that spawned it), fed from one queue: safe from many threads; other processes lease other uids.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PYTHON = os.environ.get("STAGERL_SANDBOX_PYTHON", "/usr/bin/python3")
"""Interpreter inside the sandbox: the system python3, stdlib only (never the venv)."""
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
UID_BASE = 1_900_000_000
"""Slot uids are ``UID_BASE + k`` (root only); no files are owned by them."""
MAX_SLOTS = 64
TMPFS_BYTES = 64 << 20
START_TIMEOUT_S = 30.0
START_TRIES = 3
GRACE_S = 5.0
"""Extra wall time per test before this module assumes the runner hung and kills the slot."""

_RUNNER = Path(__file__).with_name("sandbox_runner.py")


class SandboxError(RuntimeError):
    """The sandbox itself failed (could not start): an infrastructure error, not a score."""


@dataclass
class _Slot:
    proc: subprocess.Popen
    uid: int | None
    lease: socket.socket | None
    tmpdir: str | None
    buf: bytearray = field(default_factory=bytearray)


_state_lock = threading.Lock()
_status: str | None = None
_jobs: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_slots: list[_Slot] = []


def _is_root() -> bool:
    return os.geteuid() == 0


def _lease_uid() -> tuple[int, socket.socket] | tuple[None, None]:
    """Lease a slot uid no other slot on this host uses (abstract socket: freed when we die)."""
    if not _is_root():
        return None, None
    for k in range(4096):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(f"\0stagerl-sandbox-uid-{UID_BASE + k}")
            return UID_BASE + k, s
        except OSError:
            s.close()
    raise SandboxError("no free sandbox uid (4096 slots leased on this host)")


def _bwrap_argv(py_args: list[str]) -> list[str]:
    argv = [BWRAP, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
            "--as-pid-1", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), str(p)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
             "--setenv", "LC_ALL", "C.UTF-8", "--"]
    return argv + py_args


def _mode() -> str:
    """Probe once which isolation works here: 'bwrap' or 'limits'."""
    global _status
    with _state_lock:
        if _status is not None:
            return _status.split(":", 1)[0]
        why = ""
        if os.environ.get("STAGERL_SANDBOX", "auto") == "limits":
            why = "STAGERL_SANDBOX=limits"
        elif not os.path.exists(BWRAP):
            why = f"{BWRAP} not found"
        else:
            try:
                r = subprocess.run(_bwrap_argv([PYTHON, "-I", "-c", "print(6*7)"]), capture_output=True, timeout=30)
                if r.stdout.strip() != b"42":
                    why = f"bwrap failed (rc={r.returncode}): {r.stderr.decode(errors='replace').strip()[:300]}"
            except (OSError, subprocess.SubprocessError) as e:
                why = f"bwrap failed: {e}"
        uid = "own uid per slot" if _is_root() else "caller's uid (not root: no per-slot RLIMIT_NPROC)"
        if why:
            _status = f"limits-only: NO bubblewrap isolation ({why}); rlimits, private temp dir, {uid}"
            msg = f"stagerl code sandbox: {_status}. Untrusted code is NOT isolated from the host."
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            log.warning(msg)
        else:
            _status = f"bwrap: no network, read-only /usr, private /tmp, own PID namespace, cleared env, {uid}"
        return _status.split(":", 1)[0]


def sandbox_status() -> str:
    """Which isolation is active: ``'bwrap: ...'`` or ``'limits-only: ...'`` (probes on first call)."""
    _mode()
    assert _status is not None
    return _status


def _start_slot() -> _Slot:
    mode = _mode()
    uid, lease = _lease_uid()
    src = _RUNNER.read_text()
    tmpdir = None
    try:
        if mode == "bwrap":
            argv = _bwrap_argv([PYTHON, "-I", "-X", "int_max_str_digits=0", "-c", src, "1", "1", "/tmp"])
            cwd, env = "/", {"PATH": "/usr/bin:/bin"}
        else:
            tmpdir = tempfile.mkdtemp(prefix="stagerl-sandbox-")
            if uid is not None:
                os.chown(tmpdir, uid, uid)
            argv = [PYTHON, "-I", "-X", "int_max_str_digits=0", "-c", src, "0", "1" if uid else "0", tmpdir]
            cwd, env = tmpdir, {"PATH": "/usr/bin:/bin", "HOME": tmpdir, "TMPDIR": tmpdir, "LC_ALL": "C.UTF-8"}
        ids = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=env, start_new_session=True, close_fds=True, **ids)
    except BaseException:
        if lease:
            lease.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    slot = _Slot(proc, uid, lease, tmpdir)
    line = _read_line(slot, time.monotonic() + START_TIMEOUT_S)
    if line is None or not line.get("ready"):
        err = b""
        _close_slot(slot)
        if slot.proc.stderr:
            err = slot.proc.stderr.read() or b""
        raise SandboxError(f"sandbox slot did not start ({mode}): {err.decode(errors='replace').strip()[:500]}")
    if slot.proc.stderr:
        pass  # keep stderr open (bwrap writes there only on failure)
    with _state_lock:
        _slots.append(slot)
    return slot


def _start_slot_retrying() -> _Slot:
    err: Exception | None = None
    for attempt in range(START_TRIES):
        try:
            return _start_slot()
        except (SandboxError, OSError) as e:
            err = e
            log.warning("sandbox start failed (try %d/%d): %s", attempt + 1, START_TRIES, e)
            time.sleep(0.2 * (attempt + 1))
    raise SandboxError(f"sandbox failed to start after {START_TRIES} tries: {err}") from err


def _kill_uid(uid: int) -> None:
    """SIGKILL every host process owned by ``uid`` (limits-only mode, root)."""
    for _ in range(50):
        found = False
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat(f"/proc/{d}").st_uid == uid:
                        found = True
                        os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _close_slot(slot: _Slot, graceful: bool = False) -> None:
    """Stop a slot: EOF (graceful) or SIGKILL of its process group; always reaped, nothing left."""
    p = slot.proc
    if graceful and p.stdin:
        try:
            p.stdin.close()
            p.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
    if slot.uid is not None and slot.tmpdir is not None:
        _kill_uid(slot.uid)
    for f in (p.stdin, p.stdout):
        try:
            if f:
                f.close()
        except OSError:
            pass
    if slot.tmpdir:
        shutil.rmtree(slot.tmpdir, ignore_errors=True)
    if slot.lease:
        slot.lease.close()
    with _state_lock:
        if slot in _slots:
            _slots.remove(slot)


def _read_line(slot: _Slot, deadline: float) -> dict | None:
    """Next JSON line from the runner, or None on EOF, timeout or garbage."""
    assert slot.proc.stdout is not None
    fd = slot.proc.stdout.fileno()
    while b"\n" not in slot.buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        slot.buf += chunk
    i = slot.buf.index(b"\n")
    line = bytes(slot.buf[:i])
    del slot.buf[: i + 1]
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _run_on_slot(slot: _Slot | None, job: dict) -> tuple[_Slot | None, list[dict]]:
    """Run all of a job's inputs; a slot that dies or stalls fails the test in flight only."""
    n = len(job["inputs"])
    results: list[dict] = [{"status": "crash", "rc": None, "out": ""} for _ in range(n)]
    pending = list(range(n))
    while pending:
        if slot is None or slot.proc.poll() is not None:
            if slot is not None:
                _close_slot(slot)
            slot = _start_slot_retrying()
        jid = secrets.token_hex(8)
        sub = dict(job, id=jid, inputs=[job["inputs"][i] for i in pending])
        try:
            assert slot.proc.stdin is not None
            slot.proc.stdin.write((json.dumps(sub) + "\n").encode())
            slot.proc.stdin.flush()
        except OSError:  # died while idle: not the submission's fault, start over
            _close_slot(slot)
            slot = None
            continue
        k, done = 0, False
        while not done:
            line = _read_line(slot, time.monotonic() + float(job["timeout"]) + GRACE_S)
            if line is None or line.get("id") != jid:
                break
            if line.get("done"):
                done = k == len(pending)
                break
            if line.get("i") != k:
                break
            results[pending[k]] = {"status": str(line.get("status")), "rc": line.get("rc"), "out": str(line.get("out", ""))}
            k += 1
        if done:
            return slot, results
        _close_slot(slot)  # died, stalled or broke protocol at test pending[k]: that test fails
        slot = None
        pending = pending[k + 1 :]
    return slot, results


def _worker() -> None:
    slot: _Slot | None = None
    while True:
        item = _jobs.get()
        if item is None:
            if slot is not None:
                _close_slot(slot, graceful=True)
            return
        job, fut = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            slot, res = _run_on_slot(slot, job)
            fut.set_result(res)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            slot = None
            fut.set_exception(e)


def _ensure_workers(n: int) -> None:
    with _state_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        while len(_threads) < min(max(n, 1), MAX_SLOTS):
            t = threading.Thread(target=_worker, name="stagerl-sandbox-slot", daemon=True)
            t.start()
            _threads.append(t)


def submit(code: str, inputs: list, fn_name: str | None, timeout: float, memory_bytes: int,
           output_cap: int, workers: int | None = None) -> Future:
    """Queue one program against all its inputs; the future gives one dict per input:
    ``{"status": ok|exit|signal|timeout|output_limit|crash, "rc", "out"}`` (``out``: stdout in
    stdin mode, JSON text of the return value in call mode)."""
    _mode()
    _ensure_workers(workers or os.cpu_count() or 1)
    fut: Future = Future()
    job = {"code": code, "fn": fn_name, "inputs": inputs, "timeout": float(timeout), "mem": int(memory_bytes),
           "out_cap": int(output_cap)}
    _jobs.put((job, fut))
    return fut


def shutdown() -> None:
    """Stop every slot of this process (idempotent); later calls start fresh ones."""
    with _state_lock:
        threads = list(_threads)
        _threads.clear()
    for _ in threads:
        _jobs.put(None)
    for t in threads:
        t.join(timeout=30)
    for slot in list(_slots):
        _close_slot(slot)


def _after_fork_in_child() -> None:
    global _jobs, _state_lock
    _state_lock = threading.Lock()
    _jobs = queue.SimpleQueue()
    _threads.clear()
    for slot in _slots:  # the parent's slots: drop our copies of their pipes and leases, kill nothing
        for f in (slot.proc.stdin, slot.proc.stdout, slot.proc.stderr, slot.lease):
            try:
                if f:
                    f.close()
            except OSError:
                pass
    _slots.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
