"""The online trainer under two real processes (torchrun, gloo on the CPU): every process runs the same
number of generation rounds per step (no collective waits forever), each refills its own dropped
groups, and the logged group counts are those of both processes together."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path


def test_dynamic_sampling_agrees_across_two_processes(tiny_model_dir, tmp_path):
    script = Path(__file__).with_name("online_main.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), tiny_model_dir, str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    per_step = [Counter(x["step"] for x in r["rounds"]) for r in ranks]
    assert per_step[0] == per_step[1] and sorted(per_step[0]) == [0, 1]  # the same rounds on both, each step
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    G = 4
    for row, step in zip(rows, (0, 1)):
        rounds = [x["ids"] for r in ranks for x in r["rounds"] if x["step"] == step]
        generated = sum(len(ids) for ids in rounds) // G
        first = [x["ids"] for r in ranks for x in r["rounds"] if x["step"] == step][:: per_step[0][step]]
        assert sum(len(ids) for ids in first) // G == 2 * 2  # each process: its 2 groups of the 4-prompt step
        assert row["groups_generated"] == generated  # summed over both processes
        assert row["groups_dropped"] == generated - 4 and row["extra_rounds"] == per_step[0][step] - 1
        hard_first = sum(i.startswith("hard") for ids in first for i in ids[::G])
        assert row["extra_rounds"] >= (1 if hard_first else 0)  # a hard group was dropped and refilled
