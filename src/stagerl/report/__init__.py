"""report: plots and a markdown report, reading only run-folder files."""

from .render import build_report

__all__ = ["build_report"]
