"""Re-levelling under two processes (``accelerate launch``, CPU ranks): each process scores its share of the
candidates, and the result (kept problems, moves, samples) equals the one-process result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagerl.curriculum import StageDataError
from stagerl.store import SampleStore

import relevel_main  # tests/train is on the path: conftest.py

SAME = ("moves", "dropped", "band", "model", "k", "levels", "target", "candidates", "kept", "kept_ids", "generated")


def samples(run_dir: Path) -> list[tuple]:
    with SampleStore(run_dir / "samples.sqlite") as store:
        return sorted((r["problem_id"], r["idx"], r["text"], r["tokens"], r["finish"], r["reward"])
                      for r in store.samples(model="policy-2_s2"))


def one_and_two_processes(model: str, tmp_path: Path, prompt: str) -> tuple[dict, dict]:
    one, two = tmp_path / "one", tmp_path / "two"
    try:
        relevel_main.run(model, str(one), prompt)
    except StageDataError:  # kept none: relevel.json is written all the same, and compared
        pass
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    # accelerate's torchrun launcher; on a machine without a GPU its ranks are CPU processes (gloo)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(Path(__file__).with_name("relevel_main.py")), model, str(two), prompt]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert done.returncode == 0 or "kept none" in done.stderr, done.stderr[-4000:]
    a, b = (json.loads((d / "stages" / "2_s2" / "relevel.json").read_text()) for d in (one, two))
    assert {k: b[k] for k in SAME} == {k: a[k] for k in SAME}
    assert samples(two) == samples(one) and len(samples(one)) == a["generated"] > 0
    assert len(a["generated_by_process"]) == 1 and len(b["generated_by_process"]) == 2
    assert all(n > 0 for n in b["generated_by_process"])  # both processes generated their share
    for key in ("samples", "tokens", "truncated"):
        assert b["cost"][key] == a["cost"][key]
    return a, b


def test_relevel_under_two_processes_equals_one_process(tiny_model_dir, tmp_path):
    a, _ = one_and_two_processes(tiny_model_dir, tmp_path, "plain")
    assert a["candidates"] == 7 and a["generated"] == 7 * 4  # the random model never answers: k samples each


@pytest.mark.slow
def test_relevel_smollm2_under_two_processes_equals_one_process(smollm2_dir, tmp_path):
    a, _ = one_and_two_processes(smollm2_dir, tmp_path, "fewshot")
    print(json.dumps({k: a[k] for k in ("moves", "dropped", "kept", "generated")}))
