"""What travels to a GPU machine with no network for ``scripts/gpu_check.py`` (issue 19), fetched here.

That machine has torch, transformers and accelerate; TRL, datasets, Math-Verify and DeepSpeed (and the
small packages they need that such an image may lack) travel as files in ``DIR``:

    python scripts/gpu_wheels.py DIR [--python-version 3.12] [--with pandas,pyarrow] [--list]

* binary wheels of ``CORE`` for CPython on manylinux x86_64 (``pip download --no-deps``, pinned: the
  versions the suite tests);
* DeepSpeed's source archive (PyPI has no current DeepSpeed wheel); it installs there without
  compiling anything (``DS_BUILD_OPS=0``: its ops are built just in time when used);
* ``IF_MISSING`` packages only when asked (``--with``): large wheels a GPU image usually has
  (run ``gpu_check.py --preflight`` there first: it lists the missing modules);
* ``tokenizer/``: the embedded SmolLM2's tokenizer (the check's tiny Llama uses it).

It prints each file's size, the total against the 64 MiB a device call may carry, and the commands to run
there. Nothing here has run on a GPU machine yet.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CORE = ("trl==1.16.0", "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19", "xxhash==4.1.0",
        "fsspec==2026.9.0", "math-verify==0.9.0", "latex2sympy2_extended==1.11.0", "antlr4-python3-runtime==4.13.2",
        "einops==0.8.2", "hjson==3.1.0", "msgpack==1.2.4", "ninja==1.13.2", "py-cpuinfo==9.0.0")
"""Wheels that always travel: TRL and datasets with their small dependencies, Math-Verify and its parser,
DeepSpeed's pure-Python dependencies."""
SDIST = ("deepspeed==0.18.6",)
IF_MISSING = {"pandas": "pandas==3.1.1", "pyarrow": "pyarrow==26.0.1"}
"""Large wheels (about 12 and 55 MB) datasets needs, brought only with ``--with``."""
LIMIT_MIB = 64
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any")


def download(specs: list[str], out: Path, python: str, binary: bool) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(out)]
    if binary:
        cmd += ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
        for p in PLATFORMS:
            cmd += ["--platform", p]
    else:
        cmd += ["--no-binary=:all:"]
    subprocess.run(cmd + specs, check=True)


def install_lines(out: str) -> list[str]:
    sdists = " ".join(f"{out}/{s.replace('==', '-')}.tar.gz" for s in SDIST)
    return [f"python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site {out}/*.whl",
            f"DS_BUILD_OPS=0 python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site "
            f"{sdists}",
            "export PYTHONPATH=/tmp/site",
            f"python3 scripts/gpu_check.py --preflight && python3 scripts/gpu_check.py --tokenizer {out}/tokenizer"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="folder for the wheels (created)")
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python (default 3.12)")
    ap.add_argument("--with", dest="extra", default="", help=f"also bring these: {', '.join(IF_MISSING)}")
    ap.add_argument("--list", action="store_true", help="print what would travel and the install commands; fetch nothing")
    a = ap.parse_args()
    extra = [IF_MISSING[n] for n in filter(None, a.extra.split(","))]
    if a.list or not a.dir:
        print("\n".join([*CORE, *extra, *(f"{s} (source)" for s in SDIST)]))
        print("\nthere:\n  " + "\n  ".join(install_lines(a.dir or "DIR")))
        return 0
    out = Path(a.dir)
    out.mkdir(parents=True, exist_ok=True)
    download([*CORE, *extra], out, a.python_version, binary=True)
    download(list(SDIST), out, a.python_version, binary=False)
    from transformers import AutoTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from stagerl.models import resolve_model

    AutoTokenizer.from_pretrained(resolve_model("smollm2-135m")).save_pretrained(out / "tokenizer")
    files = sorted(f for f in out.rglob("*") if f.is_file())
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f.stat().st_size / 2**20:8.2f} MiB  {f.relative_to(out)}")
    print(f"{total / 2**20:8.2f} MiB  total ({'within' if total <= LIMIT_MIB * 2**20 else 'OVER'} {LIMIT_MIB} MiB)")
    print("\nthere:\n  " + "\n  ".join(install_lines(str(out))))
    return 0 if total <= LIMIT_MIB * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
