"""Benchmark: ``code_rewards`` (warm bubblewrap slots; all tests of a program in one request, a fresh
fork of a prepared supervisor per test) vs the usual harness (one plain ``python3`` process per
test), on real LiveCodeBench problems, same run, same workers. Goal: >= 10x the anchor's tests/s.

Solutions (correct, wrong, runtime error) are written here for a handful of built-in
``lcb_test`` problems (no reference solutions ship with them); each is replicated with a unique
comment so every submission really runs (as distinct RL samples would). Both sides use the same
interpreter, the same LiveCodeBench import header and the same verdict functions; their scores
must agree and match the scores known for these solutions.

    .venv/bin/python benchmarks/code_reward.py [--replicas 8] [--passes 3] [--workers 2] [--as-user NAME]

``--passes P``: ours grades P times as many submissions (P passes over the set, each copy made unique
again, so nothing is cached) and its rate is over all of them: a single pass takes about half a
second, too short to time on a shared box. The anchor grades the set once (about 6 s). Both rates
are tests per second; the scores of every pass are checked.

``--as-user NAME`` (run as root) measures the same as the non-root user NAME (created for the run
when missing, removed after): the sandbox then isolates through a user namespace per slot.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from stagerl.rewards import code_rewards
from stagerl.rewards import sandbox as sb
from stagerl.rewards.code import extract_code, normalize_tests, stdout_matches, value_matches

GOAL = 10.0
"""Tests per second over the anchor's, as root and as a non-root user (issue 21)."""
BOOM = "raise RuntimeError('boom')\n"
SOLUTIONS: dict[str, list[tuple[str, float]]] = {  # problem id -> [(program, known score)]
    "lcb-test-0000": [
        ("n = int(input())\na = list(map(int, input().split()))\nprint(a.index(sorted(a)[-2]) + 1)", 1.0),
        ("n = int(input())\na = list(map(int, input().split()))\nprint(a.index(max(a)) + 1)", 0.0),
    ],
    "lcb-test-0001": [
        ("y = int(input())\nprint(366 if y % 400 == 0 or (y % 4 == 0 and y % 100) else 365)", 1.0),
        ("y = int(input())\nprint(366 if y % 4 == 0 else 365)", 0.75),
        (BOOM, 0.0),
    ],
    "lcb-test-0003": [
        ("n = int(input())\ns = input().strip()\nbeat = {'R': 'P', 'P': 'S', 'S': 'R'}\ndp = {m: -10**9 for m in 'RPS'}\n"
         "for i, c in enumerate(s):\n    nd = {m: -10**9 for m in 'RPS'}\n    for m in (c, beat[c]):\n"
         "        best = 0 if i == 0 else max(dp[p] for p in 'RPS' if p != m)\n        nd[m] = best + (m == beat[c])\n"
         "    dp = nd\nprint(max(dp.values()))", 1.0),
        ("n = int(input())\nprint(n // 2)", 1 / 3),
    ],
    "lcb-test-0007": [
        ("class Solution:\n    def finalPositionOfSnake(self, n: int, commands: List[str]) -> int:\n        i = j = 0\n"
         "        for c in commands:\n            i += (c == 'DOWN') - (c == 'UP')\n            j += (c == 'RIGHT') - (c == 'LEFT')\n"
         "        return i * n + j", 1.0),
        ("class Solution:\n    def finalPositionOfSnake(self, n: int, commands: List[str]) -> int:\n        i = j = 0\n"
         "        for c in commands:\n            i += (c == 'DOWN') - (c == 'UP')\n            j += (c == 'RIGHT') - (c == 'LEFT')\n"
         "        return j * n + i", 0.5),
        ("class Solution:\n    def finalPositionOfSnake(self, n, commands):\n        " + BOOM, 0.0),
    ],
    "lcb-test-0009": [
        ("class Solution:\n    def winningPlayerCount(self, n: int, pick: List[List[int]]) -> int:\n"
         "        c = Counter(map(tuple, pick))\n        return sum(any(c[(i, y)] > i for y in range(11)) for i in range(n))", 1.0),
        ("def winningPlayerCount(n, pick):\n    from collections import Counter\n    c = Counter(map(tuple, pick))\n"
         "    return sum(any(c[(i, y)] >= i for y in range(11)) for i in range(n))", 0.0),
    ],
    "lcb-test-0013": [
        ("n = int(input())\ns = [input().strip() for _ in range(n)]\nfor j in range(max(map(len, s))):\n"
         "    print(''.join(s[i][j] if j < len(s[i]) else '*' for i in range(n - 1, -1, -1)).rstrip('*'))", 1.0),
        ("n = int(input())\ns = [input().strip() for _ in range(n)]\nfor j in range(max(map(len, s))):\n"
         "    print(''.join(s[i][j] if j < len(s[i]) else '*' for i in range(n - 1, -1, -1)))", 0.0),
    ],
    "lcb-test-0023": [
        ("s = input().strip()\nprint(s.rstrip('0').rstrip('.') if '.' in s else s)", 1.0),
        ("print(float(input()))", 1.0),  # numerically equal: the tolerant checker accepts it (as LiveCodeBench does)
    ],
    "lcb-test-0036": [
        ("a, b = map(int, input().split())\nprint(1 if a == b else 3 if (a + b) % 2 == 0 else 2)", 1.0),
        ("print(3)", 1 / 3),
        ("print(3", 0.0),
    ],
    "lcb-test-0039": [
        ("l, r = map(int, input().split())\nprint('Yes' if (l, r) == (1, 0) else 'No' if (l, r) == (0, 1) else 'Invalid')", 1.0),
        ("l, r = map(int, input().split())\nprint('Yes' if l else 'No')", 0.5),
        ("import sys\nsys.exit(0)\nprint('Yes')", 0.0),
    ],
}


def load_problems() -> dict[str, dict]:
    path = resources.files("stagerl.data") / "sets" / "lcb_test.jsonl.gz"
    with gzip.open(str(path), "rt") as f:
        rows = (json.loads(line) for line in f)
        return {r["id"]: r for r in rows if r["id"] in SOLUTIONS}


ANCHOR_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
"""The anchor's environment: a program's in the sandbox (an inherited PYTHONPATH would slow its imports)."""


def anchor_score(code: str, tests: dict, timeout: float) -> float:
    """The usual harness: one fresh ``python3`` per test, the same header and verdicts."""
    fn, inputs, outputs = normalize_tests(tests)
    from stagerl.rewards.sandbox.child import PRELUDE

    prog = PRELUDE + code
    if fn:
        prog += ("\nimport json as _j, sys as _s\n_a = _j.loads(_s.stdin.read())\n_S = globals().get('Solution')\n"
                 f"_f = getattr(_S(), {fn!r}) if isinstance(_S, type) and hasattr(_S, {fn!r}) else globals()[{fn!r}]\n"
                 "_s.stdout.write(_j.dumps(_f(*_a)))\n")
    passed = 0
    for inp, exp in zip(inputs, outputs):
        try:
            p = subprocess.run([sb.PYTHON, "-X", "int_max_str_digits=0", "-c", prog], input=json.dumps(inp) if fn else inp,
                               capture_output=True, text=True, timeout=timeout, env=ANCHOR_ENV)
        except subprocess.TimeoutExpired:
            continue
        if p.returncode != 0:
            continue
        if fn:
            try:
                passed += value_matches(json.loads(p.stdout), exp)
            except ValueError:
                pass
        else:
            passed += stdout_matches(p.stdout, exp)
    return passed / len(outputs)


def _cpu_s(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def slots_cpu_s() -> float:
    """CPU seconds of this process's live slots so far: bubblewrap, the supervisor and every test it reaped."""
    from stagerl.rewards.sandbox import slot as slots

    def own_and_reaped(pid: int) -> float:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime

    total = 0.0
    for slot in list(slots.live):
        pid = slot.proc.pid
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        total += own_and_reaped(pid) + sum(own_and_reaped(int(k)) for k in kids)
    return total


def run_as_user(user: str, argv: list[str]) -> int:
    """Re-run this script as ``user`` from a copy it can read (the checkout or venv may be private)."""
    if os.geteuid() != 0:
        sys.exit("--as-user needs root (it runs the benchmark through runuser)")
    created = False
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        created = True
    tree = Path(tempfile.mkdtemp(prefix="stagerl-bench-"))
    try:
        import stagerl

        shutil.copytree(Path(stagerl.__file__).parent, tree / "stagerl", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(__file__, tree / "code_reward.py")
        subprocess.run(["chmod", "-R", "a+rX", str(tree)], check=True)
        env = [f"PYTHONPATH={tree}:{sysconfig.get_paths()['purelib']}", "PYTHONDONTWRITEBYTECODE=1", "PATH=/usr/bin:/bin",
               f"HOME={tree}"]
        for py in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
            ok = subprocess.run(["runuser", "-u", user, "--", "env", *env, py, "-c", "import stagerl.rewards"],
                                capture_output=True).returncode == 0
            if ok:
                return subprocess.run(["runuser", "-u", user, "--", "env", *env, py, str(tree / "code_reward.py"), *argv]).returncode
        sys.exit(f"no Python that user {user} can run with this project's packages")
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        if created:
            subprocess.run(["userdel", user], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=8, help="copies of each solution (each made unique)")
    ap.add_argument("--passes", type=int, default=3, help="passes of ours over fresh unique copies (timed together)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--as-user", default=None, help="run as this non-root user (needs root; created if missing)")
    args = ap.parse_args()
    if args.as_user:
        sys.exit(run_as_user(args.as_user, ["--replicas", str(args.replicas), "--passes", str(args.passes),
                                            "--workers", str(args.workers)]))
    problems = load_problems()
    def copies(tag: str) -> list[tuple[str, dict, float]]:  # (response, tests, known score), each response unique
        return [(f"Here you go.\n```python\n{code}\n# sample {tag}{k}.{r}\n```\n", problems[pid]["tests"], known)
                for pid, sols in SOLUTIONS.items() for k, (code, known) in enumerate(sols) for r in range(args.replicas)]

    items = copies("")
    passes = [copies(f"p{j}.") for j in range(args.passes)]  # ours: fresh unique copies per pass
    n_tests = sum(len(t["inputs"]) for _, t, _ in items)
    status = sb.sandbox_status()
    print(f"sandbox (uid {os.getuid()}): {status}")
    print(f"{len(problems)} problems, {len(items)} submissions, {n_tests} test runs, workers={args.workers}; "
          f"ours times {args.passes} passes ({args.passes * n_tests} test runs)")
    t0 = time.perf_counter()
    code_rewards([r for r, _, _ in items[:args.workers]], [t for _, t, _ in items[:args.workers]], workers=args.workers)
    print(f"slot start-up (once per process, not timed below): {time.perf_counter() - t0:.2f} s")

    cpu0, slots0 = _cpu_s(resource.RUSAGE_SELF), slots_cpu_s()
    t0 = time.perf_counter()
    ours_all = [code_rewards([r for r, _, _ in its], [t for _, t, _ in its], workers=args.workers) for its in passes]
    t_ours = time.perf_counter() - t0
    ours = ours_all[0]
    host_ours = _cpu_s(resource.RUSAGE_SELF) - cpu0
    cpu_ours = host_ours + slots_cpu_s() - slots0

    cpu0, kids0 = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        anchor = list(ex.map(lambda it: anchor_score(extract_code(it[0]) or "", it[1], sb.Limits().timeout_s), items))
    t_anchor = time.perf_counter() - t0
    cpu_anchor = _cpu_s(resource.RUSAGE_SELF) - cpu0 + _cpu_s(resource.RUSAGE_CHILDREN) - kids0

    disagree = sum(abs(a - b) > 1e-9 for a, b in zip(ours, anchor))
    wrong = sum(abs(a - k) > 1e-9 for o in ours_all for a, (_, _, k) in zip(o, items))
    n_ours = args.passes * n_tests
    rate_ours, rate_anchor = n_ours / t_ours, n_tests / t_anchor
    ratio = rate_ours / rate_anchor
    print(f"ours: {rate_ours:.1f} tests/s ({t_ours:.2f} s); one python3 per test: {rate_anchor:.1f} tests/s ({t_anchor:.2f} s)")
    print(f"CPU per test (all processes, less sensitive to other load on the box than tests/s): ours "
          f"{cpu_ours / n_ours * 1e3:.2f} ms (this process {host_ours / n_ours * 1e3:.2f} ms), one python3 per test {cpu_anchor / n_tests * 1e3:.2f} ms, "
          f"ratio {cpu_anchor / n_tests / max(cpu_ours / n_ours, 1e-12):.2f}; load average {os.getloadavg()[0]:.1f}")
    print(f"mean score ours={sum(ours) / len(ours):.3f} anchor={sum(anchor) / len(anchor):.3f}; "
          f"disagreements={disagree}; off the known scores={wrong}")
    ok = ratio >= GOAL and disagree == 0 and wrong == 0 and status.startswith("bwrap")
    print(f"RESULT code_reward_tests_per_s ours={rate_ours:.1f} anchor={rate_anchor:.1f} ratio={ratio:.2f} goal=>={GOAL:g} "
          f"ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
