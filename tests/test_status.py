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
