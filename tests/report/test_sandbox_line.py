"""The report says which code isolation each stage graded under, and warns loudly when it was none."""

import json

from stagerl.report.render import build_report


def test_report_names_the_sandbox_and_warns_about_unsafe_limits(tmp_path):
    bwrap = {"mode": "bwrap", "status": "bwrap (root: ...): ..."}
    (tmp_path / "ledger.json").write_text(json.dumps({"total": {}, "sandbox": bwrap}))
    build_report(tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Code sandbox: `bwrap` (ledger.json)." in report and "WITHOUT isolation" not in report

    (tmp_path / "eval" / "base").mkdir(parents=True)
    unsafe = {"mode": "unsafe-limits", "status": "unsafe-limits: NOT ISOLATED ..."}
    (tmp_path / "eval" / "base" / "results.json").write_text(json.dumps({"b": {"pass@1": 0.5, "k": 1, "problems": 1,
                                                                              "sandbox": unsafe}}))
    html = build_report(tmp_path).read_text()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "> **Warning:** Model-written code ran WITHOUT isolation (`rewards.sandbox: unsafe-limits`)" in report
    assert "`unsafe-limits` (eval/base/results.json)" in report
    assert '<p class="warn">Model-written code ran WITHOUT isolation' in html
