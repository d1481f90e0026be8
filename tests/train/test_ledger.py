"""Pool passes from the real mixed order, the cycling warning, and the report_to checks."""

import json

import pytest

from stagerl.config import StageConfig
from stagerl.curriculum import mixed_order
from stagerl.data.problem import Problem
from stagerl.train.ledger import add_ledger, cycle_warnings, pool_passes
from stagerl.train.observe import report_to


def pool(n_math: int, n_code: int) -> list[Problem]:
    return ([Problem(id=f"m{i}", domain="math", prompt="?", answer="1") for i in range(n_math)]
            + [Problem(id=f"c{i}", domain="code", prompt="?", tests={"inputs": [""], "outputs": ["1"]})
               for i in range(n_code)])


def test_pool_passes_count_the_steps_trained_and_warn_on_a_cycling_domain(tmp_path, capsys):
    problems = pool(60, 2)
    order = [p.domain for p in mixed_order(problems, 16, 2.1, 0, 20)]
    passes = pool_passes(order, problems, 20, 16)
    n_math = order.count("math")
    assert passes["math"] == pytest.approx(n_math / 60, abs=1e-3) and passes["code"] == pytest.approx((320 - n_math) / 2)
    assert pool_passes(order, problems, 10, 16)["code"] == pytest.approx(order[:160].count("code") / 2)
    [warning] = cycle_warnings(passes)
    assert warning.startswith("the code pool made") and "add code problems" in warning
    assert cycle_warnings(pool_passes([p.domain for p in mixed_order(pool(20, 10), 16, 2.1, 0, 20)],
                                      pool(20, 10), 20, 16)) == []

    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"step": 0, "dev_score": 0.5}, {"step": 1, "tokens": 100.0}, {"step": 2, "tokens": 50.0})) + "\n{torn")
    info = add_ledger({"steps": 20, "seconds": 12.5, "warnings": ["earlier"]}, tmp_path, order, problems, 16)
    assert info["cost"] == {"tokens": 150, "seconds": 12.5, "dev_tokens": 0, "dev_seconds": 0.0}
    assert info["pool_passes"] == passes and info["warnings"] == ["earlier", warning]
    assert "WARNING: the code pool made" in capsys.readouterr().err


def test_report_to_is_checked_before_training():
    assert report_to(StageConfig()) == ["tensorboard"] and report_to(StageConfig(report_to="none")) == []
    with pytest.raises(ValueError, match="report_to 'tensorbord' is not a logger"):
        report_to(StageConfig(report_to="tensorbord"))
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs the package 'wandb': pip install wandb"):
            report_to(StageConfig(report_to=["tensorboard", "wandb"]))
