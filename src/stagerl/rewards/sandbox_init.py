"""The trusted warm worker that runs inside the sandbox (system ``python3 -I``, standard library only).

Started once per slot by ``stagerl.rewards.sandbox`` as
``python3 -I -X int_max_str_digits=0 sandbox_init.py '<config json>'`` (inside bubblewrap, or bare
in limits-only mode). It pre-imports the LiveCodeBench prelude, then serves one request per test on
its control pipe (fds 0/1, length-prefixed JSON): it forks a child per test, the child drops to
the slot's unprivileged uid, applies resource limits and runs the untrusted program; the worker
feeds stdin, collects stdout (capped) or the call-mode result, enforces the wall clock, then kills
every process the program left (``kill(-1)`` in the private PID namespace, or as the slot uid) and
reaps them. Expected outputs never reach this process: it only reports what the program did.

This file must not import anything from ``stagerl`` (it runs outside the project's venv).
"""

import builtins
import ctypes
import io
import json
import marshal
import os
import selectors
import signal
import struct
import sys
import time
import traceback
import types

PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\n"
    "import string, re, datetime, collections, heapq, bisect, copy, math, random, statistics, "
    "itertools, functools, operator, io, sys, json\nsys.setrecursionlimit(50000)\n"
)
"""The LiveCodeBench import header, run before every program (so ``List`` etc. resolve)."""

_PRELUDE_CODE = compile(PRELUDE, "<prelude>", "exec")
_HDR = struct.Struct(">I")
_MAX_MSG = 1 << 28


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv(fd):
    """One length-prefixed JSON message from ``fd``; None at EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = _HDR.unpack(head)
    if n > _MAX_MSG:
        raise ValueError("control message too large")
    body = _read_exact(fd, n)
    return None if body is None else json.loads(body)


def send(fd, obj):
    """Write one length-prefixed JSON message to ``fd``."""
    data = json.dumps(obj).encode()
    data = _HDR.pack(len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def plain(v, depth=0):
    """``v`` as exact built-in types (bool/int/float/str/None/list/dict); TypeError otherwise.

    Exact type checks: a subclass (e.g. one whose ``__eq__`` is always True) is refused.
    """
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if depth > 200:
        raise TypeError("result nested too deeply")
    if t is list or t is tuple:
        return [plain(x, depth + 1) for x in v]
    if t is dict:
        return {plain(k, depth + 1): plain(x, depth + 1) for k, x in v.items()}
    raise TypeError(f"result of type {t.__name__} is not a plain value")


def _prctl(option, arg):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except Exception:
        pass


def _limit(res, soft, hard=None):
    import resource

    hard = soft if hard is None else hard
    try:
        resource.setrlimit(res, (soft, hard))
    except (ValueError, OSError):
        cur = resource.getrlimit(res)[1]
        resource.setrlimit(res, (min(soft, cur), min(hard, cur)))


def child(cfg, req, workdir, fds):
    """In the forked child: isolate, drop privileges, run the program; never returns."""
    status = 126
    try:
        import resource

        os.setsid()
        mode, lim = req["mode"], req["limits"]
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(fds["in_r"] if mode == "stdin" else devnull, 0)
        os.dup2(fds["out_w"] if mode == "stdin" else devnull, 1)
        os.dup2(fds["err_w"], 2)
        os.dup2(fds["ready_w"], 3)
        if mode == "call":
            os.dup2(fds["res_w"], 4)
        os.closerange(5 if mode == "call" else 4, 1 << 16)
        os.chdir(workdir)
        cpu = int(lim["cpu_s"])
        _limit(resource.RLIMIT_CPU, cpu, cpu + 1)
        _limit(resource.RLIMIT_AS, int(lim["memory_mb"]) << 20)
        _limit(resource.RLIMIT_FSIZE, int(lim["fsize_mb"]) << 20)
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_NOFILE, 256)
        uid = cfg.get("uid")
        if uid is not None:
            _limit(resource.RLIMIT_NPROC, int(lim["nproc"]))
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"})
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False), 1 << 16), encoding="utf-8", errors="replace")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace", write_through=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        sys.argv = ["solution.py"]
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        args = req.get("input") if mode == "call" else None
        fn_name = req.get("fn_name")
        # Captured before untrusted code runs: it can patch modules, not these local references.
        _write, _pack, _dumps, _plain, _exit = os.write, _HDR.pack, marshal.dumps, plain, os._exit
        os.write(3, b"R")
        os.close(3)
    except BaseException:
        traceback.print_exc()
        os._exit(126)  # no "R" was sent: the harness sees a set-up failure, not a program failure
    status = 0
    try:
        exec(_PRELUDE_CODE, main.__dict__)
        exec(compile(req["code"], "<solution>", "exec"), main.__dict__)
        if mode == "call":
            g = main.__dict__
            sol = g.get("Solution")
            if isinstance(sol, type) and hasattr(sol, fn_name):
                fn = getattr(sol(), fn_name)
            elif callable(g.get(fn_name)):
                fn = g[fn_name]
            else:
                raise NameError(f"no function {fn_name!r} (top level or in class Solution)")
            payload = _dumps(_plain(fn(*args)))
            data = _pack(len(payload)) + payload
            while data:
                data = data[_write(4, data):]
    except SystemExit as e:
        code = e.code
        status = 0 if code is None else code if isinstance(code, int) else 1
        if not isinstance(code, (int, type(None))):
            try:
                print(code, file=sys.stderr)
            except BaseException:
                pass
    except BaseException:
        status = 1
        try:
            traceback.print_exc()
        except BaseException:
            pass
    try:
        sys.stdout.flush()
    except BaseException:
        status = status or 1
    _exit(status & 0xFF)


def kill_all(cfg, pid):
    """SIGKILL the test's process group and every process the program may have left, then reap."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if cfg.get("pidns"):
        try:
            os.kill(-1, signal.SIGKILL)  # everything in our PID namespace but PID 1 and us
        except OSError:
            pass
    elif cfg.get("uid") is not None:
        helper = os.fork()
        if helper == 0:
            try:
                os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
                os.kill(-1, signal.SIGKILL)  # every process of the slot uid but this helper
            finally:
                os._exit(0)
    while True:  # we are a child subreaper: orphans come to us
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue


def _rmtree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def run_one(cfg, ctl_in, req, n):
    """Run one test in a fresh child; return what the program did (no verdict)."""
    lim = req["limits"]
    workdir = os.path.join(cfg["workroot"], f"t{n}")
    os.mkdir(workdir, 0o700)
    if cfg.get("uid") is not None:
        os.chown(workdir, cfg["uid"], cfg["uid"])
    fds = {}
    fds["in_r"], fds["in_w"] = os.pipe()
    fds["out_r"], fds["out_w"] = os.pipe()
    fds["err_r"], fds["err_w"] = os.pipe()
    fds["ready_r"], fds["ready_w"] = os.pipe()
    fds["res_r"], fds["res_w"] = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(cfg, req, workdir, fds)
    for k in ("in_r", "out_w", "err_w", "ready_w", "res_w"):
        os.close(fds[k])
    data = req["input"].encode() if req["mode"] == "stdin" else b""
    if not data:
        os.close(fds["in_w"])
    pidfd = os.pidfd_open(pid)
    sel = selectors.DefaultSelector()
    os.set_blocking(fds["ready_r"], False)
    for k in ("out_r", "err_r", "res_r"):
        os.set_blocking(fds[k], False)
        sel.register(fds[k], selectors.EVENT_READ, k)
    if data:
        os.set_blocking(fds["in_w"], False)
        sel.register(fds["in_w"], selectors.EVENT_WRITE, "in_w")
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    sel.register(ctl_in, selectors.EVENT_READ, "ctl")
    bufs = {"out_r": bytearray(), "err_r": bytearray(), "res_r": bytearray()}
    caps = {"out_r": int(lim["output_mb"]) << 20, "err_r": 4096, "res_r": int(lim["output_mb"]) << 20}
    flood = {"out_r": caps["out_r"], "err_r": caps["out_r"], "res_r": caps["res_r"]}
    seen = {"out_r": 0, "err_r": 0, "res_r": 0}
    open_reads, off, exited, status = {"out_r", "err_r", "res_r"}, 0, False, "ok"
    deadline = t0 + float(lim["timeout_s"])
    grace = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            status = "timeout"
            break
        if exited and (not open_reads or (grace is not None and now >= grace)):
            break
        wait = min(deadline, grace) - now if grace is not None else deadline - now
        for key, _ in sel.select(max(0.0, wait)):
            k = key.data
            if k == "ctl":  # the harness went away (EOF) or broke protocol: die with it
                os.killpg(pid, signal.SIGKILL)
                os._exit(0)
            elif k == "exit":
                exited = True
                sel.unregister(pidfd)
                grace = time.monotonic() + 0.2  # descendants may still hold the pipes
            elif k == "in_w":
                try:
                    off += os.write(fds["in_w"], data[off : off + (1 << 16)])
                except (BrokenPipeError, BlockingIOError) as e:
                    if isinstance(e, BlockingIOError):
                        continue
                    off = len(data)
                if off >= len(data):
                    sel.unregister(fds["in_w"])
                    os.close(fds["in_w"])
            else:
                chunk = os.read(fds[k], 1 << 16)
                if not chunk:
                    sel.unregister(fds[k])
                    open_reads.discard(k)
                    continue
                seen[k] += len(chunk)
                if len(bufs[k]) < caps[k]:
                    bufs[k] += chunk  # stderr keeps only its first bytes, for error messages
                if seen[k] > flood[k]:  # stdout or stderr past the output cap: an output flood
                    status = "output_limit"
                    deadline = 0.0
        if status == "output_limit":
            break
    wall = time.monotonic() - t0
    exit_code = None
    if exited:
        exit_code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])  # < 0: killed by that signal
    kill_all(cfg, pid)  # also reaps the test's child when it is still running
    try:
        ready = os.read(fds["ready_r"], 1) == b"R"
    except OSError:
        ready = False
    sel.close()
    for k in ("out_r", "err_r", "res_r", "ready_r"):
        os.close(fds[k])
    if data and off < len(data):
        try:
            os.close(fds["in_w"])
        except OSError:
            pass
    os.close(pidfd)
    _rmtree(workdir)
    if not ready and status == "ok":
        return {"status": "setup_error", "stderr": bufs["err_r"].decode("utf-8", "replace")}
    out = {"status": status, "exit": exit_code, "seconds": round(wall, 4), "stderr": bufs["err_r"][:4096].decode("utf-8", "replace")}
    if req["mode"] == "stdin":
        out["stdout"] = bufs["out_r"].decode("utf-8", "replace")
    elif status == "ok" and exit_code == 0:
        out["value"], out["has_value"] = _decode_result(bytes(bufs["res_r"]))
    return out


def _decode_result(raw):
    """(value, True) for one well-formed result message, else (None, False). Data only, no verdict."""
    if len(raw) < 4 or _HDR.unpack(raw[:4])[0] != len(raw) - 4:
        return None, False
    try:
        return plain(marshal.loads(raw[4:])), True
    except Exception:
        return None, False


def main():
    """Serve requests on fds 0/1 until EOF."""
    cfg = json.loads(sys.argv[1])
    ctl_in, ctl_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    _prctl(4, 0)  # PR_SET_DUMPABLE=0: no same-uid ptrace or /proc/<pid>/mem of this worker
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of a test are reparented to us and reaped
    exec(_PRELUDE_CODE, {})
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    send(ctl_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
    n = 0
    while True:
        req = recv(ctl_in)
        if req is None:
            return
        n += 1
        try:
            res = run_one(cfg, ctl_in, req, n)
        except Exception:
            res = {"status": "setup_error", "stderr": traceback.format_exc()[-4000:]}
        send(ctl_out, res)


if __name__ == "__main__":
    main()
