"""`stagerl status` on what is not a run: a clear error and exit status 2, nothing written. (A real run
read mid-stage, after a SIGKILL and after its resume: tests/train/test_resume.py.)"""

from stagerl.cli import main


def test_a_folder_that_is_no_run_is_an_error_naming_it(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert main(["status", str(tmp_path / "notes")]) == 2
    assert f"{tmp_path / 'notes'} is not a stagerl run folder" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "missing")]) == 2
    assert f"run folder not found: {tmp_path / 'missing'}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["notes"]  # nothing written
