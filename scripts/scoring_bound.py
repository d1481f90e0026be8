"""How far can *any* early stop of all-alike pairs go on a scoring benchmark's real samples? A hindsight bound.

`benchmarks/scoring.py` keeps the fixed protocol's k samples of every pair (``<run>/fixed.sqlite``) and the
exact rule's draws (``<run>/adaptive-strongest-first.sqlite``). Most of what the exact rule still draws is
pairs that stay all-alike (never or always solved): they must go to k because one late success (or
failure) changes a label. This script asks what stopping them earlier would buy, with hindsight:

* the family: "stop a pair of model X whose first m_X draws are all failures (or all successes)", one
  threshold per model and kind (cold/hot × zero/one), otherwise the exact rule's draws; a problem whose
  strong model stops at 0 is dropped, so its weak model draws nothing;
* every combination of thresholds is scored against the k-sample labels on the same samples; the
  cheapest one with >= the share of identical labels asked is printed (tuned on the very samples it is
  judged on, so no real rule can do better within the family);
* and the pool's own late-change frequency: of the pairs all-alike after m draws, how many change in
  draws m+1..k, with a 95% Clopper-Pearson interval. A rule claiming an error of ε per problem may only
  stop such a pair when it can show that frequency is below ε.

    .venv/bin/python scripts/scoring_bound.py --run /tmp/sc300/bench-scoring --k 16
"""

from __future__ import annotations

import argparse
import itertools
import math
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scoring import BIND, RULES  # noqa: E402  (the benchmark's rules and ladder)

from stagerl.levels.rules import bind, label, load_rules  # noqa: E402


def load(run: Path, k: int):
    """(samples: (problem, model) -> [(solved, tokens)] * k, drawn by the exact rule, domains)."""
    full, dom = defaultdict(dict), {}
    with sqlite3.connect(run / "fixed.sqlite") as db:
        for pid, model, idx, reward, tokens, domain in db.execute(
                "SELECT problem_id, model, idx, reward, tokens, domain FROM samples"):
            full[(pid, model)][idx] = (reward > 0.5, tokens)
            dom[pid] = domain
    with sqlite3.connect(run / "adaptive-strongest-first.sqlite") as db:
        drawn = {(pid, model): n for pid, model, n in db.execute(
            "SELECT problem_id, model, COUNT(*) FROM samples GROUP BY 1, 2")}
    bad = [key for key in full if key[0] in {p for p, _ in drawn} and len(full[key]) != k]
    if bad:
        raise SystemExit(f"{run / 'fixed.sqlite'}: pair {bad[0]} has {len(full[bad[0]])} samples, not k={k}")
    return {key: [full[key][i] for i in range(k)] for key in full}, drawn, dom


def cut(seq: list[bool], drawn: int, zero: int, one: int) -> int:
    """Draws kept when a pair stops at ``zero`` all-failures or ``one`` all-successes."""
    if drawn > zero and not any(seq[:zero]):
        return zero
    if drawn > one and all(seq[:one]):
        return one
    return drawn


def evaluate(rules, full, drawn, dom, k: int, th: tuple[int, int, int, int]) -> tuple[int, int]:
    """(tokens, problems whose labels equal the k-sample labels) with thresholds (cold 0, cold 1, hot 0, hot 1)."""
    tokens, same = 0, 0
    for pid in sorted({p for p, _ in drawn}):
        rates, want = {}, {}
        for model, (z, o) in (("cold", th[:2]), ("hot", th[2:])):
            seq = [s for s, _ in full[(pid, model)]]
            want[model] = sum(seq) / k
            n = drawn.get((pid, model), 0)
            if model == "hot" and rates["cold"] == 0:
                n = 0  # dropped on the strong model's 0: the weak one is not drawn
            n = cut(seq, n, z, o) if n else 0
            tokens += sum(t for _, t in full[(pid, model)][:n])
            rates[model] = sum(seq[:n]) / n if n else None
        got = [label(rules, {"cold": rates["cold"], "hot": h if rates["hot"] is None else rates["hot"]}, pid, dom[pid])
               for h in (0.0, 1.0)]
        same += got[0] == got[1] == label(rules, want, pid, dom[pid])
    return tokens, same


def late_changes(full, pids: set, model: str, m: int, kind: bool) -> tuple[int, int]:
    """Pairs of ``model`` all ``kind`` in their first m draws, and how many of them change later."""
    alike = [seq for (p, name), seq in full.items()
             if p in pids and name == model and all(s == kind for s, _ in seq[:m])]
    return len(alike), sum(any(s != kind for s, _ in seq[m:]) for seq in alike)


def binom_cdf(x: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(x + 1))


def clopper_pearson(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for x of n, by bisection on the binomial tail."""
    a = (1 - level) / 2

    def solve(f) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) else (lo, mid)
        return (lo + hi) / 2

    low = 0.0 if x == 0 else solve(lambda p: 1 - binom_cdf(x - 1, n, p) < a)
    high = 1.0 if x == n else solve(lambda p: binom_cdf(x, n, p) > a)
    return low, high


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a benchmarks/scoring.py run folder")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--same", type=float, default=0.99, help="share of identical labels asked")
    ap.add_argument("--goal", type=float, default=0.40, help="tokens / fixed asked")
    args = ap.parse_args()
    rules = bind(load_rules(RULES), BIND)
    full, drawn, dom = load(Path(args.run), args.k)
    pids = {p for p, _ in drawn}
    fixed = sum(t for (p, _), seq in full.items() if p in pids for _, t in seq)
    k = args.k
    exact, _ = evaluate(rules, full, drawn, dom, k, (k, k, k, k))
    print(f"{len(pids)} problems, k={k}: fixed {fixed} tokens, exact rule {exact} ({exact / fixed:.3f})")
    grid = range(2, k + 1)
    best = {}
    for th in itertools.product(grid, grid, range(2, k + 1, 2), range(2, k + 1, 2)):
        tokens, same = evaluate(rules, full, drawn, dom, k, th)
        for need in (args.same, args.same - 0.01):
            if same / len(pids) >= need and tokens < best.get(need, (fixed + 1,))[0]:
                best[need] = (tokens, same, th)
    for need, (tokens, same, th) in sorted(best.items(), reverse=True):
        print(f"cheapest with >= {need:.0%} labels identical: {tokens / fixed:.3f} of fixed, {same}/{len(pids)} "
              f"identical; stop at cold 0-of-{th[0]}, cold {th[1]}-of-{th[1]}, hot 0-of-{th[2]}, hot {th[3]}-of-{th[3]}")
    print("late changes of all-alike pairs (95% Clopper-Pearson):")
    for model, kind in (("cold", False), ("cold", True), ("hot", False)):
        for m in (8, 10, 12, 13, 14):
            n, x = late_changes(full, pids, model, m, kind)
            lo, hi = clopper_pearson(x, n)
            print(f"  {model} all {'successes' if kind else 'failures'} in {m}: {x} of {n} change later "
                  f"({x / max(n, 1):.1%}, [{lo:.1%}, {hi:.1%}])")
    tokens = best.get(args.same, (fixed,))[0]
    print(f"bound: {tokens / fixed:.3f} of the fixed tokens at >= {args.same:.0%} identical labels, tuned in hindsight "
          f"({'within' if tokens / fixed <= args.goal else 'above'} the goal {args.goal}); not a rule's result")


if __name__ == "__main__":
    main()
