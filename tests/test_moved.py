"""The modules moved in 0.2 (``stagerl/_moved.py``) still import under their old names, for one
release, with a DeprecationWarning, and give the very same module object as the new path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from stagerl._moved import MOVED


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_path_warns_and_is_the_new_module(old, new):
    code = (f"import warnings, importlib\n"
            f"with warnings.catch_warnings(record=True) as w:\n"
            f"    warnings.simplefilter('always')\n"
            f"    import {old} as a\n"
            f"b = importlib.import_module({new!r})\n"
            f"assert a is b, (a, b)\n"
            f"assert any(issubclass(x.category, DeprecationWarning) and {new!r} in str(x.message) for x in w), w\n")
    # a fresh interpreter: in this one the old name may already be cached
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_new_paths_import_without_old_files():
    import stagerl

    root = stagerl.__path__[0]
    for old, new in MOVED.items():
        importlib.import_module(new)
        rel = old.removeprefix("stagerl.").replace(".", "/")
        assert not importlib.util.find_spec(new) is None
        assert not __import__("os").path.exists(f"{root}/{rel}.py"), f"{rel}.py still lies beside its new home"
