"""Two real processes (torchrun, gloo on the CPU): the logged per-domain rewards and the signal are those
of the gathered global batch, the same on both ranks, not a mean of per-process means."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_reward_metrics_are_computed_over_the_gathered_batch(tmp_path):
    script = Path(__file__).with_name("gather_reward_main.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    # torchrun, not `accelerate launch --cpu --num_processes 2`: without a GPU (and without MPI) the latter
    # starts a single process
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["scores"] == [1.0, 1.0, 1.0] and r1["scores"] == [0.0, 0.0, 0.0]
    # rank 0: 3 math right; rank 1: 3 code wrong. Global: math 3/3, code 0/3 (per-process means would mix
    # them into 1.0 and 0.0 per rank, i.e. reward_math 1.0 only from rank 0 and none from rank 1).
    # Groups of 2 in process order: [m+ m+ | m+ c- | c- c-] -> one of three carries a signal.
    want = {"reward_math": 1.0, "reward_code": 0.0, "signal": 1 / 3, "tokens": 3 * 2 + 3 * 3}
    assert r0["logged"] == r1["logged"]
    assert r0["logged"].keys() == want.keys()
    for key, value in want.items():
        assert abs(r0["logged"][key] - value) < 1e-9, key
