"""Math reward throughput vs raw Math-Verify, with verdict agreement.

Pairs: the gold answers of AIME-2024 and MATH-500, each with realistic responses (a paragraph of
reasoning, then the final answer) that are correct in varied but equivalent forms (verbatim,
``\\fbox``, ``\\dfrac``, decimals, ``x =``, thousands separators, spacing, a wrong draft box before
the final one) or incorrect (off by one, another problem's answer, hedged lists, two final boxes
``\\boxed{wrong} or \\boxed{right}``, no box, unclosed box). Both graders score the same pairs in the
same run:

- ours: ``stagerl.rewards.math_rewards`` (fast paths + process pool, default workers);
- anchor: ``verify(parse("$" + gold + "$"), parse(response))`` sequentially (the gold parsed as
  LaTeX: bare ``parse(gold)`` fails on golds such as ``\\text{(B)}`` or ``\\dfrac{3}{4}``).

Every verdict mismatch is printed. Mismatches on responses with a closed box must be zero; on
format errors (unclosed/no box) and two-box hedges ours scores 0 by design (``BY_DESIGN``), so they
are listed but not counted (a 1 from ours on them counts).

    .venv/bin/python benchmarks/math_reward.py [--limit N] [--workers W]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import time
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

SETS = Path(__file__).resolve().parents[1] / "src" / "stagerl" / "data" / "sets"
SHARED = Path("/work/shared/data")


def load_golds() -> list[tuple[str, str]]:
    """(problem, gold) for AIME-2024 and MATH-500 (package copies, else /work/shared/data)."""
    out = []
    for name in ("aime24", "math500"):
        pkg, shared = SETS / f"{name}.jsonl.gz", SHARED / f"{name}.jsonl"
        f = gzip.open(pkg, "rt") if pkg.exists() else open(shared)
        with f:
            out += [(r["problem"], str(r["answer"])) for r in map(json.loads, f)]
    return out


def _say(problem: str, ans: str, box: str = "\\boxed", math: tuple[str, str] = ("$", "$")) -> str:
    reasoning = problem[:400].replace("\\boxed", "")
    return (
        f"Let me restate: {reasoning}\nWorking through the algebra carefully gives the result.\n"
        f"The final answer is {math[0]}{box}{{{ans}}}{math[1]}."
    )


def variants(problem: str, gold: str, other: str, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, response) pairs for one gold: equivalent forms and wrong answers."""
    g = gold.strip()
    out = [("verbatim", _say(problem, g)), ("fbox", _say(problem, g, "\\fbox", ("\\(", "\\)")))]
    out.append(("spaced", _say(problem, " ".join(g.split()) .replace(",", ", ").replace("+", " + "))))
    out.append(("draft-then-final", _say(problem, g).replace("The final", f"First try: \\boxed{{{other}}}. Fixed. The final")))
    if "\\frac" in g:
        out.append(("dfrac", _say(problem, g.replace("\\frac", "\\dfrac"))))
    if re.fullmatch(r"-?\d+", g):
        v = int(g)
        out.append(("x=", _say(problem, f"x = {v}")))
        if abs(v) >= 1000:
            out.append(("thousands", _say(problem, f"{v:,}")))
        out.append(("off-by-one", _say(problem, str(v + 1))))
        out.append(("hedged", _say(problem, f"{v}, {v + rng.choice([-2, 2])}")))
        w = v + rng.choice([-1, 1])
        two = _say(problem, g).replace("The final answer is", f"The final answer is $\\boxed{{{w}}}$ or")
        out.append(("hedged-boxes", two))
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", g)
    if m:
        q = Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
        d = q.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            out.append(("decimal", _say(problem, str(float(q)))))
        out.append(("wrong-fraction", _say(problem, f"\\frac{{{int(m.group(2)) + 1}}}{{{m.group(3)}}}")))
    if other.strip() != g:
        out.append(("other-answer", _say(problem, other)))
    out.append(("no-box", _say(problem, g).replace("\\boxed", "")))
    out.append(("unclosed", _say(problem, g)[:-3]))
    return out


BY_DESIGN = {"no-box": "format error", "unclosed": "format error", "hedged-boxes": "a hedge"}
"""Kinds where ours scores 0 by design and raw Math-Verify (last box only, or no box) may credit."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="use only the first N gold answers")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from math_verify import parse, verify

    from stagerl.rewards import math_rewards
    from stagerl.rewards.math import warm_up

    golds = load_golds()
    if args.limit:
        golds = golds[: args.limit]
    rng = random.Random(args.seed)
    pairs: list[tuple[str, str, str]] = []  # (kind, response, gold)
    for problem, gold in golds:
        other = rng.choice(golds)[1]
        pairs += [(k, r, gold) for k, r in variants(problem, gold, other, rng)]
    rng.shuffle(pairs)
    print(f"{len(golds)} gold answers, {len(pairs)} (response, gold) pairs")

    print(f"pool start-up (once per process, not timed below): {warm_up(args.workers):.2f} s")
    t0 = time.perf_counter()
    ours: list[float] = []
    chunk = 512
    for s in tqdm(range(0, len(pairs), chunk), desc="ours", unit="chunk"):
        part = pairs[s : s + chunk]
        ours += math_rewards([r for _, r, _ in part], [g for _, _, g in part], workers=args.workers)
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    anchor = [1.0 if verify(parse("$" + g + "$"), parse(r)) else 0.0 for _, r, g in tqdm(pairs, desc="math-verify")]
    t_anchor = time.perf_counter() - t0

    boxed_mismatch = 0
    for (kind, resp, gold), a, b in zip(pairs, ours, anchor):
        if a != b:
            why = BY_DESIGN.get(kind)
            boxed_mismatch += why is None or a != 0.0
            tail = resp[resp.rfind("The final") :] if "The final" in resp else resp[-80:]
            print(f"MISMATCH [{kind}{'' if why is None else f', {why}: ours=0 by design'}] gold={gold!r} ours={a} math-verify={b} :: {tail!r}")
    hedges = [a for (kind, _, _), a in zip(pairs, ours) if kind == "hedged-boxes"]
    print(f"hedged boxes (\\boxed{{wrong}} or \\boxed{{right}}): ours credits {sum(hedges):.0f} of {len(hedges)}")
    rate_ours, rate_anchor = len(pairs) / t_ours, len(pairs) / t_anchor
    ratio = rate_ours / rate_anchor
    print(f"ours: {rate_ours:.0f} pairs/s ({t_ours:.2f} s); raw Math-Verify: {rate_anchor:.0f} pairs/s ({t_anchor:.2f} s)")
    print(f"mean reward ours={sum(ours) / len(ours):.3f} math-verify={sum(anchor) / len(anchor):.3f}; boxed mismatches={boxed_mismatch}")
    ok = ratio >= 10 and boxed_mismatch == 0
    print(f"RESULT math_reward ours={rate_ours:.1f} anchor={rate_anchor:.1f} ratio={ratio:.2f} goal=>=10 ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
