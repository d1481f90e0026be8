"""Loaders: every format, field mapping, domain inference, and errors that name file, row, field."""

import gzip
import json

import pandas as pd
import pytest

from stagerl.data import LoadError, load_file, load_hf, load_source

ROWS = [
    {"id": "m1", "problem": "What is 2+2?", "answer": "4", "subject": "arith"},
    {"id": "c1", "problem": "Print a+b.", "tests": {"inputs": ["1 2\n"], "outputs": ["3\n"]}},
    {"id": "c2", "problem": "Add.", "tests": json.dumps({"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"})},
]


def write(path, rows, fmt):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "jsonl.gz":
        with gzip.open(path, "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "json-data":
        path.write_text(json.dumps({"data": rows}))
    elif fmt == "parquet":
        pd.DataFrame([{**r, "tests": json.dumps(r["tests"]) if isinstance(r.get("tests"), dict) else r.get("tests")}
                      for r in rows]).to_parquet(path)
    return path


@pytest.mark.parametrize("fmt,suffix", [("jsonl", ".jsonl"), ("jsonl.gz", ".jsonl.gz"), ("json", ".json"),
                                        ("json-data", ".json"), ("parquet", ".parquet")])
def test_each_format_loads_math_and_code(tmp_path, fmt, suffix):
    ps = load_file(write(tmp_path / f"p{suffix}", ROWS, fmt))
    assert [p.id for p in ps] == ["m1", "c1", "c2"]
    assert [p.domain for p in ps] == ["math", "code", "code"]
    assert ps[0].answer == "4" and ps[0].meta["subject"] == "arith"
    assert ps[1].tests == {"inputs": ["1 2\n"], "outputs": ["3\n"]}
    assert ps[2].tests["fn_name"] == "add" and ps[2].tests["outputs"] == [3]  # JSON string parsed


def test_field_mapping_and_given_domain(tmp_path):
    path = write(tmp_path / "q.jsonl", [{"qid": 7, "question": "1+1?", "solution": 2}], "jsonl")
    (p,) = load_file(path, fields={"id": "qid", "prompt": "question", "answer": "solution"}, domain="math")
    assert (p.id, p.prompt, p.answer, p.domain) == ("7", "1+1?", "2", "math")


@pytest.mark.parametrize("row, field", [
    ({"id": "x", "problem": "", "answer": "1"}, "prompt"),
    ({"id": "x", "problem": "p"}, "answer"),  # issue 25: the missing field, not "cannot tell math from code"
    ({"id": "x", "problem": "p", "tests": {"inputs": [1, 2], "outputs": [1]}}, "tests"),
    ({"id": "x", "problem": "p", "tests": "{not json"}, "tests"),
    ({"id": "x", "problem": "p", "answer": "1", "domain": "poetry"}, "domain"),
])
def test_bad_row_error_names_file_row_and_field(tmp_path, row, field):
    path = write(tmp_path / "bad.jsonl", [ROWS[0], row], "jsonl")
    with pytest.raises(LoadError) as e:
        load_file(path)
    msg = str(e.value)
    assert "bad.jsonl" in msg and "line 2" in msg and f"field '{field}'" in msg and "skip_bad: true" in msg and "skip_bad=True" in msg


def test_one_error_names_every_bad_row(tmp_path):
    bad = {"id": "b", "problem": "p"}  # neither an answer nor tests
    rows = [ROWS[0], {**bad, "id": "b1"}, ROWS[1], {**bad, "id": "b2"}] + [{**bad, "id": f"x{i}"} for i in range(6)]
    with pytest.raises(LoadError) as e:
        load_file(write(tmp_path / "many.jsonl", rows, "jsonl"))
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'many.jsonl'}: line 2: ")
    assert "(7 more bad row(s): line 4, line 5, line 6, line 7, line 8, ...)" in msg
    one = str(pytest.raises(LoadError, load_file, write(tmp_path / "one.jsonl", rows[:2], "jsonl")).value)
    assert "line 2" in one and "more bad row" not in one


def test_invalid_json_line_and_duplicate_ids(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    with pytest.raises(LoadError, match=r"b.jsonl: line 2: not valid JSON"):
        load_file(path)
    path = write(tmp_path / "d.json", [ROWS[0], ROWS[0]], "json")
    with pytest.raises(LoadError, match=r"d.json: row 1: field 'id': duplicate id 'm1' \(first seen at row 0\)"):
        load_file(path)


def test_skip_bad_reports_the_count(tmp_path):
    path = write(tmp_path / "s.jsonl", [ROWS[0], {"id": "y", "problem": "p"}, ROWS[1], {"id": "z"}], "jsonl")
    with pytest.warns(UserWarning, match="skipped 2 bad row"):
        ps = load_file(path, skip_bad=True)
    assert [p.id for p in ps] == ["m1", "c1"]
    assert ps.skipped == 2 and "line 2" in ps.skipped_rows[0] and "line 4" in ps.skipped_rows[1]


def test_load_hf_from_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    write(folder / "train.jsonl", ROWS[:2], "jsonl")
    ps = load_hf(str(folder), split="train")
    assert [p.id for p in ps] == ["m1", "c1"]
    ps = load_source({"hf": str(folder), "limit": 1})
    assert len(ps) == 1


def test_load_source_forms(tmp_path):
    path = write(tmp_path / "a.jsonl", ROWS, "jsonl")
    assert len(load_source(str(path))) == 3 and len(load_source({"path": str(path), "limit": 2})) == 2
    assert len(load_source("builtin:aime24")) == 30
    with pytest.raises(ValueError, match="exactly one of"):
        load_source({"path": str(path), "builtin": "aime24"})
    with pytest.raises(ValueError, match="unknown key 'splt'"):
        load_source({"hf": "x", "splt": "train"})
    with pytest.raises(FileNotFoundError):
        load_source(str(tmp_path / "missing.jsonl"))


def test_mapping_typo_is_an_error_not_ignored(tmp_path):
    path = write(tmp_path / "t.jsonl", ROWS[:1], "jsonl")
    with pytest.raises(ValueError, match=r"t.jsonl: fields: unknown field 'promt'"):
        load_file(path, fields={"promt": "question"})


def test_given_domain_wins_over_a_domain_column_and_leftovers_go_to_meta(tmp_path):
    # Omni-MATH style: a 'domain' column that holds a subject, not math/code
    rows = [{"id": 1, "problem": "p", "answer": 27.0, "domain": ["Algebra"], "tests": {"inputs": [1], "outputs": [1]}}]
    (p,) = load_file(write(tmp_path / "o.jsonl", rows, "jsonl"), domain="math")
    assert (p.domain, p.answer, p.tests) == ("math", "27", None)
    assert p.meta["domain"] == ["Algebra"] and p.meta["tests"] == {"inputs": [1], "outputs": [1]}


def test_load_source_rejects_options_of_another_kind(tmp_path):
    path = write(tmp_path / "a.jsonl", ROWS, "jsonl")
    with pytest.raises(ValueError, match="unknown key 'n' for a path source"):
        load_source({"path": str(path), "n": 5})
    with pytest.raises(ValueError, match="unknown key 'domain' for a builtin source"):
        load_source({"builtin": "aime24", "domain": "code"})
    with pytest.raises(ValueError, match="'limit' must be a positive integer"):
        load_source({"path": str(path), "limit": 0})
    assert [p.id for p in load_source({"builtin": "demo_math", "n": 7, "seed": 2, "limit": 3})] == \
        [p.id for p in load_source({"builtin": "demo_math", "n": 7, "seed": 2})][:3]
