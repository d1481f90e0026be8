"""Which isolation the code sandbox uses, whether it holds here, and how a slot is launched.

Two modes, chosen by the recipe (``rewards.sandbox``) or the ``STAGERL_SANDBOX`` override:

- ``bwrap`` (default): bubblewrap. It is probed once per process (a real sandbox that must run
  Python and, for a non-root caller, show that the process cap holds). When the probe fails,
  :class:`SandboxError` names the cause and the fix; model code never runs. Nothing degrades.
- ``unsafe-limits``: no isolation at all, only rlimits, a wall clock and a private work dir on the
  host. Taken only when asked for by name; announced on stderr and recorded in the run folder.

The guarantees of each mode are spelled out by :func:`describe` (``sandbox_status()``) and in
``docs/sandbox.md``. Standard library only (no ``stagerl`` imports beyond this package).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .child import seccomp_filter

MODES = ("bwrap", "unsafe-limits")
PYTHON = os.environ.get("STAGERL_SANDBOX_PYTHON", "/usr/bin/python3")
"""Interpreter of the supervisor: the system python3, stdlib only (never the venv)."""
TMP_MB = 128
"""Size of each slot's private ``/tmp`` (a tmpfs; wiped after every test)."""
SHM_MB = 64
"""Size of each slot's private ``/dev/shm`` (a tmpfs; wiped after every test)."""
PROBE_NPROC = 8
"""RLIMIT_NPROC the probe sets before forking, to see that the cap is counted per sandbox."""
CAPS_ROOT = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE")
"""The only capabilities the supervisor keeps (root mode), to drop each test to its slot uid."""
SUPERVISOR = (Path(__file__).with_name("child.py"), Path(__file__).with_name("supervisor.py"))
"""Sent into the sandbox as one script: the test child's code, then the supervisor's."""
WORKDIR_PREFIX = "stagerl-sandbox-"
SECCOMP_TEXT = "seccomp: no new namespaces, mounts, keyrings, memfd or SysV IPC"
OPT_OUT = ("or, to run model-written code WITHOUT isolation, set `rewards.sandbox: unsafe-limits` in the recipe "
           "(or STAGERL_SANDBOX=unsafe-limits); see docs/sandbox.md")


class SandboxError(RuntimeError):
    """The sandbox cannot run (not installed, refused, broken) or failed a test's set-up:
    infrastructure, never a score."""


def bwrap_path() -> str:
    """bubblewrap to use: ``STAGERL_SANDBOX_BWRAP``, else ``bwrap`` on PATH (read on every call)."""
    return os.environ.get("STAGERL_SANDBOX_BWRAP") or shutil.which("bwrap") or "bwrap"


def is_root() -> bool:
    return os.geteuid() == 0  # per-slot host uids and the supervisor's capabilities need root


def requested_mode(configured: str) -> str:
    """``STAGERL_SANDBOX`` when set (an explicit override), else the configured mode; checked."""
    env = os.environ.get("STAGERL_SANDBOX")
    mode, where = (env, "STAGERL_SANDBOX") if env else (configured, "rewards.sandbox")
    if mode not in MODES:
        raise SandboxError(f"{where}: unknown sandbox mode {mode!r}; expected one of {', '.join(MODES)} "
                           f"(there is no automatic fallback: `unsafe-limits` must be asked for by name)")
    return mode


def bwrap_argv(py_args: list[str], bwrap: str | None = None) -> list[str]:
    """bubblewrap around ``py_args``: no network, read-only filesystem, own PID/IPC/UTS namespaces,
    fresh size-capped ``/tmp`` and ``/dev/shm``, cleared environment, no capabilities (root: the
    few the supervisor needs to drop each test to its slot uid; non-root: a user namespace)."""
    # --as-pid-1: the supervisor is the namespace's init. No bwrap init holding the control pipe
    # (a same-uid program could write to it through /proc/1/fd), and init ignores the signals a
    # program sends it (it cannot kill or stop the supervisor)
    argv = [bwrap or bwrap_path(), "--unshare-ipc", "--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
    if is_root():  # no user namespace: slot uids are real host uids, so RLIMIT_NPROC counts per slot
        for cap in CAPS_ROOT:
            argv += ["--cap-add", cap]
    else:  # RLIMIT_NPROC is then counted per user namespace (Linux >= 5.14): per slot; probed
        argv += ["--unshare-user", "--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), str(p)]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(TMP_MB << 20), "--perms", "0777", "--tmpfs", "/tmp",
             "--size", str(SHM_MB << 20), "--perms", "0777", "--tmpfs", "/dev/shm",
             "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8", "--"]
    return argv + py_args


def supervisor_argv(cfg: dict) -> list[str]:
    return [PYTHON, "-I", "-X", "int_max_str_digits=0", "-c", "\n".join(p.read_text() for p in SUPERVISOR), json.dumps(cfg)]


_PROBE = f"""
import json, os, resource, time
out = {{"python": True}}
if os.getuid() != 0:
    resource.setrlimit(resource.RLIMIT_NPROC, ({PROBE_NPROC}, {PROBE_NPROC}))
    kids = []
    try:
        for _ in range({PROBE_NPROC * 3}):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
    except OSError:
        pass
    out["forks"] = len(kids)
    for pid in kids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
out["tmp_writable"] = os.access("/tmp", os.W_OK) and os.access("/dev/shm", os.W_OK)
print(json.dumps(out))
"""


def _userns_fix() -> str:
    return ("unprivileged user namespaces look blocked. Ubuntu 23.10+/24.04: allow bubblewrap through "
            "AppArmor (an `abi <abi/4.0>, profile bwrap /usr/bin/bwrap flags=(unconfined) { userns, }` "
            "profile in /etc/apparmor.d/bwrap, then `sudo systemctl reload apparmor`), or "
            "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`; Debian 10 and older: "
            "`sudo sysctl kernel.unprivileged_userns_clone=1`; RHEL/CentOS 7: `sudo sysctl user.max_user_namespaces=15000`; "
            "inside Docker: run the container with `--security-opt seccomp=unconfined` or as root")


def probe_bwrap() -> str | None:
    """Run a real bubblewrap sandbox once; None when it holds, else the cause and the fix."""
    bwrap = bwrap_path()
    if not (os.path.isfile(bwrap) and os.access(bwrap, os.X_OK)):
        return (f"bubblewrap not found ({bwrap}): install it (`apt install bubblewrap`, `dnf install bubblewrap`, "
                f"`pacman -S bubblewrap`), or point STAGERL_SANDBOX_BWRAP at it")
    if not os.access(PYTHON, os.X_OK):
        return f"no system Python at {PYTHON} for the sandbox: install python3 or set STAGERL_SANDBOX_PYTHON"
    if seccomp_filter() is None:
        return (f"no seccomp filter for this architecture ({os.uname().machine}; built for x86_64 and aarch64), so "
                f"a program could create namespaces and mount an uncapped tmpfs")
    try:
        r = subprocess.run(bwrap_argv([PYTHON, "-I", "-c", _PROBE], bwrap), capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"bubblewrap ({bwrap}) could not be started: {e}"
    err = r.stderr.decode(errors="replace").strip()[:400]
    try:
        got = json.loads(r.stdout.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        got = None
    if r.returncode != 0 or not isinstance(got, dict) or not got.get("python"):
        why = f"bubblewrap ({bwrap}) failed to start a sandbox (exit {r.returncode}: {err or 'no message'})"
        if not is_root() and any(s in err for s in ("uid map", "namespace", "Operation not permitted", "Permission denied")):
            why += "; " + _userns_fix()
        return why
    if not got.get("tmp_writable"):
        return f"bubblewrap ({bwrap}) started, but the sandbox's /tmp or /dev/shm is not writable"
    forks = got.get("forks")
    if forks is not None and not 1 <= forks <= PROBE_NPROC:
        return (f"the process cap does not hold for a non-root user here (RLIMIT_NPROC {PROBE_NPROC} inside "
                f"the sandbox allowed {forks} forks; it is counted per user namespace only on Linux >= 5.14, "
                f"this is {os.uname().release}): run as root or on a newer kernel")
    return None


def describe(mode: str, limits: object) -> str:
    """What holds in ``mode`` for this caller (root or not), with the current limits."""
    lim = (f"process cap {limits.nproc} (RLIMIT_NPROC), memory cap {limits.memory_mb} MiB per process "  # type: ignore[attr-defined]
           f"(RLIMIT_AS), CPU {limits.cpu_s} s, wall clock {limits.timeout_s} s, files {limits.fsize_mb} MiB, "  # type: ignore[attr-defined]
           f"output {limits.output_mb} MiB")  # type: ignore[attr-defined]
    if mode == "bwrap":
        who = ("root: each program runs as its slot's own unprivileged host uid" if is_root() else
               f"non-root (uid {os.getuid()}): each slot is its own user namespace, so the process cap counts per slot")
        return (f"bwrap ({who}): no network, read-only filesystem (system /usr only; no host home, project or /tmp), "
                f"fresh /tmp ({TMP_MB} MiB) and /dev/shm ({SHM_MB} MiB) wiped after every test, "
                f"own PID namespace (every process killed after every test and when the caller dies), "
                f"cleared environment, no capabilities, {SECCOMP_TEXT}; {lim}")
    cap = (f"process cap {limits.nproc} per slot uid" if is_root()  # type: ignore[attr-defined]
           else "NO process cap (RLIMIT_NPROC would count all of this user's processes)")
    return (f"unsafe-limits: NOT ISOLATED. Model-written code runs on the host as "
            f"{'a per-slot uid' if is_root() else f'uid {os.getuid()} (the caller)'}: it can read host files, use "
            f"the network, write to the host's /tmp and /dev/shm; what holds: a private work dir per test "
            f"(removed after it), processes killed after each test, {cap}, memory cap {limits.memory_mb} MiB per "  # type: ignore[attr-defined]
            f"process, CPU, wall clock, file size and output limits, "
            + (SECCOMP_TEXT if seccomp_filter() else "NO seccomp filter on this architecture"))


# ------------------------------------------------------------------- unsafe-limits work dirs


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks after boot


def owner_tag() -> str:
    return f"{os.getpid()}.{_start_time(os.getpid())}"


def remove_stale_workdirs() -> list[str]:
    """Remove ``stagerl-sandbox-<pid>.<start>-*`` folders in the temp dir whose owning process is
    dead (killed before it could clean up); never a live owner's. Returns the removed paths."""
    removed = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*")):
        tag = os.path.basename(path)[len(WORKDIR_PREFIX):].split("-", 1)[0]
        pid, _, start = tag.partition(".")
        try:
            owner = os.stat(path).st_uid
        except OSError:
            continue
        if not pid.isdigit() or not (is_root() or owner == os.getuid()):
            continue  # not ours to judge: another user's, or an old name without its owner
        if _start_time(int(pid)) == start:
            continue  # its owner is alive
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def make_workroot() -> str:
    """A private work root for one unsafe-limits slot, named after this process (for stale clean-up)."""
    remove_stale_workdirs()
    root = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{owner_tag()}-")
    os.chmod(root, 0o711)
    return root
