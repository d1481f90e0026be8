"""Seconds per optimizer step: our stage (``train_stage``) vs a bare TRL ``GRPOTrainer``, same run.

Same model (SmolLM2-135M-Instruct), same problems (generated arithmetic), same reward function
(``stagerl.rewards`` through the adapter's reward), same settings (lr, group size, batch, lengths,
KL, entropy, temperature, seed, CPU) and the same prompts in the same order (the anchor is given our
mixed-order dataset with ``shuffle_dataset=False``, so both generate the same completions). Ours adds what a stage adds: the mixed-order dataset, the
metrics callback writing ``metrics.jsonl``, the checkpoint policy (every 50 steps: none falls
inside these short runs) and the final save. Each side runs a short and a long stage; the step
time is ``(T(long) - T(short)) / (long - short)``, so model loading, trainer setup and the final save
cancel. Runs alternate ours/anchor over several rounds; the median per side is reported.

    python benchmarks/training.py [--rounds 2] [--short 2] [--long 6] [--generations 4] [--length 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from stagerl.config import RewardsConfig, StageConfig
from stagerl.data import load_source
from stagerl.data.prompts import to_messages
from stagerl.models import resolve_model
from stagerl.train.grpo import stage_dataset, train_stage
from stagerl.train.reward import make_reward


G, LENGTH = 4, 32


def stage(steps: int) -> StageConfig:
    return StageConfig(name="bench", levels=["L1"], learning_rate=1e-6, num_generations=G, prompts_per_step=2,
                       beta=0.001, entropy_coef=0.001, max_completion_length=LENGTH, temperature=1.0, max_steps=steps,
                       plateau=None, math_code_ratio=None, seed=0)


def ours(model: str, problems, steps: int, out: Path) -> float:
    t0 = time.perf_counter()
    train_stage(model, problems, stage(steps), out, rewards=RewardsConfig(workers=1))
    return time.perf_counter() - t0


def anchor(model: str, problems, steps: int, out: Path) -> float:
    from trl import GRPOConfig, GRPOTrainer

    s = stage(steps)
    t0 = time.perf_counter()
    dataset, pool = stage_dataset(problems, s, to_messages)
    args = GRPOConfig(output_dir=str(out), learning_rate=s.learning_rate, num_generations=s.num_generations,
                      per_device_train_batch_size=s.prompts_per_step * s.num_generations, beta=s.beta,
                      entropy_coef=s.entropy_coef, max_completion_length=s.max_completion_length,
                      temperature=s.temperature, max_steps=steps, seed=s.seed, logging_steps=1, report_to="none",
                      save_strategy="no", remove_unused_columns=False, use_cpu=True, bf16=False,
                      shuffle_dataset=False,  # the same prompts in the same steps: the same work per step
                      dataloader_pin_memory=False, activation_checkpointing=False, gradient_checkpointing=None,
                      lr_scheduler_type="constant")
    trainer = GRPOTrainer(model=model, reward_funcs=[make_reward(pool, RewardsConfig(workers=1), s.num_generations)], args=args, train_dataset=dataset)
    trainer.train()
    trainer.save_model(str(out / "final"))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--short", type=int, default=2)
    ap.add_argument("--long", type=int, default=6)
    ap.add_argument("--generations", type=int, default=G)
    ap.add_argument("--length", type=int, default=LENGTH, help="max completion tokens")
    a = ap.parse_args()
    globals().update(G=a.generations, LENGTH=a.length)
    torch.set_num_threads(1)
    model = resolve_model("smollm2-135m")
    problems = load_source({"builtin": "demo_math", "n": 16, "seed": 0})
    per_step = {"ours": [], "anchor": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for name, fn in (("ours", ours), ("anchor", anchor)) if r % 2 == 0 else (("anchor", anchor), ("ours", ours)):
                short = fn(model, problems, a.short, Path(tmp) / f"{name}{r}s")
                long = fn(model, problems, a.long, Path(tmp) / f"{name}{r}l")
                per_step[name].append((long - short) / (a.long - a.short))
                print(f"round {r} {name}: {a.short} steps {short:.1f} s, {a.long} steps {long:.1f} s -> "
                      f"{per_step[name][-1]:.2f} s/step", flush=True)
    o, n = statistics.median(per_step["ours"]), statistics.median(per_step["anchor"])
    ratio = o / n
    print(f"RESULT training_step_seconds ours={o:.2f} anchor={n:.2f} ratio={ratio:.3f} goal=<=1.05 "
          f"ok={'yes' if ratio <= 1.05 else 'no'}")


if __name__ == "__main__":
    main()
