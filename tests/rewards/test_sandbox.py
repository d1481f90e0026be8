"""Hostile programs against the real sandbox: isolation, limits, clean-up, fallback, infra errors.

Every test checks that no process of a sandbox uid survives it and that the caller keeps working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stagerl.rewards import code_reward, code_rewards
from stagerl.rewards import sandbox as sb

ECHO = {"inputs": ["hi\n"], "outputs": ["hi\n"]}
GOOD = "```python\nprint(input())\n```"


def md(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def sandbox_processes() -> list[str]:
    """Processes running as any sandbox uid (there should be none between tests)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        uid = int(status.split("\nUid:")[1].split()[0])
        if sb._UID_BASE <= uid < sb._UID_BASE + sb._UID_COUNT:
            out.append(f"{d.name} uid={uid} {status.splitlines()[0]}")
    return out


@pytest.fixture(autouse=True)
def short_limits():
    old = sb.configure(timeout_s=2.0, cpu_s=3)
    yield
    sb.configure(**old.__dict__)
    assert sandbox_processes() == []
    assert code_reward(GOOD, ECHO) == 1.0  # the caller keeps working


def test_status_names_the_active_isolation():
    assert sb.sandbox_status().startswith("bwrap")  # bubblewrap is installed here


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
        "kill parent": 0.0,  # its parent (the trusted worker) runs as another uid: EPERM, non-zero exit
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
    assert "blocked 11" in bomb["stdout"]  # EAGAIN from RLIMIT_NPROC, per slot uid


def test_daemons_are_killed_and_reaped_between_tests():
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
        "print(input())"
    )
    assert code_rewards([md(daemon)] * 3, [ECHO] * 3, workers=1) == [1.0, 1.0, 1.0]
    # the fixture asserts that no sandbox-uid process is left


def test_no_network_no_host_files_no_secrets(tmp_path):
    marker = tmp_path / "host-secret.txt"
    marker.write_text("secret")
    prog = f"""
import os, socket
bad = []
try:
    socket.create_connection(("1.1.1.1", 53), timeout=1); bad.append("net")
except OSError:
    pass
for p in ({str(marker)!r}, "/root", "/work", "/etc/passwd"):
    if os.path.exists(p):
        bad.append(p)
for p in ("/usr/evil", "/tmp/evil", "/evil"):
    try:
        open(p, "w").write("x"); bad.append(p)
    except OSError:
        pass
open("scratch.txt", "w").write("ok")  # the private work dir is writable
if set(os.environ) - {{"PATH", "HOME", "TMPDIR", "LANG", "LC_CTYPE"}}:
    bad.append("env")
print(input() if not bad else bad)
"""
    assert code_reward(md(prog), ECHO) == 1.0
    assert not Path("/tmp/evil").exists() and not Path("/usr/evil").exists()


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


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=full)


def test_limits_only_fallback_warns_loudly_once_and_still_scores_and_cleans_up():
    code = (
        "import glob, tempfile\n"
        "from stagerl.rewards import code_rewards\nfrom stagerl.rewards.sandbox import sandbox_status, shutdown\n"
        "r = ['```python\\nprint(input())\\n```', '```python\\nimport os\\nos._exit(0)\\n```']\n"
        "print(code_rewards(r, [{'inputs': ['a'], 'outputs': ['a']}] * 2), code_rewards(r[:1], [{'inputs': ['b'], 'outputs': ['b']}]))\n"
        "print(sandbox_status())\nshutdown()\nprint(glob.glob(tempfile.gettempdir() + '/stagerl-sandbox-*'))\n"
    )
    p = _python(code, STAGERL_SANDBOX="limits")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "[1.0, 0.0] [1.0]"
    assert lines[1].startswith("limits-only")
    assert p.stderr.count("CODE SANDBOX IS LIMITS-ONLY") == 1
    assert lines[2] == "[]"  # work dirs removed


def test_broken_sandbox_raises_instead_of_scoring_zero():
    code = "from stagerl.rewards import code_reward\ncode_reward('```python\\nprint(1)\\n```', {'inputs': ['1'], 'outputs': ['1']})"
    p = _python(code, STAGERL_SANDBOX_PYTHON="/nonexistent/python3")
    assert p.returncode != 0 and "SandboxError" in p.stderr
    p = _python(code, STAGERL_SANDBOX="bwrap", STAGERL_SANDBOX_PYTHON="/nonexistent/python3")
    assert p.returncode != 0 and "SandboxError: STAGERL_SANDBOX=bwrap but bubblewrap is unusable" in p.stderr


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
        while len(_descendants(p.pid)) < 10 and time.monotonic() < deadline:  # 2 slots x (bwrap, init, worker, program, its fork)
            time.sleep(0.1)
        tree = _descendants(p.pid)
        assert len(tree) >= 10 and sandbox_processes()  # the programs are running as slot uids
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
