"""The sandbox's modes and lifecycle: fail-closed without bubblewrap, the explicit unsafe-limits
opt-out, the recipe setting, SIGKILL of the caller, stale folders, several processes at once, and
the whole hostile suite again as a non-root user the test creates (when run as root).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stagerl.rewards import configure_rewards, sandbox_record
from stagerl.rewards import sandbox as sb
from stagerl.rewards.sandbox import isolation as iso

from sandbox_cases import ECHO, GOOD, ROOT, SRC, md  # noqa: E402  (tests/rewards is on the path: conftest.py)

pytestmark = pytest.mark.usefixtures("clean_sandbox")


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


ANNOUNCE_ONCE = """
import multiprocessing as mp, sys
from stagerl.rewards import code_reward
from stagerl.rewards.sandbox import configure

def grade(timeout):
    if timeout:
        configure(timeout_s=timeout)
    print(code_reward(sys.argv[1], {"inputs": ["a"], "outputs": ["a"]}), flush=True)

if __name__ == "__main__":
    grade(None)
    for timeout in (None, None, 2.0):  # two children like a stage's, then one whose limits differ
        p = mp.get_context("spawn").Process(target=grade, args=(timeout,))
        p.start(); p.join()
        assert p.exitcode == 0
"""


def test_a_command_states_its_sandbox_once_not_once_per_spawned_stage(tmp_path):
    script = tmp_path / "announce.py"
    script.write_text(ANNOUNCE_ONCE)
    p = subprocess.run([sys.executable, str(script), GOOD], capture_output=True, text=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != sb.ANNOUNCED_ENV})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1.0"] * 4  # every process graded, in the real sandbox
    lines = [x for x in p.stderr.splitlines() if x.startswith("stagerl: code sandbox:")]
    assert len(lines) == 2, p.stderr  # the parent's, then the child with other limits (its line differs)
    assert "wall clock 2.0 s" in lines[1] and "wall clock 2.0 s" not in lines[0]


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


def test_sandbox_dies_with_its_caller_and_leaves_nothing(live_sandbox_processes):
    sandbox_processes = live_sandbox_processes
    code = (
        "import threading\nfrom stagerl.rewards import code_rewards\n"
        "r = [f'```python\\nimport os\\nos.fork()\\nwhile True: pass  # {k}\\n```' for k in 'ab']\n"
        "print('started', flush=True)\ncode_rewards(r, [{'inputs': ['1'] * 50, 'outputs': ['1'] * 50}] * 2, workers=2)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20
        while len(_descendants(p.pid)) < 8 and time.monotonic() < deadline:  # 2 slots x (bwrap, supervisor, program, its fork)
            time.sleep(0.1)
        tree = _descendants(p.pid)
        assert len(tree) >= 8 and sandbox_processes()  # the programs are running in their sandboxes
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
    """The sandbox test files and test_code.py again as a fresh non-root user: the same verdicts, then a clean host."""
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
                            "-o", "addopts=", "-m", "not slow", "--import-mode=importlib", "-q", "-x", "-p", "no:cacheprovider", "tests/rewards/test_sandbox.py",
                            "tests/rewards/test_sandbox_modes.py", "tests/rewards/test_code.py"],
                           cwd=tree, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        summary = r.stdout.strip().splitlines()[-1]
        passed = re.search(r"^(\d+) passed, 1 skipped in ", summary)  # all but this test itself
        assert passed and int(passed.group(1)) >= 45, r.stdout[-3000:]
        # the host afterwards: no process of that user, no folders it left, nothing new in /dev/shm
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [d for d in Path("/proc").glob("[0-9]*") if _uid_of(d) == uid]:
            time.sleep(0.1)
        assert [d.name for d in Path("/proc").glob("[0-9]*") if _uid_of(d) == uid] == []
        assert [p for p in glob.glob(f"{tempfile.gettempdir()}/{iso.WORKDIR_PREFIX}*") if os.stat(p).st_uid == uid] == []
        assert {n for n in set(os.listdir("/dev/shm")) - shm_before if os.stat(f"/dev/shm/{n}").st_uid == uid} == set()
        assert not Path("/tmp/evil").exists() and not Path("/usr/evil").exists()
    finally:
        test_uid = pwd.getpwnam(user).pw_uid
        for d in Path("/proc").glob("[0-9]*"):  # only if an assertion above failed: the test user's processes
            if _uid_of(d) == test_uid:
                try:
                    os.kill(int(d.name), 9)
                except OSError:
                    pass
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(f"/tmp/pytest-of-{user}", ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)


def _uid_of(d: Path) -> int | None:
    try:
        return d.stat().st_uid
    except OSError:
        return None


def test_a_slot_too_slow_to_start_is_retried_then_reported_and_nothing_is_left(monkeypatch):
    """A loaded machine can keep a real slot from saying it is ready in time: each try is killed and
    reaped, the next waits longer, and the error names the cause (it once crashed reading the closed
    stderr of the slot it had just killed, and no retry happened)."""
    from stagerl.rewards.sandbox import slot as slots

    mode, warm = sb.check(), _descendants(os.getpid())  # the pool's warm slots from earlier tests
    monkeypatch.setattr(slots, "START_TIMEOUT_S", 0.0)  # the real slot starts; nobody waits for its hello
    started = time.monotonic()
    with pytest.raises(sb.SandboxError) as e:
        slots.start_retrying(mode)
    msg = str(e.value)
    assert f"failed to start after {slots.START_TRIES} tries" in msg and "did not start" in msg
    assert "no ready message within 0 s" in msg
    assert time.monotonic() - started < 10  # each try ended at once; nothing blocked on a live pipe
    assert _descendants(os.getpid()) <= warm  # every try's bwrap and supervisor were reaped
    monkeypatch.setattr(slots, "START_TIMEOUT_S", 30.0)
    slot = slots.start_retrying(mode)  # the next start in the same process works
    slots.close(slot, graceful=True)
