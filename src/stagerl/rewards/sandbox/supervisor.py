"""The trusted supervisor that runs inside each sandbox slot (system ``python3 -I``, stdlib only).

Started once per slot by ``stagerl.rewards.sandbox.slot`` as
``python3 -I -X int_max_str_digits=0 -c <child.py + this file> '<config json>'`` (inside
bubblewrap, or bare in unsafe-limits mode; in bubblewrap it is the PID namespace's init). It
pre-imports the LiveCodeBench prelude and prepares the ``__main__`` a program runs in
(``prepare``), then serves its control pipe (fds 0/1, length-prefixed JSON): one request per
program with all its inputs, one report back per test as it ends. For each test it forks a fresh
child (from itself, never from an earlier test); the child drops to the slot's unprivileged uid
(root) or keeps the caller's (non-root: the slot's user namespace bounds it), applies resource
limits and runs the untrusted program; the supervisor feeds stdin, collects stdout (capped) or the
call-mode result, enforces the wall clock, then kills every process the program left
(``kill(-1)`` in the private PID namespace, as the slot uid, or every descendant), reaps them and
empties the slot's /tmp and /dev/shm, so nothing reaches the next test. A test it cannot set up or
clean up ends the program's run on this slot. Expected outputs never reach this process: it
reports what the program did.

This file must not import anything from ``stagerl`` (it runs outside the project's venv).
"""

import json
import os
import select
import signal
import sys
import time
import traceback

if "child" not in globals():  # imported in the project; in the sandbox the child's source ran first, here
    from stagerl.rewards.sandbox.child import (_HDR, _PRELUDE_CODE, _decode_result, _prctl, _streams, child,  # noqa: F401
                                               install_seccomp, prepare, seccomp_filter)

_MAX_MSG = 1 << 28
WORKDIR = "w"
"""The name of every test's work dir in the slot's work root (made before the test, wiped after)."""
PIPE_BUF = 4096
"""Bytes that fit any empty pipe (even one the kernel shrank to a page): written to a test's stdin at once."""


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


class Poll:
    """The few selector calls ``run_one`` makes, on a ``poll`` object: no epoll fd to create and no
    system call per registration, per test."""

    def __init__(self):
        self.poll, self.keys = select.poll(), {}

    def register(self, fd, key, write=False):
        self.poll.register(fd, select.POLLOUT if write else select.POLLIN)
        self.keys[fd] = key

    def unregister(self, fd):
        self.poll.unregister(fd)
        del self.keys[fd]

    def select(self, timeout_s):
        """Keys of the ready fds (hang-ups and errors included: the caller's read or write sees them)."""
        return [self.keys[fd] for fd, _ in self.poll.poll(int(timeout_s * 1000) + 1) if fd in self.keys]


def kill_all(cfg, pid):
    """SIGKILL the test's process group and every process the program may have left, then reap."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if cfg.get("pidns"):
        try:
            os.kill(-1, signal.SIGKILL)  # everything in our PID namespace but us (its init, PID 1)
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
    else:
        kill_descendants()
    while True:  # we are a child subreaper: orphans come to us
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue


def kill_descendants():
    """SIGKILL every descendant of this process until none is left (orphans come to us: subreaper)."""
    me = os.getpid()
    for _ in range(1000):
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat", "rb") as f:
                        parent[int(d)] = int(f.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        kids = {}
        for c, pp in parent.items():
            kids.setdefault(pp, []).append(c)
        mine, todo = set(), [me]
        while todo:
            for c in kids.get(todo.pop(), []):
                if c not in mine:
                    mine.add(c)
                    todo.append(c)
        if not mine:
            return
        for p in mine:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.001)


def empty_dir(path):
    """Remove everything inside ``path``, even folders the program made read-only; True when empty."""
    stack = [os.path.join(path, n) for n in os.listdir(path)] if os.path.isdir(path) else []
    opened = set()
    while stack:
        p = stack[-1]
        try:
            if p in opened:  # its contents were tried already
                os.rmdir(p)
            elif not os.path.isdir(p) or os.path.islink(p):
                os.unlink(p)
            else:
                try:
                    os.chmod(p, 0o700)  # a folder the program made read-only (root: DAC_OVERRIDE suffices)
                except OSError:
                    pass
                opened.add(p)
                kids = [os.path.join(p, n) for n in os.listdir(p)]
                if kids:
                    stack += kids
                    continue
                os.rmdir(p)
        except OSError:
            pass
        stack.pop()
    return not os.path.isdir(path) or not os.listdir(path)


def run_one(cfg, ctl_in, req, n):
    """Run one test in a fresh child; return what the program did (no verdict)."""
    lim, stdin_mode = req["limits"], req["mode"] == "stdin"
    workdir = os.path.join(cfg["workroot"], WORKDIR)  # one name for every test: the wipe after each removes it
    os.mkdir(workdir, 0o700)
    if cfg.get("uid") is not None:
        os.chown(workdir, cfg["uid"], cfg["uid"])
    reads = ("out_r", "err_r") if stdin_mode else ("err_r", "res_r")  # call mode: stdin/stdout are /dev/null
    fds = {}
    if stdin_mode:
        fds["in_r"], fds["in_w"] = os.pipe()
    for k in reads:
        fds[k], fds[k[:-1] + "w"] = os.pipe()
    fds["ready_r"], fds["ready_w"] = os.pipe2(os.O_NONBLOCK)  # the child writes one byte; we read after it ends
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(cfg, req, workdir, fds)
    for k in fds:
        if k.endswith("_w") and k != "in_w" or k == "in_r":
            os.close(fds[k])
    data = req["input"].encode() if stdin_mode else b""
    pidfd = os.pidfd_open(pid)
    sel = Poll()
    for k in reads:  # no O_NONBLOCK needed: each is read once per readiness, and read() returns what is there
        sel.register(fds[k], k)
    if len(data) <= PIPE_BUF:  # fits an empty pipe whatever its size: one write that cannot block
        if data:
            try:
                os.write(fds["in_w"], data)
            except BrokenPipeError:
                pass
        if stdin_mode:
            os.close(fds["in_w"])
        off = len(data)
    else:
        os.set_blocking(fds["in_w"], False)
        sel.register(fds["in_w"], "in_w", write=True)
        off = 0
    sel.register(pidfd, "exit")
    sel.register(ctl_in, "ctl")
    big = int(lim["output_mb"]) << 20
    bufs = {k: bytearray() for k in reads}
    caps = {"out_r": big, "err_r": 4096, "res_r": big}
    flood = {"out_r": big, "err_r": big, "res_r": big}
    seen = dict.fromkeys(reads, 0)
    open_reads, exited, status = set(reads), False, "ok"
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
        for k in sel.select(max(0.0, wait)):
            if k == "ctl":  # the harness went away (EOF) or broke protocol: die with it
                kill_all(cfg, pid)
                for path in cfg.get("wipe", []):
                    empty_dir(path)
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
    for k in (*reads, "ready_r"):
        os.close(fds[k])
    if off < len(data):
        try:
            os.close(fds["in_w"])
        except OSError:
            pass
    os.close(pidfd)
    clean = all([empty_dir(p) for p in cfg.get("wipe", [])])  # its work dir, all it wrote to /tmp, /dev/shm
    if not ready and status == "ok":
        return {"status": "setup_error", "stderr": bufs["err_r"].decode("utf-8", "replace")}
    out = {"status": status, "exit": exit_code, "seconds": round(wall, 4), "stderr": bufs["err_r"][:4096].decode("utf-8", "replace")}
    if not clean:
        out["retire"] = True  # something could not be removed: the harness replaces this slot
    if req["mode"] == "stdin":
        out["stdout"] = bufs["out_r"].decode("utf-8", "replace")
    elif status == "ok" and exit_code == 0:
        out["value"], out["has_value"] = _decode_result(bytes(bufs["res_r"]))
    return out


def main():
    """Serve requests on fds 0/1 until EOF."""
    cfg = json.loads(sys.argv[1])
    ctl_in, ctl_out = os.dup(0), os.dup(1)
    streams = _streams()  # a test's stdin/stdout/stderr objects, made while fds 0-2 are pipes as a test's are
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    _prctl(4, 0)  # PR_SET_DUMPABLE=0: no same-uid ptrace or /proc/<pid>/mem of this supervisor
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of a test are reparented to us and reaped
    prog = seccomp_filter()
    if prog is not None:  # once, here: every test's child inherits it (none of this process's needs are denied)
        install_seccomp(prog)
    prepare(streams, os.path.join(cfg["workroot"], WORKDIR))  # the __main__ every test's child starts from (header run once, here)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    send(ctl_out, {"ready": True, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
    n = 0
    while True:
        job = recv(ctl_in)  # one program and all its inputs; one report goes back per test, as it ends
        if job is None:
            return
        inputs = job.pop("inputs")
        for arg in inputs:
            n += 1
            try:
                res = run_one(cfg, ctl_in, dict(job, input=arg), n)  # a fresh fork per test, cleaned up after
            except Exception:
                res = {"status": "setup_error", "stderr": traceback.format_exc()[-4000:]}
            send(ctl_out, res)
            if res.get("status") == "setup_error" or res.get("retire"):
                break  # not set up, or not clean: run nothing more here (the harness replaces this slot)


if __name__ == "__main__":
    main()
