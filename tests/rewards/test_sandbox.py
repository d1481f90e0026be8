"""Hostile programs against the real sandbox: isolation, limits, clean-up, fail-closed, opt-out.

Runs as whoever runs pytest; as root, ``test_the_hostile_suite_holds_for_a_non_root_user`` runs
this file and ``test_code.py`` again as a user it creates, then checks the host. Every test checks
that no sandbox process survives it and that the caller keeps working.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from stagerl.rewards import code_reward, code_rewards, configure_rewards, sandbox_record
from stagerl.rewards import sandbox as sb
from stagerl.rewards import sandbox_isolation as iso
from stagerl.rewards import sandbox_slot as slots

ECHO = {"inputs": ["hi\n"], "outputs": ["hi\n"]}
GOOD = "```python\nprint(input())\n```"
ROOT = os.geteuid() == 0
SRC = str(Path(sb.__file__).resolve().parents[2])


def md(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def sandbox_processes() -> list[str]:
    """Live processes of programs under test: any slot uid's (root), or, for a non-root caller, its
    own processes inside a sandbox's PID namespace other than bwrap's init (1) and the supervisor (2)."""
    out, me, my_ns = [], os.getuid(), os.readlink("/proc/self/ns/pid")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
            uid = int(status.split("\nUid:")[1].split()[0])
            inner = int(status.split("\nNSpid:")[1].split("\n")[0].split()[-1])
            if "State:\tZ" in status:
                continue
            if slots.UID_BASE <= uid < slots.UID_BASE + slots.UID_COUNT or (
                    not ROOT and uid == me and inner > 2 and os.readlink(d / "ns" / "pid") != my_ns):
                out.append(f"{d.name} uid={uid} {status.splitlines()[0]}")
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.fixture(autouse=True)
def short_limits():
    old = sb.configure(timeout_s=2.0, cpu_s=3)
    yield
    sb.configure(**old.__dict__)
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:  # a slot replaced just now is being reaped
        time.sleep(0.05)
    assert sandbox_processes() == []
    assert code_reward(GOOD, ECHO) == 1.0  # the caller keeps working


def test_status_and_record_name_the_isolation_in_use():
    who = "root" if ROOT else "non-root"
    assert sb.sandbox_status().startswith(f"bwrap ({who}")  # bubblewrap is installed here
    rec = sandbox_record()
    assert rec["mode"] == "bwrap" and rec["status"] == sb.sandbox_status()
    assert "process cap 64" in rec["status"] and "/dev/shm" in rec["status"]


def test_kill_parent_flood_fork_bomb_memory_bomb_and_infinite_loop_all_fail_cleanly():
    hostile = {
        "kill parent": "import os, signal\nprint('hi')\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)",
        "kill everyone": "import os\nprint('hi', flush=True)\nos.kill(-1, 9)\nimport time\ntime.sleep(5)",
        "flood": "import sys\nwhile True:\n    sys.stdout.write('hi\\n' * 10000)",
        "fork bomb": "import os\nprint('hi', flush=True)\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "memory bomb": "x = []\nwhile True:\n    x.append(bytearray(50 << 20))\nprint('hi')",
        "infinite loop": "while True:\n    pass\nprint('hi')",
        "stderr flood": "import sys\nfor _ in range(10**6):\n    sys.stderr.write('x' * 1000)\nprint('hi')",
    }
    t0 = time.monotonic()
    scores = code_rewards([md(c) for c in hostile.values()], [ECHO] * len(hostile), workers=2)
    assert dict(zip(hostile, scores)) == {
        "kill parent": 0.0,  # root: EPERM (another uid); non-root: the supervisor dies, the test fails
        "kill everyone": 0.0,
        "flood": 0.0,
        "fork bomb": 0.0,
        "memory bomb": 0.0,
        "infinite loop": 0.0,
        "stderr flood": 0.0,
    }
    assert time.monotonic() - t0 < 30


def test_reports_say_why_a_test_failed():
    lim = sb.Limits(timeout_s=1.0)
    (flood,) = sb.run_tests("while True: print('x' * 100000)", ["\n"], limits=lim)
    assert flood["status"] == "output_limit"
    (loop,) = sb.run_tests("while True: pass", ["\n"], limits=lim)
    assert loop["status"] == "timeout" and 0.9 < loop["seconds"] < 1.5
    (mem,) = sb.run_tests("x = bytearray(4 << 30)", ["\n"], limits=lim)
    assert mem["exit"] == 1 and "MemoryError" in mem["stderr"]
    (bomb,) = sb.run_tests("import os\nn = 0\ntry:\n    while True:\n        os.fork() or os._exit(0) if False else os.fork()\n"
                           "        n += 1\nexcept OSError as e:\n    print('blocked', e.errno)", ["\n"], limits=lim)
    assert "blocked 11" in bomb["stdout"]  # EAGAIN from RLIMIT_NPROC: per slot uid (root) or user namespace


def test_daemons_are_killed_and_reaped_between_tests():
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
        "print(input())"
    )
    assert code_rewards([md(daemon)] * 3, [ECHO] * 3, workers=1) == [1.0, 1.0, 1.0]
    # the fixture asserts that no sandbox-uid process is left


def test_no_network_no_host_files_no_secrets(tmp_path, monkeypatch):
    marker = tmp_path / "host-secret.txt"
    marker.write_text("secret")
    secret = f"s3cret-{os.getpid()}-{time.time_ns()}"
    monkeypatch.setenv("STAGERL_HOSTILE_SECRET", secret)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    prog = f"""
import glob, os, socket
bad = []
for addr in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
    try:
        socket.create_connection(addr, timeout=1); bad.append(("net", addr))
    except OSError:
        pass
for p in ({str(marker)!r}, {__file__!r}, {SRC!r}, "/root", "/work", "/home", "/etc/passwd", "/var"):
    if os.path.exists(p):
        bad.append(p)
for p in ("/usr/evil", "/evil", "/dev/evil", "/proc/evil"):
    try:
        open(p, "w").write("x"); bad.append(p)
    except OSError:
        pass
open("/tmp/evil", "w").write("x")  # the sandbox's own /tmp: writable, private, wiped after the test
open("scratch.txt", "w").write("ok")  # so is the work dir
for p in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
    try:
        if {secret!r}.encode() in open(p, "rb").read():
            bad.append(p)
    except OSError:
        pass
if set(os.environ) - {{"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE"}}:
    bad.append("env")
print(input() if not bad else bad)
"""
    assert code_reward(md(prog), ECHO) == 1.0
    assert not Path("/tmp/evil").exists() and not Path("/usr/evil").exists()
    with pytest.raises(OSError):
        listener.accept()  # nothing reached the host's loopback
    listener.close()


def test_no_new_namespaces_mounts_or_keyrings_but_forks_threads_and_subprocesses_work():
    prog = """
import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
bad = []
for flags in (0x10000000 | 0x00020000, 0x00020000, 0x40000000):  # user+mount, mount, net namespace
    if libc.unshare(flags) == 0:
        bad.append(hex(flags))
if libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"size=8g") == 0:  # a tmpfs past the cap
    bad.append("mount")
if os.uname().machine == "x86_64" and libc.syscall(250, 0, -3, 0, 0, 0) >= 0:  # keyctl: keys outlive programs
    bad.append("keyring")
if libc.mq_open(b"/stagerl-q", 0o100 | 0o2, 0o600, None) >= 0:  # a POSIX queue outlives its creator
    bad.append("mqueue")
pid = os.fork()
if pid == 0:
    os._exit(7)
ok = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7, subprocess.run(["/bin/echo", "x"], capture_output=True).stdout]
t = threading.Thread(target=ok.append, args=("thread",))
t.start(); t.join()
print(input() if not bad and ok == [True, b"x\\n", "thread"] else (bad, ok))
"""
    assert code_reward(md(prog), ECHO) == 1.0


def test_nothing_persists_from_one_program_to_the_next():
    writer = md("""
import ctypes, os
for d in ("/tmp", "/dev/shm", "."):
    open(os.path.join(d, "left-behind"), "w").write("x")
os.makedirs("/tmp/ro/deeper")
os.chmod("/tmp/ro", 0o500)
libc = ctypes.CDLL(None)
assert libc.shmget(0, 1 << 20, 0o1000 | 0o600) >= 0  # a SysV segment outlives its creator
print(input())
""")
    reader = md("""
import os
seen = os.listdir("/tmp") + os.listdir("/dev/shm") + os.listdir(".")
shm = open("/proc/sysvipc/shm").read().splitlines()[1:]
print(input() if seen == [os.path.basename(os.getcwd())] and not shm else (seen, shm))
""")
    assert code_rewards([writer, reader, writer, reader], [ECHO] * 4, workers=1) == [1.0, 1.0, 1.0, 1.0]


def test_tmp_and_shm_are_size_capped_and_a_file_cannot_outgrow_its_limit():
    prog = """
import os
def fill(path):
    n = 0
    try:
        with open(path, "wb") as f:
            for _ in range(100):
                f.write(b"x" * (1 << 20)); f.flush(); n += 1
    except OSError:
        pass
    return n
print(sum(fill(f"/dev/shm/fill{i}") for i in range(4)), sum(fill(f"/tmp/fill{i}") for i in range(4)))
"""
    lim = sb.Limits(timeout_s=10.0, fsize_mb=100)
    (r,) = sb.run_tests(prog, ["\n"], limits=lim)
    shm, tmp = map(int, r["stdout"].split())
    assert 0 < shm <= iso.SHM_MB and 0 < tmp <= iso.TMP_MB  # ENOSPC at the cap: no host memory past it


def test_file_size_limit():
    prog = "f = open('big', 'wb')\ntry:\n    f.write(b'x' * (64 << 20)); f.flush()\nexcept OSError as e:\n    print('limited')"
    (r,) = sb.run_tests(prog, ["\n"])
    assert "limited" in r["stdout"] or r["exit"] == -25  # EFBIG or SIGXFSZ


def test_many_threads_share_the_pool_correctly():
    wrong = "print('no')"
    results: dict[int, list[float]] = {}

    def work(k: int) -> None:
        results[k] = code_rewards([GOOD, md(wrong)] * 2, [ECHO] * 4, workers=2)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: [1.0, 0.0, 1.0, 0.0] for k in range(4)}


def _python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=full)


def test_without_bubblewrap_grading_refuses_to_run_model_code(tmp_path):
    marker = tmp_path / "ran"
    prog = md(f"open({str(marker)!r}, 'w')\nprint(1)")
    code = f"from stagerl.rewards import code_reward\ncode_reward({prog!r}, {{'inputs': ['1'], 'outputs': ['1']}})"
    missing = _python(code, STAGERL_SANDBOX_BWRAP="/nonexistent/bwrap")
    assert missing.returncode != 0 and "SandboxError" in missing.stderr
    assert "bubblewrap not found (/nonexistent/bwrap)" in missing.stderr and "apt install bubblewrap" in missing.stderr
    assert "rewards.sandbox: unsafe-limits" in missing.stderr  # the explicit opt-out is named
    broken = _python(code, STAGERL_SANDBOX_BWRAP="/bin/false")
    assert broken.returncode != 0 and "bubblewrap (/bin/false) failed to start a sandbox" in broken.stderr
    no_python = _python(code, STAGERL_SANDBOX_PYTHON="/nonexistent/python3")
    assert no_python.returncode != 0 and "SandboxError" in no_python.stderr and "STAGERL_SANDBOX_PYTHON" in no_python.stderr
    for legacy in ("limits", "auto"):  # the old silent fallbacks are gone
        p = _python(code, STAGERL_SANDBOX=legacy)
        assert p.returncode != 0 and "unknown sandbox mode" in p.stderr
    assert not marker.exists()  # no model-written code ran
    status = _python("from stagerl.rewards import sandbox_record\nprint(sandbox_record())", STAGERL_SANDBOX_BWRAP="/nonexistent")
    assert "'mode': 'bwrap', 'status': 'unusable:" in status.stdout


UNSAFE_SUPERVISOR = '"pidns": false'
"""In the command line of an unsafe-limits supervisor and of every process it forks."""


def test_unsafe_limits_only_when_asked_for_and_as_documented():
    daemon = md("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
                "    os._exit(0)\nopen('here', 'w')\nprint(input())")
    no_ns = md("import ctypes\nprint(input() if ctypes.CDLL(None).unshare(0x10020000) != 0 else 'unshared')")
    progs = [GOOD, md("import os\nos._exit(0)"), daemon, no_ns]
    tests = [{"inputs": ["a"], "outputs": ["a"]}] * 2 + [{"inputs": ["b", "c"], "outputs": ["b", "c"]}, ECHO]
    if ROOT:  # the process cap holds as root (a slot uid), not for a non-root caller (documented)
        progs.append(md("import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
                        "            time.sleep(5)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)"))
        tests.append({"inputs": ["\n"], "outputs": ["63"]})  # 64 processes of the slot uid: the program + 63
    code = (
        "import glob, json, sys, tempfile\n"
        "from stagerl.config import RewardsConfig\n"
        "from stagerl.rewards import code_rewards, configure_rewards, sandbox_record\n"
        "from stagerl.rewards.sandbox import shutdown\n"
        "configure_rewards(RewardsConfig(sandbox='unsafe-limits', code_timeout=3))\n"
        "print(json.dumps(code_rewards(json.loads(sys.argv[1]), json.loads(sys.argv[2]), workers=1)))\n"
        "print(json.dumps(sandbox_record()))\n"
        "print(json.dumps(glob.glob(tempfile.gettempdir() + '/stagerl-sandbox-*/*')))\n"
        "shutdown()\nprint(json.dumps(glob.glob(tempfile.gettempdir() + '/stagerl-sandbox-*')))\n"
    )
    p = _python(code, json.dumps(progs), json.dumps(tests))
    assert p.returncode == 0, p.stderr
    scores, rec, during, after = (json.loads(line) for line in p.stdout.splitlines())
    assert scores == [1.0, 0.0, 1.0, 1.0] + ([1.0] if ROOT else [])
    assert rec["mode"] == "unsafe-limits" and rec["status"].startswith("unsafe-limits: NOT ISOLATED")
    assert p.stderr.count("stagerl: code sandbox: WARNING: unsafe-limits: NOT ISOLATED") == 1
    assert during == [] and after == []  # per-test work dirs removed after each test, the slot's at shutdown
    assert [q for q in _own_processes() if UNSAFE_SUPERVISOR in q] == []  # the daemons were killed


def _own_processes() -> list[str]:
    """Command lines of this user's processes (root: of every user, slot uids included)."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if ROOT or d.stat().st_uid == os.getuid():
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return out


def test_stale_work_dirs_of_dead_owners_are_removed_at_the_next_start():
    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()
    stale = tempfile.mkdtemp(prefix=f"{iso.WORKDIR_PREFIX}{dead.pid}.1-")
    live = tempfile.mkdtemp(prefix=f"{iso.WORKDIR_PREFIX}{iso.owner_tag()}-")
    try:
        removed = iso.remove_stale_workdirs()
        assert stale in removed and not os.path.exists(stale) and os.path.isdir(live)
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def test_recipe_mode_is_validated_and_applied():
    from stagerl.config import ConfigError, RewardsConfig, load_recipe

    with pytest.raises(ConfigError, match="rewards.sandbox: 'limits' is not a sandbox mode"):
        load_recipe({"name": "x", "rewards": {"sandbox": "limits"}})
    old = sb._limits
    try:
        configure_rewards(RewardsConfig(code_timeout=1.5, code_memory_mb=512))
        assert (sb._limits.timeout_s, sb._limits.memory_mb) == (1.5, 512) and sandbox_record()["mode"] == "bwrap"
    finally:
        sb.configure(**old.__dict__)


def _descendants(pid: int) -> set[int]:
    """All live descendants of ``pid`` (via /proc/<pid>/task/*/children)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def test_sandbox_dies_with_its_caller_and_leaves_nothing():
    code = (
        "import threading\nfrom stagerl.rewards import code_rewards\n"
        "r = [f'```python\\nimport os\\nos.fork()\\nwhile True: pass  # {k}\\n```' for k in 'ab']\n"
        "print('started', flush=True)\ncode_rewards(r, [{'inputs': ['1'] * 50, 'outputs': ['1'] * 50}] * 2, workers=2)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20
        while len(_descendants(p.pid)) < 10 and time.monotonic() < deadline:  # 2 slots x (bwrap, init, supervisor, program, its fork)
            time.sleep(0.1)
        tree = _descendants(p.pid)
        assert len(tree) >= 10 and sandbox_processes()  # the programs are running in their sandboxes
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(Path(f"/proc/{q}").exists() for q in tree) or sandbox_processes()):
        time.sleep(0.1)
    left = [q for q in tree if Path(f"/proc/{q}").exists() and "zombie" not in Path(f"/proc/{q}/status").read_text()]
    assert left == [] and sandbox_processes() == []


def test_several_processes_at_once_get_their_own_slots(tmp_path):
    code = (
        "from stagerl.rewards import code_rewards\nfrom stagerl.rewards.sandbox import configure\nconfigure(timeout_s=2.0)\n"
        "bomb = '```python\\nimport os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass\\n```'\n"
        "good = '```python\\nprint(input())\\n```'\n"
        "print(code_rewards([bomb, good, good, bomb, good], [{'inputs': ['a', 'b'], 'outputs': ['a', 'b']}] * 5, workers=2))\n"
    )
    before = set(os.listdir("/tmp"))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "[0.0, 1.0, 1.0, 0.0, 1.0]"
    assert {n for n in set(os.listdir("/tmp")) - before if n.startswith("stagerl")} == set()


def test_program_files_stay_in_the_sandbox():
    before = set(os.listdir("/tmp"))
    prog = "import os\nfor i in range(50):\n    open(f'f{i}', 'w').write('x' * 1000)\nos.makedirs('d/e', exist_ok=True)\nprint(input())"
    assert code_rewards([md(prog)] * 2, [ECHO] * 2) == [1.0, 1.0]
    # the next program on the same slot starts in an empty work dir
    assert code_reward(md("import os\nprint('hi' if not os.listdir('.') else os.listdir('.'))"), ECHO) == 1.0
    assert set(os.listdir("/tmp")) - before == set()


def test_debug_output_on_stderr_is_fine_but_a_stderr_flood_fails():
    chatty = "import sys\nsys.stderr.write('debug line\\n' * 20000)\nprint(input())"  # ~220 KB of stderr
    flood = "import sys\nfor _ in range(100):\n    sys.stderr.write('x' * (1 << 20))\nprint(input())"  # 100 MiB
    assert code_rewards([md(chatty), md(flood)], [ECHO, ECHO], workers=2) == [1.0, 0.0]


def test_a_sigkilled_unsafe_limits_run_leaves_no_process_and_its_folder_goes_at_the_next_start():
    code = (
        "from stagerl.rewards import code_rewards\nfrom stagerl.rewards.sandbox import configure_sandbox\n"
        "configure_sandbox('unsafe-limits', timeout_s=30)\n"
        "r = '```python\\nimport os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(60)\\ntime.sleep(60)\\n```'\n"
        "print('started', flush=True)\ncode_rewards([r], [{'inputs': ['1'], 'outputs': ['1']}])\n"
    )
    before = set(glob.glob(f"{tempfile.gettempdir()}/{iso.WORKDIR_PREFIX}*"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20  # the supervisor, the program and its daemon
        while time.monotonic() < deadline and sum(UNSAFE_SUPERVISOR in q for q in _own_processes()) < 3:
            time.sleep(0.1)
        assert sum(UNSAFE_SUPERVISOR in q for q in _own_processes()) >= 3
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(UNSAFE_SUPERVISOR in q for q in _own_processes()):
        time.sleep(0.1)
    left = set(glob.glob(f"{tempfile.gettempdir()}/{iso.WORKDIR_PREFIX}*")) - before
    assert [q for q in _own_processes() if UNSAFE_SUPERVISOR in q] == []  # the supervisor killed the tree, then itself
    assert len(left) == 1  # the dead caller could not remove its folder ...
    iso.remove_stale_workdirs()
    assert not any(os.path.exists(x) for x in left)  # ... the next start does


def _user_can_run(user: str, argv: list[str], env: dict) -> bool:
    r = subprocess.run(["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv],
                       capture_output=True, timeout=60)
    return r.returncode == 0


@pytest.mark.skipif(not ROOT or os.environ.get("STAGERL_TEST_AS_USER") or not shutil.which("useradd")
                    or not shutil.which("runuser"), reason="needs root with useradd/runuser (CI runs as root)")
def test_the_hostile_suite_holds_for_a_non_root_user():
    """This file and test_code.py again as a fresh non-root user: the same verdicts, then a clean host."""
    user = f"stagerl-sbx-{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True, capture_output=True)
    tree = Path(tempfile.mkdtemp(prefix="stagerl-test-tree-"))  # a copy the user can read (the checkout may be private)
    try:
        uid = pwd.getpwnam(user).pw_uid
        shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(Path(__file__).parent, tree / "tests" / "rewards", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(Path(__file__).parents[1] / "conftest.py", tree / "tests" / "conftest.py")
        shutil.copy(Path(SRC).parent / "pyproject.toml", tree / "pyproject.toml")
        subprocess.run(["chmod", "-R", "a+rX", str(tree)], check=True)
        import sysconfig

        site = sysconfig.get_paths()["purelib"]  # pytest lives there; pure Python, any 3.x.y of this minor
        env = {"PYTHONPATH": f"{tree / 'src'}:{site}", "PYTHONDONTWRITEBYTECODE": "1", "STAGERL_TEST_AS_USER": "1",
               "OMP_NUM_THREADS": "1", "HOME": str(tree), "PATH": "/usr/bin:/bin"}
        py = next((p for p in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")
                   if _user_can_run(user, [p, "-c", "import pytest, stagerl.rewards"], env)), None)
        if py is None:
            pytest.skip(f"no Python with pytest that user {user} can run (the venv is not readable by others)")
        shm_before = set(os.listdir("/dev/shm"))
        r = subprocess.run(["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], py, "-m", "pytest",
                            "-o", "addopts=", "-m", "not slow", "--import-mode=importlib", "-q", "-x", "-p", "no:cacheprovider", "tests/rewards/test_sandbox.py", "tests/rewards/test_code.py"],
                           cwd=tree, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        summary = r.stdout.strip().splitlines()[-1]
        assert re.search(r"^4\d passed, 1 skipped in ", summary), r.stdout[-3000:]  # all but this test itself
        # the host afterwards: no process of that user, no folders it left, nothing new in /dev/shm
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [d for d in Path("/proc").glob("[0-9]*") if _uid_of(d) == uid]:
            time.sleep(0.1)
        assert [d.name for d in Path("/proc").glob("[0-9]*") if _uid_of(d) == uid] == []
        assert [p for p in glob.glob(f"{tempfile.gettempdir()}/{iso.WORKDIR_PREFIX}*") if os.stat(p).st_uid == uid] == []
        assert {n for n in set(os.listdir("/dev/shm")) - shm_before if os.stat(f"/dev/shm/{n}").st_uid == uid} == set()
        assert not Path("/tmp/evil").exists() and not Path("/usr/evil").exists()
    finally:
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(f"/tmp/pytest-of-{user}", ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)


def _uid_of(d: Path) -> int | None:
    try:
        return d.stat().st_uid
    except OSError:
        return None
