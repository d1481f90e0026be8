"""One sandbox slot: a warm supervisor process (``sandbox/supervisor.py``) and its control pipe.

A slot is started (inside bubblewrap, or bare in ``unsafe-limits`` mode), fed one program with all
its tests at a time as length-prefixed JSON (one report comes back per test), and closed: always
reaped, its uid's processes killed (unsafe-limits as root), its host work dir removed. A slot that
dies or stalls mid-job fails only the test in flight; the rest of the program's tests run on a
fresh slot. Root callers lease each slot its own host uid
(an abstract socket, freed when the process dies) so RLIMIT_NPROC bounds a fork bomb to its slot.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field

from .isolation import SandboxError, bwrap_argv, is_root, make_workroot, supervisor_argv

UID_BASE = 1_900_000_000
UID_COUNT = 4096
"""Slot uids are ``UID_BASE + k`` (k < UID_COUNT, root only); no files are owned by them."""
START_TIMEOUT_S = 30.0
START_TRIES = 3
GRACE_S = 5.0
"""Extra wall time per test before the slot is assumed hung and killed."""
_HDR = struct.Struct(">I")
BATCH_BYTES = 1 << 20
"""Inputs sent to a slot in one request, at most (at least one input): the supervisor holds them
while it forks each test, so a larger batch would make every fork dearer and every test's
address-space limit tighter."""


@dataclass
class Slot:
    proc: subprocess.Popen
    uid: int | None
    lease: socket.socket | None
    workroot: str | None
    buf: bytearray = field(default_factory=bytearray)


lock = threading.Lock()
live: list[Slot] = []
"""Every open slot of this process (for ``shutdown`` and the after-fork clean-up)."""


def _lease_uid() -> tuple[int, socket.socket] | tuple[None, None]:
    """Lease a slot uid no other slot on this host uses (abstract socket: freed when we die)."""
    if not is_root():
        return None, None
    for k in range(UID_COUNT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(f"\0stagerl-sandbox-uid-{UID_BASE + k}")
            return UID_BASE + k, s
        except OSError:
            s.close()
    raise SandboxError(f"no free sandbox uid ({UID_COUNT} slots leased on this host)")


def start(mode: str, timeout_s: float | None = None) -> Slot:
    """Start one slot in ``mode`` (already probed) and wait up to ``timeout_s`` (default
    ``START_TIMEOUT_S``) for its supervisor's hello."""
    timeout_s = START_TIMEOUT_S if timeout_s is None else timeout_s
    uid, lease = _lease_uid()
    workroot = None
    try:
        if mode == "bwrap":
            # the user namespace of a non-root slot maps one uid: the supervisor and its tests share
            # it, and RLIMIT_NPROC also counts the supervisor (the namespace's init, PID 1)
            cfg = {"uid": uid, "pidns": True, "workroot": "/tmp", "wipe": ["/tmp", "/dev/shm"],
                   "nproc_extra": 0 if uid is not None else 1}
            argv, cwd, env = bwrap_argv(supervisor_argv(cfg)), "/", {"PATH": "/usr/bin:/bin"}
        else:
            workroot = make_workroot()
            cfg = {"uid": uid, "pidns": False, "workroot": workroot, "wipe": [workroot],
                   "nproc_extra": None if uid is None else 0}
            argv, cwd, env = supervisor_argv(cfg), workroot, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=env, start_new_session=True, close_fds=True)
    except BaseException:
        if lease:
            lease.close()
        if workroot:
            shutil.rmtree(workroot, ignore_errors=True)
        raise
    slot = Slot(proc, uid, lease, workroot)
    hello = recv(slot, time.monotonic() + timeout_s)
    if hello is None or not hello.get("ready"):
        err = _stderr_so_far(slot)  # before close(), which closes the pipes
        close(slot)
        why = "no ready message" if hello is None else "an unexpected first message"
        raise SandboxError(f"sandbox slot did not start ({mode}; {why} within {timeout_s:g} s): "
                           f"{err.decode(errors='replace').strip()[:500]}")
    with lock:
        live.append(slot)
    return slot


def _stderr_so_far(slot: Slot, limit: int = 1 << 16, quiet_s: float = 0.2) -> bytes:
    """What the slot wrote to stderr so far, without blocking on a slot that is still running."""
    if slot.proc.stderr is None:
        return b""
    fd, out = slot.proc.stderr.fileno(), b""
    while len(out) < limit and select.select([fd], [], [], quiet_s)[0]:
        chunk = os.read(fd, limit - len(out))
        if not chunk:
            break
        out += chunk
    return out


def start_retrying(mode: str) -> Slot:
    err: Exception | None = None
    for attempt in range(START_TRIES):  # a loaded machine can be slow to start one: wait longer each try
        try:
            return start(mode, START_TIMEOUT_S * (attempt + 1))
        except (SandboxError, OSError) as e:
            err = e
            time.sleep(0.2 * (attempt + 1))
    raise SandboxError(f"sandbox failed to start after {START_TRIES} tries: {err}") from err


def _kill_uid(uid: int) -> None:
    """SIGKILL every host process owned by ``uid`` (unsafe-limits mode, root)."""
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


def close(slot: Slot, graceful: bool = False) -> None:
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
    for f in (p.stdin, p.stdout, p.stderr):
        try:
            if f:
                f.close()
        except OSError:
            pass
    if slot.workroot:
        shutil.rmtree(slot.workroot, ignore_errors=True)
    if slot.lease:
        slot.lease.close()
    with lock:
        if slot in live:
            live.remove(slot)


def recv(slot: Slot, deadline: float) -> dict | None:
    """Next length-prefixed JSON message from the supervisor, or None on EOF, timeout or garbage."""
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


def send(slot: Slot, obj: dict) -> bool:
    data = json.dumps(obj).encode()
    try:
        assert slot.proc.stdin is not None
        slot.proc.stdin.write(_HDR.pack(len(data)) + data)
        slot.proc.stdin.flush()
        return True
    except OSError:
        return False


def run_job(slot: Slot | None, mode: str, code: str, inputs: list, fn_name: str | None,
            lim: object) -> tuple[Slot | None, list[dict]]:
    """All tests of one program, sent to the slot as one request (or a few, of ``BATCH_BYTES`` of
    inputs each); the supervisor still forks a fresh child per test and cleans up after each, and
    answers one report per test. A slot that dies or
    stalls fails the test in flight only; the remaining tests run on a fresh slot."""
    job = {"mode": "call" if fn_name else "stdin", "code": code, "fn_name": fn_name,
           "limits": asdict(lim)}  # type: ignore[call-overload]
    reports: list[dict] = []
    tries, why = 0, "no slot"
    while len(reports) < len(inputs):
        if tries >= 2:  # the test could not be set up twice: infrastructure, not the program's fault
            raise SandboxError(f"sandbox could not set up a test: {why}")
        tries += 1
        if slot is None or slot.proc.poll() is not None:
            if slot is not None:
                close(slot)
            slot = start_retrying(mode)
        end = _batch_end(inputs, len(reports))
        if not send(slot, dict(job, inputs=inputs[len(reports):end])):  # died while idle: start over
            close(slot)
            slot = None
            continue
        while len(reports) < end:
            rep = recv(slot, time.monotonic() + lim.timeout_s + GRACE_S)  # type: ignore[attr-defined]
            if rep is None:  # the supervisor died or stalled during this test: the test fails
                close(slot)
                slot, rep = None, {"status": "crash", "exit": None, "stderr": "sandbox supervisor lost"}
            elif rep.get("status") == "setup_error":  # infrastructure: retry once on a fresh slot
                close(slot)
                slot, why = None, rep.get("stderr", "")
                break
            tries = 0
            if rep.pop("retire", False) and slot is not None:  # it could not clean up after the test: replace it
                close(slot)
                slot = None
            reports.append(rep)
            if slot is None:
                break
    return slot, reports


def _batch_end(inputs: list, start: int) -> int:
    """End of the batch of ``inputs`` that starts at ``start``: about ``BATCH_BYTES``, at least one."""
    end, size = start, 0
    while end < len(inputs) and (end == start or size < BATCH_BYTES):
        x = inputs[end]
        size += len(x) if isinstance(x, str) else len(json.dumps(x))
        end += 1
    return end


def drop_after_fork() -> None:
    """In a forked child: forget the parent's slots (close our copies of their pipes), kill nothing."""
    global lock
    lock = threading.Lock()
    for slot in live:
        for f in (slot.proc.stdin, slot.proc.stdout, slot.proc.stderr, slot.lease):
            try:
                if f:
                    f.close()
            except OSError:
                pass
    live.clear()
