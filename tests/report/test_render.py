"""The report on partial run folders (no model needed): absent files are said, not failed on."""

import pytest

from stagerl.cli import main
from stagerl.report import build_comparison, build_report
from stagerl.report.plots import Palette


def test_empty_run_folder_says_what_is_missing(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    html = build_report(run)
    text = html.read_text()
    md = (run / "report" / "report.md").read_text()
    for section in ("Difficulty scoring", "Levels", "Training", "Evaluation", "Cost ledger", "Sandbox"):
        assert "<h2 id=" in text and f">{section}</h2>" in text and f"## {section}" in md
    for missing in ("No pass_rates.parquet", "No levels/stats.json", "No stages/", "No eval/*/results.json",
                    "No cost recorded", "No sandbox mode recorded"):
        assert missing in text and missing in md


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_compare_needs_two_existing_runs(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="at least two"):
        build_comparison([tmp_path / "a"], tmp_path / "out")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_two_empty_runs_compare_without_failing(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    html = build_comparison([tmp_path / "a", tmp_path / "b"], tmp_path / "out").read_text()
    assert "No dev_score rows" in html and "No run has an evaluated checkpoint" in html


def test_palette_gives_a_name_one_colour():
    p = Palette(["L1", "L2"])
    assert p["L1"] != p["L2"] and p["L1"] == Palette(["L1"])["L1"]
    assert p["base"] == "#7f7f7f" and p["L3"] not in (p["L1"], p["L2"], p["base"])


def test_eval_names_a_bad_benchmark_before_loading_a_model(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: x\nruns_dir: {tmp_path}\n")
    assert main(["eval", str(recipe), "--benchmark", "no_such_set", "--checkpoint", "base=/nonexistent"]) == 2
    assert "no_such_set" in capsys.readouterr().err
