"""The child side of a sandbox test: limits, privilege drop, then the untrusted program (and the
seccomp filter the supervisor installs on itself at start, which every child inherits).

Runs in the process the supervisor (``sandbox/supervisor.py``) forks for each test; its source is
sent into the sandbox ahead of the supervisor's, as one script (system ``python3 -I``, stdlib only;
nothing here may import ``stagerl``). ``PRELUDE`` is the LiveCodeBench import header.
"""

import builtins
import ctypes
import io
import marshal
import os
import resource  # here, not in each test's child: imported once by the supervisor
import struct
import sys
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
    hard = soft if hard is None else hard
    try:
        resource.setrlimit(res, (soft, hard))
    except (ValueError, OSError):
        cur = resource.getrlimit(res)[1]
        resource.setrlimit(res, (min(soft, cur), min(hard, cur)))


_ARCH = {  # AUDIT_ARCH, clone, denied: unshare setns mount umount2 pivot_root add_key request_key keyctl
    #                                           memfd_create shmget semget msgget
    "x86_64": (0xC000003E, 56, (272, 308, 165, 166, 155, 248, 249, 250, 319, 29, 64, 68)),
    "aarch64": (0xC00000B7, 220, (97, 268, 40, 39, 41, 217, 218, 219, 279, 194, 190, 186)),
}
_NEW_MOUNT_API = (428, 429, 430, 431, 432, 442)  # open_tree move_mount fsopen fsconfig fsmount mount_setattr
_CLONE_NS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET


def seccomp_filter():
    """A seccomp program (classic BPF) denying what would let a test escape its limits: new
    namespaces (a user namespace could mount an unbounded tmpfs), mounts, setns, memory outside
    every cap (memfd files, SysV shared memory), and state that outlives the program (keyrings,
    SysV IPC objects); clone3 gets ENOSYS so libc falls back to clone, whose flags we can check.
    None on an architecture we do not know (see docs/sandbox.md)."""
    arch = _ARCH.get(os.uname().machine)
    if arch is None:
        return None
    audit, clone, denied = arch
    ins = lambda code, k, jt=0, jf=0: struct.pack("HBBI", code, jt, jf, k)  # noqa: E731
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    eperm, enosys, allow, kill = 0x00050001, 0x00050026, 0x7FFF0000, 0x80000000
    nrs = list(denied) + list(_NEW_MOUNT_API)
    prog = [ins(ld, 4), ins(jeq, audit, 1, 0), ins(ret, kill), ins(ld, 0)]
    prog += [ins(jge, 0x40000000, 0, 1), ins(ret, eperm)]  # x32 syscalls on x86-64
    for k, nr in enumerate(nrs):  # jump to the final "deny" of this block when matched
        prog.append(ins(jeq, nr, len(nrs) - k + 5, 0))
    prog += [ins(jeq, 435, 0, 1), ins(ret, enosys), ins(jeq, clone, 0, 2), ins(ld, 16), ins(jset, _CLONE_NS, 1, 0),
             ins(ret, allow), ins(ret, eperm)]
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


_LIBC = ctypes.CDLL(None, use_errno=True)


def install_seccomp(prog):
    """Install ``prog`` on this process; inherited by every process it forks (the supervisor
    installs it once at start, so each test's child and all its descendants run under it)."""
    code = b"".join(prog)
    if _LIBC.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (bubblewrap sets it too)
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    fprog = _SockFprog(len(prog), code)
    if _LIBC.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
"""A program's environment, besides ``HOME`` and ``TMPDIR`` (its work dir)."""
_PREPARED = {}
"""The ``__main__`` module every test starts from (``prepare``), built once in the supervisor."""


def prepare(streams=None, workdir=None):
    """Build, once in the supervisor, the ``__main__`` module a program runs in: builtins and the
    LiveCodeBench header already executed. Each test's child is a fresh fork, so it gets its own
    copy-on-write copy: what one program does to it (or to any module) dies with that child and
    never reaches the supervisor or the next test. Then freeze the collector's view of everything
    built so far, so a program's garbage collections do not walk (and copy) the supervisor's heap.
    ``streams``: ``_streams()`` made while fds 0, 1 and 2 were pipes (as a test's are), never read or
    written here; they are bound here, once, as ``sys.stdin``/``stdout``/``stderr`` (and the header's
    names), ``sys.argv`` and ``sys.modules["__main__"]`` are set, and each child takes its own copy of
    all of it. ``workdir``: the fixed path every test's work dir has (``HOME``, ``TMPDIR``). Also clears
    the supervisor's own environment to ``_ENV`` (only ever call it in the supervisor, which must then
    never print: a byte it buffered in ``sys.stdout`` would reach every later test's output).

    Why: each page of the supervisor's memory a child writes is copied for it (copy-on-write); the
    less the child's own set-up writes, the cheaper a test."""
    import gc

    os.environ.clear()
    os.environ.update(_ENV)
    if workdir is not None:
        os.environ["HOME"] = os.environ["TMPDIR"] = _PREPARED["workdir"] = workdir
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    exec(_PRELUDE_CODE, main.__dict__)
    _PREPARED["main"] = main
    if streams is not None:
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams
        sys.argv = ["solution.py"]
        _PREPARED["own_main"] = sys.modules.get("__main__")  # the supervisor's own module stays referenced
        sys.modules["__main__"] = main
        main.__dict__.update(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, argv=sys.argv)
        _PREPARED["streams"] = streams
    gc.collect()
    gc.freeze()


def _streams():
    """The program's stdin, stdout and stderr, on fds 0, 1 and 2."""
    return (io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False), 1 << 16), encoding="utf-8", errors="replace"),
            io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace", write_through=True))


def child(cfg, req, workdir, fds):
    """In the forked child: isolate, drop privileges, run the program; never returns."""
    status = 126
    try:
        os.setpgid(0, 0)  # its own group (killed as one); not a session: setsid costs a scheduler autogroup per test
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
        _limit(resource.RLIMIT_MSGQUEUE, 0)
        if cfg.get("nproc_extra") is not None:  # counted per slot uid (root) or per user namespace
            _limit(resource.RLIMIT_NPROC, int(lim["nproc"]) + int(cfg["nproc_extra"]))
        uid = cfg.get("uid")
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        if "main" not in _PREPARED:  # prepared: the supervisor's environment is already just _ENV
            os.environ.clear()
            os.environ.update(_ENV)
        if _PREPARED.get("workdir") != workdir:
            os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        main = _PREPARED.get("main")
        if main is None or "streams" not in _PREPARED:  # not prepared (a supervisor always prepares)
            sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = _streams()
            sys.argv = ["solution.py"]
            if main is None:  # run the header with the program
                main = types.ModuleType("__main__")
                main.__dict__["__builtins__"] = builtins
            else:  # the header's `from sys import *` bound the supervisor's: rebind to this test's
                main.__dict__.update(stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, argv=sys.argv)
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
        if "main" not in _PREPARED:
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


def _decode_result(raw):
    """(value, True) for one well-formed result message, else (None, False). Data only, no verdict."""
    if len(raw) < 4 or _HDR.unpack(raw[:4])[0] != len(raw) - 4:
        return None, False
    try:
        return plain(marshal.loads(raw[4:])), True
    except Exception:
        return None, False
