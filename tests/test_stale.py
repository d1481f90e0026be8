"""Nothing stale reused silently (issue 9): changed answers re-grade, changed prompts stop, level
files are replaced as a set, training refuses levels of an older table, a refused command keeps
the run folder's record; text that is not valid UTF-8 is stored and graded.

Scoring goes through the real ``openai`` engine to a loopback server (``openai_stub``) that
answers ``\\boxed{7}`` to everything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helper module beside this file
from openai_stub import StubServer  # noqa: E402
from stagerl.cli import main  # noqa: E402
from stagerl.store import SampleStore  # noqa: E402


def write_problems(path: Path, answers: dict[str, str], prompts: dict[str, str] | None = None) -> None:
    prompts = prompts or {}
    path.write_text("".join(json.dumps({"id": pid, "domain": "math", "prompt": prompts.get(pid, f"Problem {pid}?"),
                                        "answer": a}) + "\n" for pid, a in answers.items()))


def recipe_file(tmp: Path, url: str, model_dir: str, levels: dict | None = None, stage_levels=("all",),
                max_tokens: int = 8) -> Path:
    recipe = {
        "name": "r", "runs_dir": str(tmp / "runs"), "data": [str(tmp / "p.jsonl")],
        "scoring": {"k": 2, "adaptive": False, "sampling": {"max_tokens": max_tokens},
                    "models": [{"name": "srv", "model": "stub", "engine": "openai", "options": {"base_url": url}}]},
        "levels": {"rules": {"models": {"policy": "srv"}, "levels": levels or {"all": "policy in [0,1]"}}},
        "train": {"policy": model_dir, "stages": [{"name": "s", "levels": list(stage_levels), "num_generations": 2,
                                                   "prompts_per_step": 2, "max_steps": 1, "max_completion_length": 8,
                                                   "plateau": None, "math_code_ratio": None}]},
    }
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def rates(tmp: Path) -> dict[str, float]:
    t = pd.read_parquet(tmp / "runs" / "r" / "pass_rates.parquet")
    return dict(zip(t["problem_id"], t["pass_rate"]))


def test_changed_answer_regrades_stored_samples(tmp_path, tiny_model_dir, capsys):
    write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "8"})
    with StubServer() as srv:
        path = recipe_file(tmp_path, srv.url, tiny_model_dir)
        assert main(["score", str(path)]) == 0
        assert rates(tmp_path) == {"a": 1.0, "b": 0.0}
        sent = srv.requests
        write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "7"})  # b's gold answer corrected
        capsys.readouterr()
        assert main(["score", str(path)]) == 0
        assert srv.requests == sent  # nothing generated again: the stored texts were re-graded
    assert rates(tmp_path) == {"a": 1.0, "b": 1.0}
    assert "re-graded their 2 stored sample(s)" in capsys.readouterr().err


def test_changed_prompt_stops_naming_it_then_rescores_on_request(tmp_path, tiny_model_dir, capsys):
    write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "8"})
    run = tmp_path / "runs" / "r"
    with StubServer() as srv:
        path = recipe_file(tmp_path, srv.url, tiny_model_dir)
        assert main(["score", str(path)]) == 0
        history = (run / "history.jsonl").read_text()
        write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "8"}, prompts={"b": "Another question?"})
        sent = srv.requests
        assert main(["score", str(path)]) == 2
        err = capsys.readouterr().err
        assert "problem(s) 'b' changed" in err and "--rescore-changed" in err
        assert srv.requests == sent and (run / "history.jsonl").read_text() == history  # refused: nothing recorded
        assert main(["score", str(path), "--rescore-changed"]) == 0
        assert srv.requests > sent
    with SampleStore(run / "samples.sqlite") as store:
        assert store.counts() == {("a", "srv"): 2, ("b", "srv"): 2}


def test_refused_command_keeps_recipe_and_history(tmp_path, tiny_model_dir, capsys):
    write_problems(tmp_path / "p.jsonl", {"a": "7"})
    run = tmp_path / "runs" / "r"
    with StubServer() as srv:
        path = recipe_file(tmp_path, srv.url, tiny_model_dir)
        assert main(["score", str(path)]) == 0
        before = ((run / "recipe.yaml").read_text(), (run / "history.jsonl").read_text())
        lines = [json.loads(x) for x in before[1].splitlines()]
        assert [x["status"] for x in lines] == ["started", "finished"] and lines[0]["command"] == "score"
        recipe_file(tmp_path, srv.url, tiny_model_dir, max_tokens=9)  # other sampling settings than stored
        assert main(["score", str(path)]) == 2
        assert "made with other settings" in capsys.readouterr().err
        recipe_file(tmp_path, srv.url, tiny_model_dir, stage_levels=("L9",))  # fails the checks
        assert main(["score", str(path)]) == 2
    assert ((run / "recipe.yaml").read_text(), (run / "history.jsonl").read_text()) == before


def test_levels_replaced_as_a_set_and_train_refuses_stale_levels(tmp_path, tiny_model_dir, capsys):
    write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "8"})
    levels_dir = tmp_path / "runs" / "r" / "levels"
    with StubServer() as srv:
        path = recipe_file(tmp_path, srv.url, tiny_model_dir, {"all": "policy in [0,1]", "old": "policy in [1,1]"})
        assert main(["score", str(path)]) == 0 and main(["levels", str(path)]) == 0
        assert sorted(p.name for p in levels_dir.glob("*.parquet")) == ["all.parquet", "old.parquet"]
        path = recipe_file(tmp_path, srv.url, tiny_model_dir, {"all": "policy in [0,1]", "new": "policy in [1,1]"},
                           stage_levels=("new",))
        assert main(["levels", str(path)]) == 0
        assert sorted(p.name for p in levels_dir.glob("*.parquet")) == ["all.parquet", "new.parquet"]
        stats = json.loads((levels_dir / "stats.json").read_text())
        assert stats["inputs"]["rules"]["levels"] == {"all": "policy in [0,1]", "new": "policy in [1,1]"}
        write_problems(tmp_path / "p.jsonl", {"a": "7", "b": "7"})
        assert main(["score", str(path)]) == 0  # re-graded: the table changed, the levels did not
        capsys.readouterr()
        assert main(["train", str(path)]) == 2
        assert "built from an older version of" in capsys.readouterr().err
        assert main(["levels", str(path)]) == 0
        path = recipe_file(tmp_path, srv.url, tiny_model_dir, {"all": "policy in [0,1]", "new": "policy in [0.5,1]"},
                           stage_levels=("new",))
        assert main(["train", str(path)]) == 2
        assert "built with other level rules" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "r" / "stages").exists()


@pytest.mark.parametrize("content, raw", [("\\\\boxed{7} \\ud800", None), (None, b"\\\\boxed{7} \xff\xfe")],
                         ids=["lone-surrogate-escape", "invalid-utf8-bytes"])
def test_text_that_is_not_utf8_is_stored_and_graded(content, raw, tmp_path, tiny_model_dir):
    write_problems(tmp_path / "p.jsonl", {"a": "7"})
    with StubServer(content or "", raw) as srv:
        assert main(["score", str(recipe_file(tmp_path, srv.url, tiny_model_dir))]) == 0
    with SampleStore(tmp_path / "runs" / "r" / "samples.sqlite") as store:
        rows = store.samples()
    assert len(rows) == 2 and all(r["reward"] == 1.0 and "\ufffd" in r["text"] for r in rows)
    assert rates(tmp_path) == {"a": 1.0}
