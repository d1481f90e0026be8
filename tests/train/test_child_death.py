"""A stage's process that dies without a word (SIGKILL, an exit code) is reported by how it ended, and the
command's message says how to go on. Real spawned processes, a real SIGKILL."""

import os
import signal

import pytest

from stagerl.config import StageConfig
from stagerl.train.runner import _death, _run_in_child


def _kill_myself(stage):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_stage_process_is_named_by_its_signal_and_how_to_resume():
    with pytest.raises(RuntimeError) as e:
        _run_in_child(_kill_myself, {"stage": StageConfig(name="s1")}, {})
    msg = str(e.value)
    assert msg.startswith("stage 's1': its training process died (killed by SIGKILL: often the out-of-memory killer")
    assert msg.endswith("rerun the same command to resume from its last checkpoint")
    assert _death(3) == "exit code 3" and _death(-signal.SIGTERM) == "killed by SIGTERM"  # the other endings
