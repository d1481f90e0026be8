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


def sandbox_processes() -> list[str]:
    """Live processes of programs under test: any slot uid's (root), or, for a non-root caller, its
    own processes inside a sandbox's PID namespace other than its init, the supervisor (PID 1)."""
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
