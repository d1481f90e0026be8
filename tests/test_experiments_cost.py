"""What a seed of the experiments cost (``experiments/tables.py``'s cost table), from run folders
written as ``experiments/run.py`` and the stagerl commands write them."""

from __future__ import annotations

import json

from repo_files import load  # tests/ is on the path: conftest.py


def test_cost_table_counts_finished_commands_and_arms(tmp_path):
    """The cost of a seed: the shared commands that finished (history.jsonl; a failed attempt is not
    counted) plus each finished arm's experiment.json seconds; an arm not run yet marks it unfinished."""
    tables = load("experiments/tables.py")
    shared = tmp_path / "seed0" / "_shared"
    shared.mkdir(parents=True)
    rows = [{"time": "2026-12-05T02:00:00", "command": "score", "status": "failed: x", "end": "2026-12-05T02:30:00"},
            {"time": "2026-12-05T03:00:00", "command": "score", "status": "finished", "end": "2026-12-05T03:50:00"},
            {"time": "2026-12-05T03:50:00", "command": "eval", "status": "finished", "end": "2026-12-05T04:00:00"}]
    (shared / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "seed0" / "difficulty-L1").mkdir()
    (tmp_path / "seed0" / "difficulty-L1" / "experiment.json").write_text(json.dumps({"seconds": {"train": 1500, "eval": 300}}))
    cells = [c.strip() for c in tables.cost(tmp_path, [0]).splitlines()[2].strip("|").split("|")]
    assert cells[:3] == ["0", "60.0", "30.0"] and cells[3] == "–"
    assert cells[-1] == "1.5 (unfinished)"


def test_cost_counts_the_work_a_resumed_phase_keeps(tmp_path):
    """A stage killed and resumed: run.py clocks only the last attempt, while the stage's own running
    time (stage.json) and the stored evaluation samples keep the earlier attempts' work. The cost takes
    the larger per phase, so a resumed arm is not counted as its last attempt; the shared scoring
    likewise counts its ledger's sampling time when the finished commands cover less."""
    tables = load("experiments/tables.py")
    shared, arm = tmp_path / "seed0" / "_shared", tmp_path / "seed0" / "difficulty-L1"
    (shared / "eval" / "base").mkdir(parents=True)
    (shared / "history.jsonl").write_text(json.dumps({"time": "2026-12-05T03:00:00", "command": "score",
                                                      "status": "finished", "end": "2026-12-05T03:10:00"}) + "\n")
    (shared / "ledger.json").write_text(json.dumps({"total": {"samples": 10, "seconds": 1800.0}}))
    (shared / "eval" / "base" / "results.json").write_text(json.dumps({"h": {"pass@1": 0.1, "seconds": 600.0}}))
    (arm / "stages" / "1_L1").mkdir(parents=True)
    (arm / "stages" / "1_L1" / "stage.json").write_text(json.dumps({"steps": 12, "seconds": 5400.0}))
    for ck, sec in (("base", 9999.0), ("1_L1", 2400.0)):  # base: copied from _shared, not this arm's work
        (arm / "eval" / ck).mkdir(parents=True)
        (arm / "eval" / ck / "results.json").write_text(json.dumps({"h": {"pass@1": 0.2, "seconds": sec}}))
    (arm / "experiment.json").write_text(json.dumps({"seconds": {"levels": 60, "train": 600, "eval": 3000}}))
    cells = [c.strip() for c in tables.cost(tmp_path, [0]).splitlines()[2].strip("|").split("|")]
    assert cells[1] == "40.0"  # max(10 min of finished commands, 30 + 10 min kept)
    assert cells[2] == "141.0"  # 1 + max(10, 90) train + max(50, 40) eval
