"""What the sandbox test files share: a passing program, its test, and markdown wrapping."""

from __future__ import annotations

import os
from pathlib import Path

import stagerl

ECHO = {"inputs": ["hi\n"], "outputs": ["hi\n"]}
GOOD = "```python\nprint(input())\n```"
ROOT = os.geteuid() == 0
SRC = str(Path(stagerl.__file__).resolve().parents[1])  # the package's src folder


def md(code: str, lang: str = "python") -> str:
    """``code`` as a model would answer it: one fenced block."""
    return f"```{lang}\n{code.strip()}\n```"
