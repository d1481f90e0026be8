"""Fixtures for the sandbox tests: a check that no program under test outlives its test."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: sandbox_cases.py beside the tests

from stagerl.rewards import code_reward
from stagerl.rewards import sandbox as sb
from stagerl.rewards.sandbox import slot as slots

ROOT = os.geteuid() == 0


def _foreign_leases() -> set[int]:
    """Slot uids leased by a live process outside this test process's tree (say a training run
    grading code beside the tests): their programs are not this test's. A uid whose holder died,
    or that this process or one it started holds, still counts."""
    inode_uid = {}
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[7].startswith("@stagerl-sandbox-uid-"):
            inode_uid[f"socket:[{f[6]}]"] = int(f[7].rsplit("-", 1)[1])
    foreign = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or _in_my_tree(int(d.name)):
            continue
        try:
            links = {os.readlink(fd) for fd in (d / "fd").iterdir()}
        except OSError:
            continue
        foreign |= {uid for link, uid in inode_uid.items() if link in links}
    return foreign


def _in_my_tree(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            pid = int((Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        except (OSError, IndexError, ValueError):
            return False
    return False


def sandbox_processes() -> list[str]:
    """Live processes of programs under test: any slot uid's not leased outside this test (root), or, for a non-root caller, its
    own processes inside a sandbox's PID namespace other than its init, the supervisor (PID 1)."""
    out, me, my_ns = [], os.getuid(), os.readlink("/proc/self/ns/pid")
    foreign = _foreign_leases() if ROOT else set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
            uid = int(status.split("\nUid:")[1].split()[0])
            inner = int(status.split("\nNSpid:")[1].split("\n")[0].split()[-1])
            if "State:\tZ" in status:
                continue
            if ROOT and slots.UID_BASE <= uid < slots.UID_BASE + slots.UID_COUNT and uid not in foreign or (
                    not ROOT and uid == me and inner > 1 and os.readlink(d / "ns" / "pid") != my_ns):
                out.append(f"{d.name} uid={uid} {status.splitlines()[0]}")
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.fixture
def clean_sandbox():
    """Short limits for the test; afterwards no sandboxed process is left and grading still works."""
    old = sb.configure(timeout_s=2.0, cpu_s=3)
    yield
    sb.configure(**old.__dict__)
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:  # a slot replaced just now is being reaped
        time.sleep(0.05)
    assert sandbox_processes() == []
    assert code_reward("```python\nprint(input())\n```", {"inputs": ["hi"], "outputs": ["hi"]}) == 1.0  # still works




@pytest.fixture
def live_sandbox_processes():
    """``sandbox_processes``, for tests that watch programs run and die."""
    return sandbox_processes
