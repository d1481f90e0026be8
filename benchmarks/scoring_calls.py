"""Benchmark: scoring on the in-process vLLM engine, one engine call per round vs calls of
``scoring.call_size`` samples (64, the default).

vLLM batches continuously: inside one call it starts a waiting request whenever a running one ends,
so a call ends with a tail of a few long samples running alone. Cut a round into calls of 64 and
every call pays that tail; hand vLLM the whole round and only the last one does. Since samples are
stored as prompts finish (``scoring/call.py``), a long call no longer risks its work on a kill.

Same problems (``demo_math``), same model, same per-sample seeds, the fixed protocol (k samples per
problem), one engine loaded once (load time not counted), arms interleaved ``--repeats`` times, each
into a fresh store. Measure: samples per second of wall time (generation, grading, storing). Side
condition: both arms store the same texts (per-sample seeds; vLLM's batch-dependent rounding could
change a token, so the share identical is printed and must be at least 99%).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scoring_calls.py          # 48 problems x k=4, 96 tokens
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from stagerl.config import ModelRef, RewardsConfig, SamplingConfig, ScoringConfig
from stagerl.data.generated import demo_math
from stagerl.engines import make_engine
from stagerl.scoring import score
from stagerl.store import SampleStore


def one_arm(problems, engine, k: int, max_tokens: int, call_size: int, folder: Path) -> tuple[float, dict]:
    """Seconds to score ``problems`` with calls of ``call_size``; the stored texts by (problem, index)."""
    store = SampleStore(folder / "samples.sqlite")
    cfg = ScoringConfig(models=[ModelRef(name="m", engine="vllm")], k=k, adaptive=False,
                        sampling=SamplingConfig(max_tokens=max_tokens, seed=0), call_size=call_size)
    t0 = time.perf_counter()
    score(problems, store, cfg, rewards=RewardsConfig(workers=1), engine_factory=lambda ref: nullcontext(engine),
          progress=False)
    seconds = time.perf_counter() - t0
    texts = {(r["problem_id"], r["idx"]): r["text"] for r in store.samples()}
    store.close()
    return seconds, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=48)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--call-size", type=int, default=64, help="the anchor's samples per call")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    problems = demo_math(a.problems, seed=0)
    total = len(problems) * a.k
    engine = make_engine("vllm", "smollm2-135m")
    try:
        engine.generate(["Warm up."], n=2, max_tokens=8, seed=0)
        times: dict[str, list[float]] = {"anchor": [], "ours": []}
        texts: dict[str, dict] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(a.repeats):
                for arm, size in (("anchor", a.call_size), ("ours", total)) if r % 2 == 0 else \
                        (("ours", total), ("anchor", a.call_size)):
                    folder = Path(tmp) / f"{arm}{r}"
                    folder.mkdir()
                    seconds, texts[arm] = one_arm(problems, engine, a.k, a.max_tokens, size, folder)
                    times[arm].append(seconds)
                    print(f"repeat {r} {arm:6s} calls of {size:4d}: {seconds:7.1f} s, {total / seconds:.2f} samples/s",
                          flush=True)
    finally:
        engine.close()
    same = sum(texts["ours"][key] == text for key, text in texts["anchor"].items()) / total
    ours, anchor = total / statistics.fmean(times["ours"]), total / statistics.fmean(times["anchor"])
    ratio = ours / anchor
    print(f"{total} samples ({len(problems)} problems x k={a.k}, max_tokens {a.max_tokens}); identical texts: {same:.1%}")
    ok = ratio >= 1.1 and same >= 0.99
    print(f"RESULT scoring_vllm_whole_round_samples_per_s ours={ours:.3f} anchor={anchor:.3f} ratio={ratio:.2f} "
          f"goal=>=1.1 identical={same:.3f} ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
