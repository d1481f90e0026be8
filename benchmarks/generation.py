"""Benchmark: batched TransformersEngine vs the naive per-prompt ``model.generate`` loop.

Same model (SmolLM2-135M-Instruct via ``resolve_model``), same chat-templated prompts, same
sampling settings (T=0.6, top_p=0.95, no top-k), same max_tokens, in one run. The anchor is what
people write first: for each prompt, for each sample, one ``model.generate`` call on one sequence.
The measure is generated tokens per second (EOS counted, padding not), so a side that happened
to sample shorter answers gains nothing; completions/s is printed too.

    .venv/bin/python benchmarks/generation.py            # 8 prompts x n=4, max_tokens 64

Where vLLM is installed (``make setup`` installs its CPU build on a CPU-only torch) the ``vllm``
engine runs too, on the same prompts, samples, seed and max_tokens, after its own warm-up; a second
line ``RESULT generation_vllm_vs_transformers`` compares it with the batched transformers engine
(``--no-vllm`` skips it). Load times are not counted on either side.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch
from tqdm.auto import tqdm

from stagerl.engines.hf import TransformersEngine
from stagerl.models import resolve_model

PROMPTS = [
    "What is 17 * 23? Put the final answer in \\boxed{}.",
    "Write a Python function that reverses a string.",
    "Explain in two sentences why the sky is blue.",
    "Solve for x: 3x + 7 = 22. Show your steps.",
    "List three prime numbers greater than 50.",
    "What is the derivative of x^3 + 2x?",
    "Give a short definition of a binary search tree.",
    "How many minutes are there in 3.5 hours?",
]


def naive(engine: TransformersEngine, prompts: list[str], n: int, max_tokens: int, seed: int) -> tuple[int, int]:
    """The anchor: one ``model.generate`` per (prompt, sample); returns (completions, tokens)."""
    model, cfg = engine.model, engine._sampling(0.6, 0.95, max_tokens)
    completions = tokens = 0
    torch.manual_seed(seed)
    with torch.inference_mode(), tqdm(total=len(prompts) * n, desc="anchor: per-prompt loop", unit="seq") as bar:
        for p in prompts:
            ids = torch.tensor([engine.encode(p)], device=engine.device)
            for _ in range(n):
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
                completions += 1
                tokens += engine._finish(out[0, ids.shape[1] :].tolist()).tokens
                bar.update(1)
    return completions, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-vllm", action="store_true", help="skip the vllm engine")
    args = ap.parse_args()

    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]
    engine = TransformersEngine(resolve_model(args.model), batch_size=args.batch_size, progress=True)
    engine.generate(prompts[:1], n=1, max_tokens=4, seed=args.seed)  # warm-up (both sides share it)

    t0 = time.perf_counter()
    out = engine.generate(prompts, n=args.n, temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=args.seed)
    ours_s = time.perf_counter() - t0
    ours_c = sum(len(r) for r in out)
    ours_t = sum(c.tokens for r in out for c in r)

    t0 = time.perf_counter()
    base_c, base_t = naive(engine, prompts, args.n, args.max_tokens, args.seed)
    base_s = time.perf_counter() - t0

    ours, anchor = ours_t / ours_s, base_t / base_s
    print(f"device={engine.device} threads={torch.get_num_threads()} batch_size={engine.batch_size} "
          f"prompts={len(prompts)} n={args.n} max_tokens={args.max_tokens}")
    print(f"ours   (batched engine): {ours_c} completions, {ours_t} tokens in {ours_s:.1f}s = "
          f"{ours_c / ours_s:.2f} completions/s, {ours:.1f} tokens/s")
    print(f"anchor (per-prompt loop): {base_c} completions, {base_t} tokens in {base_s:.1f}s = "
          f"{base_c / base_s:.2f} completions/s, {anchor:.1f} tokens/s")
    ratio = ours / anchor
    print(f"RESULT generation_tokens_per_s ours={ours:.1f} anchor={anchor:.1f} ratio={ratio:.2f} goal=>=3 "
          f"ok={'yes' if ratio >= 3 else 'no'}")
    if not args.no_vllm and importlib.util.find_spec("vllm") is not None:
        engine.close()
        fast = vllm_side(args.model, prompts, args.n, args.max_tokens, args.seed)
        r = fast / ours
        print(f"RESULT generation_vllm_vs_transformers ours={fast:.1f} anchor={ours:.1f} ratio={r:.2f} goal=>=1 "
              f"ok={'yes' if r >= 1 else 'no'}")


def vllm_side(model: str, prompts: list[str], n: int, max_tokens: int, seed: int) -> float:
    """The ``vllm`` engine (its CPU defaults off a GPU) on the same prompts; generated tokens/s."""
    from stagerl.engines.vllm import VLLMEngine

    with VLLMEngine(resolve_model(model)) as engine:
        engine.generate(prompts[:1], n=1, max_tokens=4, seed=seed)  # warm-up
        t0 = time.perf_counter()
        out = engine.generate(prompts, n=n, temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=seed)
        secs = time.perf_counter() - t0
    done, tokens = sum(len(r) for r in out), sum(c.tokens for r in out for c in r)
    print(f"vllm engine: {done} completions, {tokens} tokens in {secs:.1f}s = {done / secs:.2f} completions/s, "
          f"{tokens / secs:.1f} tokens/s")
    return tokens / secs


if __name__ == "__main__":
    main()
