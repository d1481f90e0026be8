"""The pass-rate table and ledger, rebuilt from a sample store alone."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from stagerl.scoring import TABLE_COLUMNS, ledger, pass_rate_table, rate_bounds, write_table
from stagerl.store import SampleStore


def _row(pid, model, idx, reward, tokens=10, finish="stop", seconds=0.25, domain="math"):
    return {"problem_id": pid, "model": model, "idx": idx, "domain": domain, "text": "t", "tokens": tokens,
            "finish": finish, "reward": reward, "seconds": seconds}


@pytest.fixture
def store(tmp_path):
    s = SampleStore(tmp_path / "samples.sqlite")
    s.register_problems([("b", "math"), ("a", "code")])
    s.set_meta("scoring", {"k": 4, "models": ["weak", "strong"]})
    rows = [_row("b", "weak", i, r, tokens=10 * (i + 1)) for i, r in enumerate([1.0, 0.0, 1.0, 0.0])]
    rows += [_row("b", "strong", i, 1.0, finish="length") for i in range(2)]  # stopped after 2 of 4
    # code: partial credit is not a success; an index >= k (an older, larger-k run) is not counted
    rows += [_row("a", "weak", i, r, domain="code") for i, r in enumerate([0.5, 1.0, 0.999999999999, 0.0, 1.0])]
    s.add(rows)
    return s


def test_table_counts_successes_bounds_and_early_stops(store):
    t = pass_rate_table(store)
    assert list(t.columns) == TABLE_COLUMNS
    assert list(zip(t["problem_id"], t["model"])) == [("b", "weak"), ("b", "strong"), ("a", "weak"), ("a", "strong")]
    r = t.set_index(["problem_id", "model"])
    assert r.loc[("b", "weak"), ["samples", "successes", "pass_rate"]].tolist() == [4, 2, 0.5]
    assert r.loc[("b", "weak"), "max_tokens"] == 40 and r.loc[("b", "weak"), "mean_tokens"] == 25
    assert r.loc[("b", "weak"), "rate_lo"] == r.loc[("b", "weak"), "rate_hi"] == 0.5
    assert not r.loc[("b", "weak"), "decided_early"]
    strong = r.loc[("b", "strong")]
    assert (strong["samples"], strong["successes"], strong["truncated"]) == (2, 2, 2)
    assert (strong["rate_lo"], strong["rate_hi"]) == rate_bounds(2, 2, 4) == (0.5, 1.0)
    assert strong["decided_early"] and strong["rate_lo"] <= strong["pass_rate"] <= strong["rate_hi"]
    code = r.loc[("a", "weak")]
    assert (code["samples"], code["successes"], code["domain"]) == (4, 2, "code")
    assert code["mean_reward"] == pytest.approx((0.5 + 1.0 + 0.999999999999) / 4)
    empty = r.loc[("a", "strong")]  # never sampled: listed, with the widest bounds
    assert empty["samples"] == 0 and math.isnan(empty["pass_rate"]) and (empty["rate_lo"], empty["rate_hi"]) == (0, 1)


def test_rate_bounds_contain_every_completion():
    k = 5
    for drawn in range(k + 1):
        for s in range(drawn + 1):
            lo, hi = rate_bounds(s, drawn, k)
            finals = [(s + extra) / k for extra in range(k - drawn + 1)]
            assert (lo, hi) == (min(finals), max(finals))
            if drawn:
                assert lo <= s / drawn <= hi  # the table's point estimate lies in the bounds
    with pytest.raises(ValueError):
        rate_bounds(3, 2, 4)


def test_ledger_and_files_rebuilt_from_the_store_alone(store, tmp_path):
    led = ledger(store)
    assert list(led["models"]) == ["weak", "strong"]
    assert led["models"]["weak"]["samples"] == 9 and led["models"]["weak"]["tokens"] == 100 + 50
    assert led["models"]["strong"]["truncated"] == 2
    assert led["total"] == {"samples": 11, "tokens": 170, "truncated": 2, "seconds": pytest.approx(11 * 0.25)}
    out = tmp_path / "out"
    table = write_table(SampleStore(store.path), out)  # a fresh handle: only the file is used
    assert pd.read_parquet(out / "pass_rates.parquet").equals(table)
    assert json.loads((out / "ledger.json").read_text())["total"]["samples"] == 11
    assert not list(out.glob(".*tmp"))
    only = pass_rate_table(store, problems=[("b", "math")], models=["strong"], k=2)
    assert only[["samples", "successes", "decided_early"]].values.tolist() == [[2, 2, False]]


def test_table_needs_k(tmp_path):
    with pytest.raises(ValueError, match="no k recorded"):
        pass_rate_table(SampleStore(tmp_path / "s.sqlite"))
