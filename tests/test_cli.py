"""The CLI: every stage has --help, and bad input is a clear error, not a traceback."""

import subprocess
import sys

import pytest

from stagerl.cli import main

STAGES = ["check", "score", "levels", "train", "eval", "report", "status", "compare", "run", "demo", "recipe"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_help(stage, capsys):
    with pytest.raises(SystemExit) as e:
        main([stage, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: stagerl {stage}")


def test_console_script_lists_the_stages():
    out = subprocess.run([sys.executable, "-m", "stagerl.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for stage in STAGES:
        assert stage in out


def test_bad_recipe_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("scoring: {k: many}\n")
    assert main(["score", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "r.yaml: scoring.k: expected int" in err and "Traceback" not in err


def test_traceback_on_request_for_bug_reports_and_unattended_logs(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "r.yaml"
    bad.write_text("scoring: {k: many}\n")
    monkeypatch.setenv("STAGERL_TRACEBACK", "1")
    assert main(["score", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.index("Traceback (most recent call last)") < err.index("r.yaml: scoring.k: expected int")
    assert "config" in err.split("r.yaml: scoring.k")[0]  # the frames name the module that raised it


def test_missing_levels_is_a_clear_error(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: x\nruns_dir: {tmp_path}\ntrain: {{policy: {tmp_path}, stages: [{{name: s}}]}}\n")
    assert main(["train", str(recipe)]) == 2
    assert "levels" in capsys.readouterr().err
