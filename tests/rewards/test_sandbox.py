"""Hostile programs against the real sandbox: isolation, limits, nothing left between programs.

Runs as whoever runs pytest; as root, ``test_sandbox_modes.py`` runs this file again as a user it
creates. Every test checks that no program under test survives it and that grading still works.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from stagerl.rewards import code_reward, code_rewards, sandbox_record
from stagerl.rewards import sandbox as sb
from stagerl.rewards.sandbox import isolation as iso

from sandbox_cases import ECHO, GOOD, ROOT, SRC, md  # noqa: E402  (tests/rewards is on the path: conftest.py)

pytestmark = pytest.mark.usefixtures("clean_sandbox")


def test_status_and_record_name_the_isolation_in_use():
    who = "root" if ROOT else "non-root"
    assert sb.sandbox_status().startswith(f"bwrap ({who}")  # bubblewrap is installed here
    rec = sandbox_record()
    assert rec["mode"] == "bwrap" and rec["status"] == sb.sandbox_status()
    assert "process cap 64" in rec["status"] and "/dev/shm" in rec["status"]


def test_kill_parent_flood_fork_bomb_memory_bomb_and_infinite_loop_all_fail_cleanly():
    hostile = {
        "kill parent": "import os, signal\nfor sig in (signal.SIGSTOP, signal.SIGKILL):\n    for pid in (os.getppid(), 1):\n"
                       "        try:\n            os.kill(pid, sig)\n        except OSError:\n            pass\nprint(input())",
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
        "kill parent": 1.0,  # the supervisor survives (root: EPERM; non-root: a namespace's init ignores it)
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
    count = ("import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n            time.sleep(3)\n"
             "            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)")
    (held,) = sb.run_tests(count, ["\n"], limits=lim)
    assert held["stdout"] == f"{sb.Limits().nproc - 1}\n"  # the same cap as root or not: the program + 63


def test_a_program_cannot_forge_a_report_through_proc():
    prog = """
import glob, json, os, struct
opened = []
msg = json.dumps({"status": "ok", "exit": 0, "seconds": 0, "stderr": "", "stdout": "hi\\n"}).encode()
for p in glob.glob("/proc/[0-9]*/fd/*") + glob.glob("/proc/[0-9]*/mem"):
    if p.startswith(f"/proc/{os.getpid()}/"):
        continue
    try:
        fd = os.open(p, os.O_WRONLY)
    except OSError:
        continue
    opened.append(p)
    try:
        os.write(fd, struct.pack(">I", len(msg)) + msg)  # a forged "hi" report, were this a control pipe
    except OSError:
        pass
print(opened or "none")
"""
    reports = sb.run_tests(prog, ["\n", "\n"])  # a forged report would show as the second one
    assert [(r["status"], r["exit"], r["stdout"]) for r in reports] == [("ok", 0, "none\n")] * 2


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


def test_no_new_namespaces_mounts_keyrings_memfd_or_sysv_but_forks_threads_and_subprocesses_work():
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
if libc.shmget(0, 1 << 20, 0o1000 | 0o600) >= 0:  # a SysV segment outlives its creator, in no cap
    bad.append("sysv shm")
try:
    os.memfd_create("x")  # memory in no tmpfs and, unmapped, in no address-space limit
    bad.append("memfd")
except OSError:
    pass
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
import multiprocessing, os
for d in ("/tmp", "/dev/shm", "."):
    open(os.path.join(d, "left-behind"), "w").write("x")
os.makedirs("/tmp/ro/deeper")
os.chmod("/tmp/ro", 0o500)
lock = multiprocessing.Lock()  # a POSIX semaphore (in /dev/shm while it lives)
print(input())
""")
    reader = md("""
import os
seen = os.listdir("/tmp") + os.listdir("/dev/shm") + os.listdir(".")
print(input() if seen == [os.path.basename(os.getcwd())] else seen)
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


# --- the tests of one program run as one request on one slot (a fresh fork of a prepared
# supervisor per test): nothing of test 1 reaches test 2 of the same program


def test_tests_of_one_program_start_clean_files_processes_and_ipc():
    prog = """
import multiprocessing, os, signal, subprocess, time
step = input().strip()
if step == "1":
    for d in ("/tmp", "/dev/shm", "."):
        open(os.path.join(d, "from-test-1"), "w").write("x")
    os.makedirs("/tmp/ro/deeper")
    os.chmod("/tmp/ro", 0o500)
    lock = multiprocessing.Lock()  # a POSIX semaphore in /dev/shm
    p = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a daemon in its own session
    open("/tmp/pid", "w").write(str(p.pid))
    print("wrote")
else:
    seen = os.listdir("/tmp") + os.listdir("/dev/shm") + os.listdir(".")
    alive = [d for d in os.listdir("/proc") if d.isdigit() and open(f"/proc/{d}/cmdline", "rb").read().startswith(b"sleep")]
    print(seen == [os.path.basename(os.getcwd())], alive)
"""
    reps = sb.run_tests(prog, ["1\n", "2\n", "1\n", "2\n"])
    assert [r["stdout"] for r in reps] == ["wrote\n", "True []\n"] * 2, reps


def test_tests_of_one_program_start_clean_memory_modules_and_globals():
    prog = """
import builtins, math, sys, gc
step = input().strip()
if step == "1":
    builtins.print_orig = print
    math.pi = 3
    sys.modules["leak"] = "from test 1"
    Counter = None  # a name of the LiveCodeBench header, replaced
    globals()["carried"] = [1] * 1000
    sys.setrecursionlimit(100)
    gc.disable()
    import colorsys  # a module test 2 must import afresh
    print("set")
else:
    print(math.pi == 3.141592653589793, "leak" in sys.modules, Counter is not None, "carried" in globals(),
          hasattr(builtins, "print_orig"), sys.getrecursionlimit() >= 50000, gc.isenabled(), "colorsys" in sys.modules)
"""
    reps = sb.run_tests(prog, ["1\n", "2\n"])
    assert [r["stdout"] for r in reps] == ["set\n", "True False True False False True True False\n"], reps


def test_tests_of_one_program_get_their_own_stdio_argv_and_header_names():
    # the header's `from sys import *` names are this test's streams: what is written through them arrives
    prog = "stdout.write(stdin.readline().upper())\nstderr.write('e')\nprint(argv)"
    reps = sb.run_tests(prog, ["ab\n", "cd\n"])
    assert [(r["stdout"], r["stderr"]) for r in reps] == [("AB\n['solution.py']\n", "e"), ("CD\n['solution.py']\n", "e")]


def test_a_supervisor_lost_mid_program_fails_that_test_only_and_the_rest_run_on_a_fresh_slot():
    # no program can kill its supervisor (see the hostile tests above), so the host kills it while test 2 runs
    import signal as _signal

    from stagerl.rewards.sandbox import slot as slots

    prog = "import time\nx = input().strip()\nif x == '2':\n    time.sleep(30)\nprint(x)"
    fut = sb.submit(prog, ["1\n", "2\n", "3\n"], limits=sb.Limits(timeout_s=20.0), workers=1)
    time.sleep(3.0)  # test 1 is done, test 2 sleeps
    with slots.lock:
        alive = list(slots.live)
    for slot in alive:
        os.killpg(slot.proc.pid, _signal.SIGKILL)
    reps = fut.result(timeout=60)
    assert [r["status"] for r in reps] == ["ok", "crash", "ok"] and reps[2]["stdout"] == "3\n", reps


def test_large_inputs_go_in_several_requests_and_every_test_gets_its_own_report_in_order():
    from stagerl.rewards.sandbox import slot as slots

    sizes = [700_000, 50, 900_000, 1_300_000, 10]  # batches of about slots.BATCH_BYTES (1 MiB): 3, 1 and 1 inputs
    assert slots.BATCH_BYTES < sizes[0] + sizes[1] + sizes[2]
    reps = sb.run_tests("import sys\nprint(len(sys.stdin.read()))", ["x" * (n - 1) + "\n" for n in sizes])
    assert [r["stdout"] for r in reps] == [f"{n}\n" for n in sizes], [r["status"] for r in reps]


def test_stdin_at_the_direct_write_boundary_and_a_program_that_never_reads_it():
    from stagerl.rewards.sandbox.supervisor import PIPE_BUF

    sizes = [PIPE_BUF - 1, PIPE_BUF, PIPE_BUF + 1, 300_000]  # written at once up to PIPE_BUF, through the poll loop past it
    reps = sb.run_tests("import sys\nprint(len(sys.stdin.read()))", ["x" * (n - 1) + "\n" for n in sizes])
    assert [r["stdout"] for r in reps] == [f"{n}\n" for n in sizes], [r["status"] for r in reps]
    reps = sb.run_tests("print('done')", ["y" * n for n in (10, PIPE_BUF + 1, 300_000)])  # exits without reading
    assert [(r["status"], r["stdout"]) for r in reps] == [("ok", "done\n")] * 3, reps
