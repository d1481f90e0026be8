"""`stagerl status` on what is not a run: a clear error and exit status 2, nothing written. (A real run
read mid-stage, after a SIGKILL and after its resume: tests/train/test_resume.py.)"""

from stagerl.cli import main


def test_a_folder_that_is_no_run_is_an_error_naming_it(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert main(["status", str(tmp_path / "notes")]) == 2
    assert f"{tmp_path / 'notes'} is not a stagerl run folder" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "missing"), str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err  # each named; the command goes on past the first
    assert f"run folder not found: {tmp_path / 'missing'}" in err and f"{tmp_path / 'notes'} is not a stagerl" in err
    assert f"2 of 2 folder(s) could not be read: {tmp_path / 'missing'}, {tmp_path / 'notes'}" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["notes"]  # nothing written


def test_a_run_levelled_from_a_table_and_not_trained_yet(tmp_path, capsys):
    """A real run folder from `stagerl levels --table` (no model): how its last command ended, its levels
    as levels/stats.json has them, no scoring line (nothing was sampled), one line for the training to come."""
    import json

    import yaml

    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": f"{n}+{n}?", "answer": str(2 * n)}) + "\n"
                            for i, n in (("a", 1), ("b", 2), ("c", 3))))
    rules = {"models": {"small": "s", "big": "b"}, "keep": "big in (0,1]",
             "levels": {"L1": "small in (0,1)", "L2": {"all": ["small in [0,0]", "big in (0,1]"]}}}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "r", "runs_dir": str(tmp_path / "runs"), "data": [str(data)],
                                      "levels": {"rules": rules}, "train": {"policy": "smollm2-135m", "stages": [
                                          {"name": "one", "levels": ["L1"]}, {"name": "two", "levels": ["L2"]}]}}))
    table = tmp_path / "rates.csv"
    table.write_text("problem_id,domain,s,b\na,math,0.5,1\nb,math,0,0.5\nc,math,0,0.25\n")
    assert main(["levels", str(recipe), "--table", str(table)]) == 0
    run = tmp_path / "runs" / "r"
    stats = json.loads((run / "levels" / "stats.json").read_text())
    capsys.readouterr()
    assert main(["status", str(tmp_path / "runs")]) == 0  # a folder of run folders
    lines = capsys.readouterr().out.splitlines()
    sizes = " · ".join(f"{name} {info['total']}" for name, info in stats["levels"].items())
    assert lines[0] == str(run) and lines[1].startswith("  idle: last `stagerl levels` finished ")
    assert lines[2:] == [f"  levels: {sizes} (of {stats['problems']} problems)",
                         "  training: not started (stages 1_one, 2_two)"]
    assert stats["levels"]["L1"]["total"] == 1 and stats["levels"]["L2"]["total"] == 2
    # a folder of folders of runs (experiments/run.py's runs/experiments/seed<S>/<arm>), found below folders
    # that hold no run (logs/), and a run folder's own subfolders not searched
    import shutil

    nested = tmp_path / "experiments"
    for seed in ("seed0", "seed1"):
        shutil.copytree(run, nested / seed / "arm")
    (nested / "logs").mkdir()
    (nested / "seed1" / "arm" / "stages" / "inner" / "levels").mkdir(parents=True)
    assert main(["status", str(nested)]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert heads == [str(nested / "seed0" / "arm"), str(nested / "seed1" / "arm")]

    # an evaluation under way (or stopped): its benchmark store, written by the store the evaluator uses
    from stagerl.store import SampleStore

    with SampleStore(run / "eval" / "base" / "heldout.sqlite") as store:
        store.add({"problem_id": p, "model": "base", "idx": i, "text": "\\boxed{2}", "tokens": 5, "finish": "stop",
                   "reward": 1.0, "seconds": 45.0} for p in ("a", "b") for i in range(2))
    assert main(["status", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "  eval base: stopped (no results.json; no process works here); samples stored: heldout 4"
    with SampleStore(run / "eval" / "base" / "heldout.sqlite") as store:  # what score() records first
        store.register_problems([("a", "math"), ("b", "math"), ("c", "math")])
        store.set_meta("scoring", {"k": 2, "models": ["base"]})
    assert main(["status", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("samples stored: heldout 4 of 6, about 1 min 30 s left")
