"""The run report and the comparison page in headless Chromium: every image loads, and the numbers
on the page are the numbers in the run's files (read from the files here, never typed in).

The runs are real: the e2e pipeline run (``stagerl run`` on SmolLM2-135M, see conftest) and a
second run trained from its scores and levels with another learning rate and step count."""

import json
import shutil
import sqlite3

import pandas as pd
import pytest
import yaml

from stagerl.cli import main
from stagerl.report.read import fmt, fmt_ci, fmt_diff

SECTIONS = ["Difficulty scoring", "Levels", "Training", "Evaluation", "Cost ledger", "Sandbox"]


@pytest.fixture(scope="module")
def second_run(pipeline_run, tmp_path_factory):
    """``stagerl train`` + ``stagerl eval`` of another run on the first run's scores and levels."""
    root = tmp_path_factory.mktemp("runs_b")
    run = root / "e2e_b"
    shutil.copytree(pipeline_run, run, ignore=shutil.ignore_patterns("stages", "1_s", "report", "compare.json"))
    recipe = yaml.safe_load((pipeline_run / "recipe.yaml").read_text())
    recipe.update(name="e2e_b", runs_dir=str(root))
    recipe["train"]["stages"][0].update(learning_rate=3e-5, max_steps=2)
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path)]) == 0
    assert main(["eval", str(path)]) == 0
    return run


def _results(run):
    return {d.name: json.loads((d / "results.json").read_text()) for d in (run / "eval").iterdir()
            if (d / "results.json").exists()}


def _assert_images_loaded(page, at_least):
    assert page["images"], "the page has no images"
    for img in page["images"]:
        assert img["inline"] and img["complete"] and img["width"] > 0 and img["height"] > 0, img
    assert at_least <= {i["id"] for i in page["images"]}
    assert page["external"] == []  # self-contained: nothing loaded from elsewhere


def test_run_report_in_chromium(pipeline_run, browser, tmp_path):
    assert main(["report", str(pipeline_run)]) == 0
    page = browser(pipeline_run / "report" / "index.html", tmp_path / "profile")
    assert page["headings"] == SECTIONS
    _assert_images_loaded(page, {"fig-pass_rates", "fig-levels", "fig-training", "fig-benchmarks", "fig-passk"})
    tables = page["tables"]

    table = pd.read_parquet(pipeline_run / "pass_rates.parquet")
    ledger = json.loads((pipeline_run / "ledger.json").read_text())
    row = tables["table-scoring"][1]
    assert row[:4] == ["smollm2", str(len(table)), str(int(table["samples"].sum())), fmt(table["pass_rate"].mean())]
    assert row[7] == fmt(ledger["models"]["smollm2"]["tokens"])

    stats = json.loads((pipeline_run / "levels" / "stats.json").read_text())
    assert tables["table-levels"][1][:2] == ["all", str(stats["levels"]["all"]["total"])]

    results = _results(pipeline_run)
    header, *rows = tables["table-eval"]
    assert header[3:5] == ["base", "1_s"]
    for r in rows:
        bench = r[0]
        assert r[1:3] == [str(results["base"][bench]["k"]), str(results["base"][bench]["problems"])]
        assert r[3:5] == [fmt_ci(results["base"][bench]), fmt_ci(results["1_s"][bench])]
        assert r[5] == results["base"][bench].get("note", "-")
    assert {r[0] for r in rows} == set(results["base"])
    assert any("subset" in n for n in page["notes"])  # heldout_code is a subset: said next to the number

    pairs = json.loads((pipeline_run / "eval" / "compare.json").read_text())["pairs"]
    shown = tables["table-paired"][1:]
    assert [[p["benchmark"], fmt_diff(p), fmt(p["p_value"])] for p in pairs] == [[r[0], r[5], r[6]] for r in shown]

    trunc = {(r[0], r[1]): r[3] for r in tables["table-truncation"][1:]}
    for ckpt, res in results.items():
        for bench, r in res.items():
            assert trunc[(bench, ckpt)] == fmt(r["truncated_share"])
    passk = {(r[0], r[1]): r[2:] for r in tables["table-passk"][1:]}
    assert passk[("heldout", "1_s")] == [fmt(results["1_s"]["heldout"]["pass@k"][k]["value"]) for k in ("1", "2")]

    stage = json.loads((pipeline_run / "stages" / "1_s" / "stage.json").read_text())
    assert tables["table-training"][1][:4] == ["1_s", "all", str(stage["steps"]), stage["reason"]]
    # the held-out dev curve (a step-0 baseline and step 1) and the signal meter, as training wrote them
    metrics = [json.loads(line) for line in (pipeline_run / "stages" / "1_s" / "metrics.jsonl").read_text().splitlines()]
    dev = [m["dev_score"] for m in metrics if m.get("dev_score") is not None]
    assert len(dev) == 2 and tables["table-training"][1][6:8] == [fmt(dev[0]), fmt(dev[-1])]
    assert any(m.get("signal") is not None for m in metrics)
    _assert_images_loaded(page, {"fig-signal"})
    # files this run does not have are said briefly, not failed on
    assert any("relevel.json" in m for m in page["missing"])


def _store_counts(path, model, k):
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT problem_id, COUNT(*), SUM(reward >= 1 - 1e-9) FROM samples "
                          "WHERE model = ? AND idx < ? GROUP BY problem_id", (model, k)).fetchall()
    return {pid: c / n for pid, n, c in rows}


def test_compare_two_runs_in_chromium(pipeline_run, second_run, browser, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(pipeline_run), str(second_run), "--out", str(out)]) == 0
    page = browser(out / "index.html", tmp_path / "profile")
    assert page["headings"] == ["Runs", "Curves over training", "Final scores", "Paired differences"]
    _assert_images_loaded(page, {"fig-reward", "fig-benchmarks_over_steps"})
    tables = page["tables"]

    runs = {"e2e": _results(pipeline_run), "e2e_b": _results(second_run)}
    header, *rows = tables["table-final"]
    assert header[3:5] == ["e2e", "e2e_b"]
    for r in rows:
        assert r[3:5] == [fmt_ci(runs["e2e"]["1_s"][r[0]]), fmt_ci(runs["e2e_b"]["1_s"][r[0]])]
    steps = {r[0]: r[3] for r in tables["table-runs"][1:]}
    assert steps == {"e2e": "1", "e2e_b": "2"}

    # paired differences: recomputed here from the two eval stores, pairing by problem id
    shown = {r[0]: r for r in tables["table-paired"][1:]}
    assert set(shown) == set(runs["e2e"]["1_s"])
    saved = {p["benchmark"]: p for p in json.loads((out / "compare.json").read_text())["pairs"]}
    for bench, r in shown.items():
        k = runs["e2e"]["1_s"][bench]["k"]
        a = _store_counts(second_run / "eval" / "1_s" / f"{bench}.sqlite", "1_s", k)
        b = _store_counts(pipeline_run / "eval" / "1_s" / f"{bench}.sqlite", "1_s", k)
        ids = set(a) & set(b)
        diff = sum(a[i] - b[i] for i in ids) / len(ids)
        assert r[1] == "e2e_b:1_s − e2e:1_s" and r[2] == str(len(ids))
        assert r[5] == fmt_diff(saved[bench]) and saved[bench]["diff"] == pytest.approx(diff)
        assert r[6] == fmt(saved[bench]["p_value"])
