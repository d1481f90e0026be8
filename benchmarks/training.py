"""Seconds per optimizer step: our stage (``train_stage``) vs a bare TRL ``GRPOTrainer``, same run.

Same model (SmolLM2-135M-Instruct), same problems (generated arithmetic), same reward function
(``stagerl.rewards`` through the adapter's reward), same settings (lr, group size, batch, lengths,
KL and its bias correction, entropy, loss type, reward scaling, truncation masking, temperature,
seed, CPU) and the same prompts in the same order (the anchor is given our mixed-order dataset with
``shuffle_dataset=False``), so both should sample the same completions: the script checks what it
can see of that, each step's mean completion length on both sides, and reports ``ok=no`` when they
differ. Ours adds what
a stage adds: the metrics callback writing ``metrics.jsonl``, TensorBoard event files (on by
default), the checkpoint policy (every 50 steps: none falls inside these runs), the final save and
``stage.json``.

A step's time is the wall time from the previous step's log event to its own (TRL logs once per
optimizer step, after the step and its callbacks): ours from the ``seconds`` column of
``metrics.jsonl``, the anchor's from a callback that reads the clock at the same event. Step 1
(first-call warm-up) is left out; loading, setup and the final save are outside every step.

The two sides run **at the same time**, each in its own process pinned to its own CPU core (one
torch thread each), and swap cores every round. On the development box the machine's speed drifts
over minutes (from ~17 to ~21 s/step in an hour): run one after the other, that drift lands on one
side; run side by side, on both. Each process also runs 5-15% faster or slower than another doing
the same work (every step alike), far more than the 5% goal: that noise is per run, which is why
the interval resamples whole rounds and why several rounds are needed. The result is the
total time of ours' measured steps over the anchor's (the same steps, the same work), with a 95%
bootstrap interval over rounds; each round's ratio is printed too. ``--sequential`` runs
the sides one after the other on the whole machine instead (ours first in even rounds).

    python benchmarks/training.py [--rounds 6] [--steps 12] [--generations 4] [--length 32] [--fewshot] [--sequential]

``--fewshot`` gives both sides the demo's prompts (the worked exchange first), where the prompt is most
of each row: ours then runs each distinct prompt once in the loss (``train/shared_prompt.py``) and
the goal is a step at most 0.85 of the anchor's (``training_step_seconds_fewshot``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from stagerl.config import RewardsConfig, StageConfig
from stagerl.data import load_source
from stagerl.data.prompts import to_messages
from stagerl.models import resolve_model
from stagerl.rundir import read_jsonl
from stagerl.train.grpo import checkpointing_off, stage_dataset, train_stage
from stagerl.train.reward import make_reward


G, LENGTH, FEWSHOT = 4, 32, False


def messages():
    """Both sides' prompt: the chat template alone, or with the worked exchange first (``--fewshot``,
    the demo's prompts: ~195 tokens, most of each row, where the shared prompt pays most)."""
    return partial(to_messages, fewshot=FEWSHOT)


def stage(steps: int) -> StageConfig:
    return StageConfig(name="bench", levels=["L1"], learning_rate=1e-6, num_generations=G, prompts_per_step=2,
                       beta=0.001, entropy_coef=0.001, max_completion_length=LENGTH, temperature=1.0, max_steps=steps,
                       plateau=None, math_code_ratio=None, seed=0)


def bench_problems():
    """The 16 generated arithmetic problems both sides train on."""
    return load_source({"builtin": "demo_math", "n": 16, "seed": 0})


def ours(model: str, problems, steps: int, out: Path) -> tuple[list[float], list[float]]:
    """Per-step seconds and mean completion lengths of one stage (from its metrics.jsonl)."""
    train_stage(model, problems, stage(steps), out, rewards=RewardsConfig(workers=1), messages=messages())
    rows = [r for r in read_jsonl(out / "metrics.jsonl") if r.get("step", 0) >= 1]  # not the dev baseline row
    return [r["seconds"] for r in rows], [r["completion_length"] for r in rows]


class Clock(TrainerCallback):
    """The anchor's clock: the time of each step's log event and its mean completion length."""

    def __init__(self) -> None:
        self.t0, self.times, self.lengths = time.time(), [], []

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "train_runtime" not in logs:
            self.times.append(time.time() - self.t0)
            self.lengths.append(logs.get("completions/mean_length"))


def anchor_args(s: StageConfig, out: Path) -> GRPOConfig:
    """The anchor's ``GRPOConfig``: the settings ``grpo_config`` gives our stage, without our additions."""
    return GRPOConfig(output_dir=str(out), learning_rate=s.learning_rate, num_generations=s.num_generations,
                      per_device_train_batch_size=s.prompts_per_step * s.num_generations, beta=s.beta,
                      entropy_coef=s.entropy_coef, max_completion_length=s.max_completion_length,
                      loss_type=s.loss_type, scale_rewards="group", use_bias_correction_kl=s.kl_bias_correction,
                      mask_truncated_completions=s.mask_truncated_completions, num_iterations=1,
                      temperature=s.temperature, max_steps=s.max_steps, seed=s.seed, logging_steps=1,
                      report_to="none", save_strategy="no", remove_unused_columns=False, use_cpu=True, bf16=False,
                      shuffle_dataset=False,  # the same prompts in the same steps: the same work per step
                      dataloader_pin_memory=False, lr_scheduler_type="constant", **checkpointing_off())


def anchor(model: str, problems, steps: int, out: Path) -> tuple[list[float], list[float]]:
    s = stage(steps)
    dataset, pool = stage_dataset(problems, s, messages())
    args = anchor_args(s, out)
    clock = Clock()
    trainer = GRPOTrainer(model=model, reward_funcs=[make_reward(pool, RewardsConfig(workers=1), s.num_generations)],
                          args=args, train_dataset=dataset, callbacks=[clock])
    trainer.train()
    trainer.save_model(str(out / "final"))
    return clock.times, clock.lengths


def ratio_ci(rounds: list[list[tuple[float, float]]], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of sum(ours) / sum(anchor), resampling whole rounds (the steps of one
    run are not independent: a slow spell of the machine slows all of them)."""
    rng = random.Random(seed)
    stats = []
    for _ in range(n):
        pick = [p for _ in rounds for p in rounds[rng.randrange(len(rounds))]]
        stats.append(sum(o for o, _ in pick) / sum(a for _, a in pick))
    stats.sort()
    return stats[int(0.025 * n)], stats[int(0.975 * n) - 1]


SIDES = {"ours": ours, "anchor": anchor}


def one_side(name: str, steps: int, out: Path, cpu: int | None) -> None:
    """Child process: train one side and write its per-step clock times and lengths to out/side.json."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    times, lengths = SIDES[name](resolve_model("smollm2-135m"), bench_problems(), steps, out / "run")
    (out / "side.json").write_text(json.dumps({"times": times, "lengths": lengths}))


def run_round(r: int, a: argparse.Namespace, tmp: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Both sides of round ``r``, each in a child process: side by side (ours on the first core in even
    rounds, on the second in odd ones), or one after the other (ours first in even rounds)."""
    cpus = sorted(os.sched_getaffinity(0))
    order = ("ours", "anchor") if r % 2 == 0 else ("anchor", "ours")
    procs = {}
    for i, name in enumerate(order):
        out = tmp / f"{name}{r}"
        out.mkdir()
        cmd = [sys.executable, __file__, "--side", name, "--out", str(out), "--steps", str(a.steps),
               "--generations", str(G), "--length", str(LENGTH)] + (["--fewshot"] if FEWSHOT else [])
        if not a.sequential:
            cmd += ["--cpu", str(cpus[i % len(cpus)])]
        procs[name] = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if a.sequential and procs[name].wait() != 0:
            raise SystemExit(f"{name} failed in round {r}")
    for name, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"{name} failed in round {r}")
    got = {}
    for name in order:
        side = json.loads((tmp / f"{name}{r}" / "side.json").read_text())
        times = side["times"]
        got[name] = ([b - t for t, b in zip(times, times[1:])], side["lengths"])
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per run (step 1 is not measured)")
    ap.add_argument("--generations", type=int, default=G)
    ap.add_argument("--length", type=int, default=LENGTH, help="max completion tokens")
    ap.add_argument("--fewshot", action="store_true",
                    help="prompts with the worked exchange (the demo's): the prompt is most of each row")
    ap.add_argument("--sequential", action="store_true", help="one side after the other, not side by side")
    ap.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)  # internal: one child process
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.steps < 2:
        ap.error("--steps must be at least 2 (step 1 is not measured)")
    globals().update(G=a.generations, LENGTH=a.length, FEWSHOT=a.fewshot)
    if a.side:
        return one_side(a.side, a.steps, a.out, a.cpu)
    resolve_model("smollm2-135m")  # convert the embedded model once, before two processes want it
    rounds: list[list[tuple[float, float]]] = []
    same_work = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            got = run_round(r, a, Path(tmp))
            (o, o_len), (n, n_len) = got["ours"], got["anchor"]
            same = o_len == n_len and len(o) == len(n) == a.steps - 1
            same_work &= same
            rounds.append(list(zip(o, n)))
            print(f"round {r}: ours {sum(o) / len(o):.2f} s/step, anchor {sum(n) / len(n):.2f} s/step, "
                  f"ratio {sum(o) / sum(n):.3f}, same completion lengths per step: {same}", flush=True)
    pairs = [p for r in rounds for p in r]
    o, n = sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)
    ratio = o / n
    lo, hi = ratio_ci(rounds)
    print(f"{len(pairs)} paired steps in {len(rounds)} rounds ({'one after the other' if a.sequential else 'side by side'}); "
          f"ratio 95% interval (bootstrap over rounds) [{lo:.3f}, {hi:.3f}]"
          + ("" if same_work else "; THE TWO SIDES SAMPLED DIFFERENT COMPLETIONS (not the same work)"))
    name, goal = ("training_step_seconds_fewshot", 0.85) if a.fewshot else ("training_step_seconds", 1.05)
    print(f"RESULT {name} ours={o:.2f} anchor={n:.2f} ratio={ratio:.3f} goal=<={goal} "
          f"ok={'yes' if ratio <= goal and same_work else 'no'}")


if __name__ == "__main__":
    main()
