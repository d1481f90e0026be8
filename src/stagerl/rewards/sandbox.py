"""Sandbox for untrusted programs: warm bubblewrap slots whose trusted worker forks one child per test.

A slot is ``python3 -I -X int_max_str_digits=0`` running ``sandbox_init.py`` (the worker) inside
``bwrap --unshare-{ipc,pid,net,uts,cgroup} --die-with-parent --new-session --clearenv --cap-drop ALL``
(plus only SETUID/SETGID/CHOWN/KILL/DAC_OVERRIDE for the worker): no network, read-only ``/usr``
(nosuid, ``no_new_privs``), a private size-limited tmpfs ``/tmp``, its own PID namespace (bwrap's
init is PID 1 and reaps; the worker is a child subreaper), a cleared environment. Each child drops
to the slot's own unprivileged uid (leased across processes with an abstract socket, so
``RLIMIT_NPROC`` bounds a fork bomb to its slot; no user namespace, so the uid is a real host
uid) under CPU, address-space, file-size and process limits; the worker enforces the wall clock
and output cap, then SIGKILLs everything the test left. One level up, this module kills the whole
slot if the worker stalls (``timeout_s + GRACE_S``).

Threat model: the submission controls its child completely (it may patch builtins, ``json``,
``sys.exit``, write any bytes to any fd it holds). It cannot touch the worker (another uid,
non-dumpable) and never sees expected outputs: they stay in this process and verdicts are made by
the caller. What it can emit is at most "a value for the current test", as if it had returned
it; results are exact plain types (no objects that equal everything). A slot that dies or
stalls mid-job fails only the test in flight; the rest run on a fresh slot.

Without bubblewrap (or with ``STAGERL_SANDBOX=limits``) the worker runs on the host with the same
limits, per-slot uid (when root) and private work dirs; one loud warning says so. A slot that
cannot start, or a child that cannot be set up, is an infrastructure error: retried, then
:class:`SandboxError` (never a score of 0). ``STAGERL_SANDBOX=bwrap`` refuses the fallback.

Slots are owned by long-lived daemon threads (``--die-with-parent`` ties a sandbox to the thread
that spawned it), fed from one queue: safe from many threads; other processes lease other uids.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

PYTHON = os.environ.get("STAGERL_SANDBOX_PYTHON", "/usr/bin/python3")
"""Interpreter of the worker: the system python3, stdlib only (never the venv)."""
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
_UID_BASE = 1_900_000_000
_UID_COUNT = 4096
"""Slot uids are ``_UID_BASE + k`` (k < _UID_COUNT, root only); no files are owned by them."""
MAX_SLOTS = 64
TMPFS_BYTES = 256 << 20
START_TIMEOUT_S = 30.0
START_TRIES = 3
GRACE_S = 5.0
"""Extra wall time per test before this module assumes the worker hung and kills the slot."""
_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE")
_WORKER = Path(__file__).with_name("sandbox_init.py")
_HDR = struct.Struct(">I")


class SandboxError(RuntimeError):
    """The sandbox itself failed (could not start or set up a test): infrastructure, not a score."""


@dataclass(frozen=True)
class Limits:
    """Per-test limits (see ``configure`` for the process-wide defaults)."""

    timeout_s: float = 6.0
    """Wall clock per test (LiveCodeBench's 6 s); the whole process tree is killed after it."""
    cpu_s: int = 7
    memory_mb: int = 2048
    """Address space of the program (``RLIMIT_AS``)."""
    fsize_mb: int = 32
    nproc: int = 64
    """Processes of the slot uid (``RLIMIT_NPROC``; a fork bomb stops here)."""
    output_mb: int = 32
    """Stdout (or call-mode result) cap; beyond it the test is killed with ``output_limit``."""


_limits = Limits()


def configure(**changes: float) -> Limits:
    """Change the default ``Limits`` of this process (e.g. ``timeout_s=2``); returns the old ones."""
    global _limits
    old, _limits = _limits, replace(_limits, **changes)
    return old


@dataclass
class _Slot:
    proc: subprocess.Popen
    uid: int | None
    lease: socket.socket | None
    workroot: str | None
    buf: bytearray = field(default_factory=bytearray)


_state_lock = threading.Lock()
_status: str | None = None
_jobs: queue.SimpleQueue = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_slots: list[_Slot] = []


def _is_root() -> bool:
    return os.geteuid() == 0  # per-slot uids and the worker's capabilities need root


def _lease_uid() -> tuple[int, socket.socket] | tuple[None, None]:
    """Lease a slot uid no other slot on this host uses (abstract socket: freed when we die)."""
    if not _is_root():
        return None, None
    for k in range(_UID_COUNT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(f"\0stagerl-sandbox-uid-{_UID_BASE + k}")
            return _UID_BASE + k, s
        except OSError:
            s.close()
    raise SandboxError(f"no free sandbox uid ({_UID_COUNT} slots leased on this host)")


def _bwrap_argv(py_args: list[str]) -> list[str]:
    # No user namespace: slot uids must be real host uids for RLIMIT_NPROC to bound them.
    argv = [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
    if _is_root():
        for cap in _CAPS:
            argv += ["--cap-add", cap]
    else:  # unprivileged bwrap needs a user namespace; children then share the caller's uid
        argv += ["--unshare-user"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), str(p)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp", "--chdir", "/tmp",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8", "--"]
    return argv + py_args


def _worker_argv(cfg: dict) -> list[str]:
    return [PYTHON, "-I", "-X", "int_max_str_digits=0", "-c", _WORKER.read_text(), json.dumps(cfg)]


def _mode() -> str:
    """Probe once which isolation works here: 'bwrap' or 'limits' (warns loudly for the latter)."""
    global _status
    with _state_lock:
        if _status is not None:
            return "bwrap" if _status.startswith("bwrap") else "limits"
        want = os.environ.get("STAGERL_SANDBOX", "auto")
        why = ""
        if want == "limits":
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
        if why and want == "bwrap":
            raise SandboxError(f"STAGERL_SANDBOX=bwrap but bubblewrap is unusable: {why}")
        uid = "own uid per slot" if _is_root() else "caller's uid (not root: no per-slot process limit)"
        if why:
            _status = f"limits-only: no bubblewrap ({why}); rlimits, wall clock, private work dirs, {uid}"
            warnings.warn(f"CODE SANDBOX IS LIMITS-ONLY: untrusted code is NOT isolated from the host "
                          f"(no namespaces, host filesystem and network visible). {_status}", RuntimeWarning, stacklevel=4)
        else:
            _status = f"bwrap: no network, read-only /usr, private /tmp, own PID namespace, cleared env, {uid}"
        return "bwrap" if not why else "limits"


def sandbox_status() -> str:
    """Which isolation is active: ``'bwrap: ...'`` or ``'limits-only: ...'`` (probes on first call)."""
    _mode()
    assert _status is not None
    return _status


def _start_slot() -> _Slot:
    mode = _mode()
    uid, lease = _lease_uid()
    workroot = None
    try:
        if mode == "bwrap":
            argv = _bwrap_argv(_worker_argv({"uid": uid, "pidns": True, "workroot": "/tmp"}))
            cwd, env = "/", {"PATH": "/usr/bin:/bin"}
        else:
            workroot = tempfile.mkdtemp(prefix="stagerl-sandbox-")
            os.chmod(workroot, 0o711)
            argv = _worker_argv({"uid": uid, "pidns": False, "workroot": workroot})
            cwd, env = workroot, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=env, start_new_session=True, close_fds=True)
    except BaseException:
        if lease:
            lease.close()
        if workroot:
            shutil.rmtree(workroot, ignore_errors=True)
        raise
    slot = _Slot(proc, uid, lease, workroot)
    hello = _recv(slot, time.monotonic() + START_TIMEOUT_S)
    if hello is None or not hello.get("ready"):
        _close_slot(slot)
        err = slot.proc.stderr.read() if slot.proc.stderr else b""
        raise SandboxError(f"sandbox slot did not start ({mode}): {(err or b'').decode(errors='replace').strip()[:500]}")
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
            time.sleep(0.2 * (attempt + 1))
    raise SandboxError(f"sandbox failed to start after {START_TRIES} tries: {err}") from err


def _kill_uid(uid: int) -> None:
    """SIGKILL every host process owned by ``uid`` (limits-only mode, root)."""
    for _ in range(100):
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
    """Stop a slot: EOF (graceful) or SIGKILL of its session; always reaped, nothing left."""
    p = slot.proc
    if graceful and p.stdin:
        try:
            p.stdin.close()
            p.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
    if slot.uid is not None and slot.workroot is not None:
        _kill_uid(slot.uid)
    for f in (p.stdin, p.stdout):
        try:
            if f:
                f.close()
        except OSError:
            pass
    if slot.workroot:
        shutil.rmtree(slot.workroot, ignore_errors=True)
    if slot.lease:
        slot.lease.close()
    with _state_lock:
        if slot in _slots:
            _slots.remove(slot)


def _recv(slot: _Slot, deadline: float) -> dict | None:
    """Next length-prefixed JSON message from the worker, or None on EOF, timeout or garbage."""
    assert slot.proc.stdout is not None
    fd = slot.proc.stdout.fileno()
    need = 4
    while True:
        if len(slot.buf) >= 4:
            need = 4 + _HDR.unpack(slot.buf[:4])[0]
        if len(slot.buf) >= need and need > 4:
            break
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        slot.buf += chunk
    body = bytes(slot.buf[4:need])
    del slot.buf[:need]
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _send(slot: _Slot, obj: dict) -> bool:
    data = json.dumps(obj).encode()
    try:
        assert slot.proc.stdin is not None
        slot.proc.stdin.write(_HDR.pack(len(data)) + data)
        slot.proc.stdin.flush()
        return True
    except OSError:
        return False


def _run_job(slot: _Slot | None, code: str, inputs: list, fn_name: str | None, lim: Limits) -> tuple[_Slot | None, list[dict]]:
    """All tests of one program; a slot that dies or stalls fails the test in flight only."""
    reports: list[dict] = []
    for arg in inputs:
        req = {"mode": "call" if fn_name else "stdin", "code": code, "fn_name": fn_name, "input": arg,
               "limits": asdict(lim)}
        rep: dict | None = None
        for attempt in range(2):
            if slot is None or slot.proc.poll() is not None:
                if slot is not None:
                    _close_slot(slot)
                slot = _start_slot_retrying()
            if not _send(slot, req):  # died while idle: not the program's fault, start over
                _close_slot(slot)
                slot = None
                continue
            rep = _recv(slot, time.monotonic() + lim.timeout_s + GRACE_S)
            if rep is None:  # the worker died or stalled during this test: the test fails
                _close_slot(slot)
                slot, rep = None, {"status": "crash", "exit": None, "stderr": "sandbox worker lost"}
            if rep.get("status") != "setup_error":
                break
            _close_slot(slot)  # the child could not be set up: infrastructure, retry once on a fresh slot
            slot = None
        if rep is None or rep.get("status") == "setup_error":
            raise SandboxError(f"sandbox could not set up a test: {(rep or {}).get('stderr', 'no slot')}")
        reports.append(rep)
    return slot, reports


def _worker() -> None:
    slot: _Slot | None = None
    while True:
        item = _jobs.get()
        if item is None:
            if slot is not None:
                _close_slot(slot, graceful=True)
            return
        args, fut = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            slot, res = _run_job(slot, *args)
            fut.set_result(res)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            if slot is not None:
                _close_slot(slot)
            slot = None
            fut.set_exception(e)


def _ensure_workers(n: int) -> None:
    with _state_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        while len(_threads) < min(max(n, 1), MAX_SLOTS):
            t = threading.Thread(target=_worker, name="stagerl-sandbox-slot", daemon=True)
            t.start()
            _threads.append(t)


def submit(code: str, inputs: list, fn_name: str | None = None, limits: Limits | None = None,
           workers: int | None = None) -> Future:
    """Queue one program against all its inputs; the future gives one report per input."""
    _mode()
    _ensure_workers(workers or os.cpu_count() or 1)
    fut: Future = Future()
    _jobs.put(((code, list(inputs), fn_name, limits or _limits), fut))
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
    futs = [submit(code, inputs, fn, limits, workers) for code, inputs, fn in items]
    return [f.result() for f in futs]


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
