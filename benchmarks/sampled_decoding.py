"""Sampled generation of the transformers engine: its own decoding loop (the batch's common prompt
prefix computed once, finished rows leaving the batch) against ``model.generate`` with the same
``SeededSampler`` as a logits processor (the engine's previous path), on one batch of the demo's
32 training prompts (scoring's shape: 32 rows, temperature 0.8, top-p 0.95, 128 tokens).

The arms alternate (A B B A ...), so a shared machine's drift falls on both; the samples must be
identical (same seeds, same tokens). Goal: ratio <= 0.8 with every sample identical.

    python benchmarks/sampled_decoding.py [--rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LogitsProcessorList

from stagerl.config import load_recipe
from stagerl.engines.hf import TransformersEngine
from stagerl.pipeline import load_problems


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    recipe = load_recipe("demo")
    prompts = [recipe.prompt.messages(p) for p in load_problems(recipe)]
    eng = TransformersEngine("smollm2-135m", batch_size=32)
    ours = eng._sample

    def anchor(ids_list, sampler, max_tokens):
        ids, mask = eng._left_pad(ids_list)
        gen = eng.model.generate(input_ids=ids, attention_mask=mask, generation_config=eng._seeded(max_tokens),
                                 logits_processor=LogitsProcessorList([sampler]))
        return gen[:, ids.shape[1]:].tolist()

    seconds, samples = {"ours": 0.0, "anchor": 0.0}, {}
    for r in range(a.rounds):
        for name, fn in (("anchor", anchor), ("ours", ours))[:: 1 if r % 2 == 0 else -1]:
            eng._sample = fn
            t0 = time.perf_counter()
            out = eng.generate(prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=128, seed=r)
            seconds[name] += time.perf_counter() - t0
            samples.setdefault(r, {})[name] = [(c.text, c.tokens, c.finish) for o in out for c in o]
            print(f"round {r} {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    same = sum(a_ == b_ for r in samples for a_, b_ in zip(samples[r]["ours"], samples[r]["anchor"]))
    total = sum(len(samples[r]["ours"]) for r in samples)
    ratio = seconds["ours"] / seconds["anchor"]
    ok = ratio <= 0.8 and same == total
    print(f"identical samples: {same} of {total}")
    print(f"RESULT sampled_decoding_seconds ours={seconds['ours']:.1f} anchor={seconds['anchor']:.1f} "
          f"ratio={ratio:.3f} goal=<=0.8 ok={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
