"""Two real training processes (torchrun, gloo on the CPU): each rank evaluates its share of the dev set,
the score is that of the whole set, and the step's row carries it; the best policy is kept (keep_best)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.store import SampleStore


@pytest.mark.slow
def test_two_processes_split_the_dev_set_and_agree_on_the_score(tiny_model_dir, tmp_path):
    script = Path(__file__).with_name("multiproc_stage_main.py")
    # ACCELERATE_USE_CPU: without it transformers sets up no process group on a machine without a GPU,
    # and the two processes would train independently
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), tiny_model_dir, str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    out = tmp_path / "stages" / "1_s1"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [r["step"] for r in rows if "dev_score" in r] == [0, 2]
    store = SampleStore(out / "dev.sqlite")
    for step in (0, 2):                          # all 3 held-out problems x k=2, from both ranks together
        samples = store.samples(model=f"step-{step}")
        assert len(samples) == 6 and len({s["problem_id"] for s in samples}) == 3
        want = sum(s["reward"] >= 1 for s in samples) / len(samples)
        assert rows[step]["dev_score"] == pytest.approx(want)
    info = json.loads((out / "stage.json").read_text())
    assert info["cost"]["dev_tokens"] == sum(s["tokens"] for s in store.samples())
    # keep_best: both ranks took part in saving the best policy, rank 0 moved it into checkpoint/
    scores = {int(k): v for k, v in info["dev"]["scores"].items()}
    assert info["kept"]["step"] == min(s for s, v in scores.items() if v == max(scores.values()))
    assert (out / "checkpoint" / "model.safetensors").is_file() and not list(out.glob("best-*"))
