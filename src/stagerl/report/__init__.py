"""report: one self-contained HTML page (and its markdown twin) per run, or for several runs,
reading only run-folder files."""

from .compare import build_comparison
from .render import build_report

__all__ = ["build_report", "build_comparison"]
