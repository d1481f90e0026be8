"""docs/results.md is what the clean-clone run's folders say: the committed snapshot of the run, restored
and read by ``experiments/tables.py``, reprints every table of the page and every plot beside it unchanged.
A hand edit inside a table, a table printer that changed its output, or a new snapshot without a new
page fails here."""

from __future__ import annotations

import subprocess
import sys

from repo_files import ROOT


def test_results_page_reprints_from_the_committed_run(tmp_path):
    runs, plots, page = tmp_path / "runs", tmp_path / "plots", tmp_path / "results.md"
    page.write_text((ROOT / "docs" / "results.md").read_text())
    subprocess.run([sys.executable, str(ROOT / "experiments" / "snapshot.py"), "restore", "--any-commit",
                    str(ROOT / "experiments" / "snapshots" / "clean-run.tar.xz"), str(runs)],
                   check=True, capture_output=True, cwd=tmp_path)
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "tables.py"), "--runs-dir", str(runs),
                           "--plots", str(plots), "--into", str(page)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    original, reprinted = (ROOT / "docs" / "results.md").read_text(), page.read_text()
    assert original.count("<!-- table: ") >= 8  # the page still has its tables between markers
    changed = [(a, b) for a, b in zip(original.splitlines(), reprinted.splitlines()) if a != b]
    assert reprinted == original, f"docs/results.md differs from its run folders: {changed[:3]}"
    made = sorted(p.name for p in plots.glob("*.png"))
    shown = sorted(p.name for p in (ROOT / "docs" / "results").glob("*.png"))
    assert made == shown and len(made) >= 28
    for name in made:
        assert (plots / name).read_bytes() == (ROOT / "docs" / "results" / name).read_bytes(), name
