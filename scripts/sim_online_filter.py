"""Offline simulation of online filtering's decisions, to choose its settings before a real run.

`benchmarks/group_signal.py` trains a real model for an hour per seed; this replays the decisions of
``OnlineGRPOTrainer`` (``train/online.py``: predictive skipping with the exploration draw, refills
from shuffled passes over the pool, up to ``max_extra_rounds`` extra rounds, one group of G per slot)
with the library's own estimator (``SeededEstimator``) against simulated problems, thousands of runs
a minute. It is a model, not a measurement: every group costs the same tokens and the policy's
learning is a fixed drift of the in-band pass rates. Use it to rank settings, then measure the chosen
one with the benchmark.

Pool (per run): ``--zero`` of the problems at a pass rate drawn in [0, ``--zero-max``] (0: never
solved), ``--one`` at 1, the rest uniform in [0.05, 0.95]; each problem seeded with ``--seed-k``
samples as the run's scoring would. After each step every pass rate in (0.02, 1) rises by
``--drift`` (the policy learns). The anchor (plain GRPO) draws the same prompts in the same order.
``--rates FILE`` (a JSON list of pass rates, e.g. the policy's scoring rates measured before training)
draws the pool's problems from those rates instead. Those are estimates from ``--seed-k`` samples, not
the problems' pass rates: ``--truth fitted`` draws the pool from the distribution of pass rates that
best explains them (``online_prior.pool_grid`` fitted to the rates × ``--seed-k`` counts) instead.
``--oracle T ...`` adds rows that skip by each problem's true pass rate (no estimate, no exploration):
what any skip rule could reach with the same refills, in this model.

    python scripts/sim_online_filter.py --settings "seed_decay=0.9" "seed_decay=0.97" --drift 0.015 0.04
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

from stagerl.config import OnlineConfig
from stagerl.config.online import online_field
from stagerl.train.online_prior import SeededEstimator, has_signal, pool_grid

DEFAULTS = {k: getattr(OnlineConfig(), k) for k in ("skip_threshold", "skip_per_sample", "explore", "explore_refills", "decay",
                                                     "seed_decay", "seed_drift", "seed_sharpen", "pooled_prior",
                                                     "max_extra_rounds")}
"""The library's defaults (``OnlineConfig``); a bool is given as 0 or 1 (``explore_refills=1``)."""


def pool(rng: random.Random, args: argparse.Namespace) -> list[float]:
    if getattr(args, "fitted", None):  # the distribution that best explains the scoring pass rates
        rates, weights = zip(*args.fitted)
        return rng.choices(rates, weights, k=args.problems)
    if getattr(args, "rates", None):  # the run's own scoring pass rates, drawn with replacement
        return [rng.choice(args.rates) for _ in range(args.problems)]
    out = []
    for _ in range(args.problems):
        u = rng.random()
        out.append(rng.uniform(0, args.zero_max) if u < args.zero else 1.0 if u < args.zero + args.one
                   else rng.uniform(0.05, 0.95))
    return out


def learn(p: list[float], drift: float) -> list[float]:
    return [min(1.0, x + drift) if 0.02 < x < 1 else x for x in p]


def group(rng: random.Random, p: float, G: int) -> list[float]:
    return [float(rng.random() < p) for _ in range(G)]


def one_run(seed: int, args: argparse.Namespace, drift: float, cfg: dict | None,
            oracle: float | None = None) -> tuple[int, int]:
    """(groups generated, trained groups with signal) of one run; ``cfg`` None = the anchor. ``oracle``: skip
    by each problem's true pass rate now (skip when a group of G is all-equal with more than this chance; no
    estimate, no exploration), a bound on what any skip rule could do with the same refills."""
    rng = random.Random(seed)
    p = pool(rng, args)
    n, G, P = len(p), args.G, args.prompts
    seeds = {i: [(sum(rng.random() < p[i] for _ in range(args.seed_k)) / args.seed_k, args.seed_k, 0)]
             for i in range(n)}
    order = list(range(n))
    rng.shuffle(order)
    draws = random.Random(f"{seed}:groups")  # the same sampling noise for the anchor and every setting
    if cfg is None:
        useful = 0
        for step in range(args.steps):
            useful += sum(has_signal(group(draws, p[order[(step * P + k) % n]], G)) for k in range(P))
            p = learn(p, drift)
        return args.steps * P, useful
    online = OnlineConfig(**cfg)
    est = SeededEstimator.for_config(online, seeds)  # the trainer's estimator for these settings
    filt = random.Random(f"{seed}:explore")
    queue: list[int] = []

    def skip(i: int, scan: bool = False) -> bool:
        if oracle is not None:
            return p[i] ** G + (1.0 - p[i]) ** G > oracle
        if not est.known(i) or est.p_all_equal(i, G) <= online.threshold(G):
            return False
        if scan and not online.explore_refills:
            return True
        return filt.random() >= online.explore

    def nxt() -> int:
        if not queue:
            queue.extend(range(n))
            filt.shuffle(queue)
        return queue.pop()

    def fresh() -> int:
        for _ in range(n):
            i = nxt()
            if not skip(i, scan=True):
                return i
        return nxt()

    generated = useful = 0
    for step in range(args.steps):
        est.step = step
        rows = [fresh() if skip(i) else i for i in (order[(step * P + k) % n] for k in range(P))]
        todo, rounds = P, 0
        while True:
            filled = 0
            for i in rows:
                rewards = group(draws, p[i], G)
                est.update(i, rewards)
                filled += has_signal(rewards)
            generated += len(rows)
            todo -= filled
            useful += filled
            if todo == 0 or rounds >= online.max_extra_rounds:
                break
            rounds += 1
            rows = [fresh() for _ in range(todo)]
        p = learn(p, drift)
    return generated, useful


def parse(spec: str) -> dict:
    cfg = dict(DEFAULTS)
    for part in filter(None, spec.split("@")):
        key, eq, value = part.partition("=")
        if not eq:
            raise SystemExit(f"--settings {spec!r}: {part!r} is not key=value (the simulation always filters; "
                             f"give only the online settings to change, e.g. 'seed_decay=0.97@skip_threshold=0.1')")
        if key not in DEFAULTS:
            raise SystemExit(f"unknown setting {key!r} in {spec!r}; known: {', '.join(DEFAULTS)}")
        cfg[key] = online_field(key, value)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["", "seed_decay=0.97"],
                    help="each '@'-joined key=value overrides of the library defaults ('' = the defaults)")
    ap.add_argument("--drift", type=float, nargs="+", default=[0.015, 0.04])
    ap.add_argument("--zero-max", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--zero", type=float, default=0.5)
    ap.add_argument("--one", type=float, default=0.08)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--G", type=int, default=4)
    ap.add_argument("--seed-k", type=int, default=8)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--rates", type=Path, default=None, help="JSON list of pass rates to draw the pool from")
    ap.add_argument("--oracle", type=float, nargs="*", default=[],
                    help="also print skipping by the true pass rates at these thresholds (a bound for any rule)")
    ap.add_argument("--truth", choices=("rates", "fitted"), default="rates",
                    help="with --rates: draw the pool from the rates themselves, or from the distribution fitted to them")
    args = ap.parse_args()
    settings = [(spec, parse(spec), None) for spec in args.settings]  # a bad setting stops before any run
    settings += [(f"oracle (true pass rates), threshold {t:g}", parse(""), t) for t in args.oracle]
    args.fitted = None
    if args.rates:
        path, args.rates = args.rates, [float(x) for x in json.loads(args.rates.read_text())]
        if not args.rates or not all(0.0 <= x <= 1.0 for x in args.rates):
            raise SystemExit(f"{path}: need a non-empty JSON list of pass rates in [0, 1]")
        if args.truth == "fitted":
            grid = pool_grid([(x * args.seed_k, args.seed_k) for x in args.rates])
            args.fitted = [(p, math.exp(w)) for p, w in grid]
            mass = {name: sum(w for p, w in args.fitted if lo <= p < hi)
                    for name, lo, hi in (("< 0.05", 0, 0.05), ("0.05-0.95", 0.05, 0.95), ("> 0.95", 0.95, 2))}
            print("fitted pool: " + ", ".join(f"{k} {v:.2f}" for k, v in mass.items()))
    print("ratio = (ours generated / ours useful) / (anchor generated / anchor useful); share = ours useful / slots")
    for zero_max in args.zero_max:
        pool_args = argparse.Namespace(**{**vars(args), "zero_max": zero_max})  # this scenario's pool
        for drift in args.drift:
            anchor = [one_run(s, pool_args, drift, None) for s in range(args.runs)]
            a_gen, a_useful = sum(g for g, _ in anchor), sum(u for _, u in anchor)
            print(f"zero-max {zero_max}, drift {drift}: anchor share {a_useful / a_gen:.3f}")
            for spec, cfg, oracle in settings:
                runs = [one_run(s, pool_args, drift, cfg, oracle) for s in range(args.runs)]
                gen, useful = sum(g for g, _ in runs), sum(u for _, u in runs)
                ratio = (gen / max(1, useful)) / (a_gen / max(1, a_useful))
                share = useful / (args.runs * args.steps * args.prompts)
                print(f"  {spec or 'defaults':40s} ratio {ratio:.3f}  share {share:.3f}")


if __name__ == "__main__":
    main()
