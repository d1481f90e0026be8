"""Benchmark: wall time of test files on pytest-xdist workers, torch's threads shared out among the
workers (tests/conftest.py: ``cores // workers`` each) vs a thread per core in every process.

``make test`` runs two workers on CI's two cores. Each worker starts processes of its own (stage
children, accelerate ranks, the CLI); with torch's default of a thread per core in each of them,
the cores are oversubscribed and a small model's step is mostly threads waiting for each other.
Both arms run the same test files with ``-n WORKERS --dist loadgroup`` (as ``make test``):

* anchor: ``OMP_NUM_THREADS`` = the cores this process may use (torch's own default);
* ours: ``OMP_NUM_THREADS`` unset, so that tests/conftest.py sets ``cores // workers``.

The default tests are five of the slowest training test files (tiny and 135M models, two-process
training, SIGKILL and resume). Goal: ours ≤ 0.85 × the anchor's wall time, and both runs pass.
The arms run one after the other (``--order`` chooses which first): on a shared box, say the load.

    .venv/bin/python benchmarks/suite_threads.py                 # about 30 min on 2 cores
    .venv/bin/python benchmarks/suite_threads.py --tests tests/train/test_grpo.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.85
TESTS = ["tests/test_console.py::test_quiet_run_prints_a_line_per_step_and_verbose_brings_the_logs_back",
         "tests/train/test_resume_exact.py", "tests/train/test_processes.py", "tests/train/test_dev_eval.py",
         "tests/train/test_keep_best.py"]


def run_arm(threads: int | None, tests: list[str], workers: int) -> tuple[float, bool, str]:
    """Wall seconds, whether every test passed, pytest's last line."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "loadgroup", "-p", "no:cacheprovider",
           "-W", "ignore", *tests]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return seconds, done.returncode == 0, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tests", nargs="+", default=TESTS, help="pytest node ids or files (default: five training files)")
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers, as make test (2)")
    ap.add_argument("--order", choices=["ours-first", "anchor-first"], default="ours-first")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    arms = {"ours": None, "anchor": cores}
    order = ["ours", "anchor"] if args.order == "ours-first" else ["anchor", "ours"]
    result = {}
    for name in order:
        load = os.getloadavg()[0]
        seconds, ok, last = run_arm(arms[name], args.tests, args.workers)
        threads = arms[name] or f"{max(1, cores // args.workers)} (conftest)"
        print(f"{name}: OMP_NUM_THREADS={threads}, {args.workers} workers, load {load:.1f} at start: "
              f"{seconds:.0f} s, {last}", flush=True)
        result[name] = (seconds, ok)
    ratio = result["ours"][0] / result["anchor"][0]
    passed = result["ours"][1] and result["anchor"][1]
    print(f"RESULT test_files_seconds ours={result['ours'][0]:.0f} anchor={result['anchor'][0]:.0f} ratio={ratio:.3f} "
          f"goal=<={GOAL} passed={'yes' if passed else 'no'} ok={'yes' if ratio <= GOAL and passed else 'no'}")


if __name__ == "__main__":
    main()
