"""GPU check (issue 19): two staged-GRPO stages on CUDA through the real `stagerl train`, with a SIGKILL and a
resume in the first, in bf16 with gradient checkpointing and ZeRO-3 through the shipped config, a dev
evaluation, and the step time and peak GPU memory. A tiny Llama built from a config, SmolLM2's tokenizer.

Made for a GPU machine with no network that has torch, transformers and accelerate; TRL, datasets,
Math-Verify and DeepSpeed travel as wheels (``scripts/gpu_wheels.py DIR`` fetches them here, with the
tokenizer, and prints how to install them there). Prints one line per property and whether it held, then
``GPU CHECK: all held`` (exit 0) or the failures (exit 1).

    python scripts/gpu_check.py --preflight              # versions, missing modules, the TRL contract; no training
    python scripts/gpu_check.py [--tokenizer DIR] [--keep DIR] [--no-zero3]
    python scripts/gpu_check.py --dry-run                # the same plan on the CPU (fp32, no DeepSpeed, no GPU
                                                         # claims): checks the script itself, about a minute
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("torch", "transformers", "accelerate", "trl", "datasets", "math_verify", "latex2sympy2_extended",
           "pyarrow", "pandas", "yaml", "tqdm", "deepspeed")
"""What a stage imports (deepspeed only for ZeRO-3)."""


def preflight(gpu: bool, zero3: bool) -> list[str]:
    """Versions and what is missing; the problems that stop the check ([] if none)."""
    sys.path.insert(0, str(ROOT / "src"))
    problems = []
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    for m in missing:
        if m != "deepspeed" or zero3:
            problems.append(f"module {m} is not installed (scripts/gpu_wheels.py brings it)")
    if missing:
        print(f"missing modules: {', '.join(missing)}", flush=True)
    if "trl" in missing or "torch" in missing:
        return problems
    import torch

    from stagerl.train.identity import library_versions
    from stagerl.train.trl_contract import check_contract

    print(f"python {sys.version.split()[0]}; " + ", ".join(f"{k} {v}" for k, v in library_versions().items()),
          flush=True)
    moved = check_contract()
    problems += [f"TRL contract: {m}" for m in moved]
    print(f"TRL contract: {'holds' if not moved else f'{len(moved)} piece(s) moved'}", flush=True)
    if gpu:
        if not torch.cuda.is_available():
            problems.append("no CUDA device")
        else:
            print(f"device: {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}, "
                  f"CUDA {torch.version.cuda}", flush=True)
    return problems


def tiny_llama(out: Path, tokenizer: str, gpu: bool) -> str:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, torch_dtype="bfloat16" if gpu else "float32")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16 if gpu else torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def write_run(root: Path, policy: str, gpu: bool, zero3: bool) -> tuple[Path, Path]:
    """Levels written as the pipeline writes them, and the recipe of the two stages; (recipe, run folder)."""
    import pandas as pd
    import yaml

    from stagerl.data.problem import Problem
    from stagerl.levels.build import write_levels

    math_p = [Problem(id=f"m{i}", domain="math", prompt=f"What is {i} + {i}?", answer=str(2 * i)) for i in range(10)]
    code_p = [Problem(id=f"c{i}", domain="code", prompt=f"Print {i}.", tests={"inputs": [""], "outputs": [f"{i}\n"]})
              for i in range(4)]
    run = root / "runs" / "gpu"
    levels = {"L1": math_p + code_p, "L2": math_p[4:] + code_p[2:]}
    write_levels({k: pd.DataFrame([p.to_row() for p in v]) for k, v in levels.items()}, run / "levels")
    trl = {"gradient_checkpointing": True}
    if gpu:
        trl["bf16"] = True
    if zero3:
        trl["deepspeed"] = "zero3"
    common = dict(learning_rate=1e-4, num_generations=4, prompts_per_step=3, plateau=None, math_code_ratio=2.0,
                  checkpoint_every=1, report_to="none", trl=trl)
    stages = [dict(name="s1", levels=["L1"], max_completion_length=32, max_steps=4, eval_every=2,
                   dev={"holdout": 2}, dev_k=2, **common),
              dict(name="s2", levels=["L2"], max_completion_length=64, max_steps=2, mask_truncated_completions=True,
                   entropy_coef=0.0, **common)]
    recipe = root / "gpu.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "gpu", "runs_dir": str(root / "runs"),
        "scoring": {"models": [{"name": "tiny", "model": policy}]},
        "levels": {"rules": {"models": {"policy": "tiny"}, "levels": {"L1": "policy in [0,1]", "L2": "policy in [0,1]"}}},
        "train": {"policy": policy, "stages": stages}}))
    return recipe, run


class GPUMemory:
    """Peak GPU memory in use over the run (``nvidia-smi`` every 0.2 s: the stages train in child processes)."""

    def __init__(self) -> None:
        self.peak_mib, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.peak_mib = max([self.peak_mib] + [int(x) for x in out if x.isdigit()])
            except (OSError, subprocess.SubprocessError):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> "GPUMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _env(zero3: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false"}
    if zero3:  # DeepSpeed wants a process group even for one process: a world of one on loopback
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    return env


def train(recipe: Path, env: dict[str, str], kill_when: Path | None = None, timeout: float = 1800) -> tuple[int, float]:
    """``stagerl train RECIPE`` in its own process group; SIGKILLed once ``kill_when`` exists. (exit code, seconds)."""
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "stagerl.cli", "train", str(recipe)], env=env,
                            start_new_session=True)
    try:
        while proc.poll() is None:
            if kill_when is not None and kill_when.exists():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return -9, time.time() - t0
            if time.time() - t0 > timeout:
                raise TimeoutError(f"stagerl train ran over {timeout} s")
            time.sleep(0.2)
        return proc.returncode, time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rows(run: Path, stage: str) -> list[dict]:
    path = run / "stages" / stage / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", help="write the run folder here instead of a temporary one")
    ap.add_argument("--tokenizer", help="a tokenizer folder (default: the embedded SmolLM2's)")
    ap.add_argument("--no-zero3", action="store_true", help="leave DeepSpeed ZeRO-3 out")
    ap.add_argument("--preflight", action="store_true", help="versions, missing modules and the TRL contract only")
    ap.add_argument("--dry-run", action="store_true", help="the same plan on the CPU (fp32, no DeepSpeed)")
    a = ap.parse_args()
    gpu, zero3 = not a.dry_run, not a.dry_run and not a.no_zero3
    problems = preflight(gpu, zero3)
    if problems or a.preflight:
        print("\n".join(f"PREFLIGHT: {p}" for p in problems) or "PREFLIGHT: ready")
        return 2 if problems else 0
    from stagerl.models import resolve_model
    from stagerl.train import latest_checkpoint
    from stagerl.train.identity import fingerprint

    results: list[tuple[str, bool]] = []

    def check(what: str, ok: bool) -> None:
        results.append((what, bool(ok)))
        print(f"{'HELD  ' if ok else 'FAILED'} {what}", flush=True)

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="stagerl-gpu-"))
    root.mkdir(parents=True, exist_ok=True)
    policy = tiny_llama(root / "tiny", a.tokenizer or resolve_model("smollm2-135m"), gpu)
    recipe, run = write_run(root, policy, gpu, zero3)
    s1, s2 = run / "stages" / "1_s1", run / "stages" / "2_s2"
    env = _env(zero3)
    with GPUMemory() if gpu else _Nothing() as mem:
        # the first stage is killed once its step-2 checkpoint is complete (its dev evaluation at step 2 done)
        code, killed_s = train(recipe, env, kill_when=s1 / "checkpoints" / "checkpoint-2" / "trainer_state.json")
        before = rows(run, "1_s1")
        check(f"stage 1 SIGKILLed mid-stage after {killed_s:.0f} s (no stage.json yet)",
              code == -9 and not (s1 / "stage.json").exists())
        code, resumed_s = train(recipe, env)
    check(f"the rerun resumed and finished both stages (exit {code}, {resumed_s:.0f} s)", code == 0)
    if code != 0:
        return _end(results, root)
    info1, info2 = (json.loads((s / "stage.json").read_text()) for s in (s1, s2))
    device, precision = ("cuda", "bf16") if gpu else ("cpu", "fp32")
    check(f"stage 1 resumed from checkpoint {info1['resumed_from']}", (info1["resumed_from"] or 0) >= 2)
    for info, name in ((info1, "1_s1"), (info2, "2_s2")):
        r = [x for x in rows(run, name) if x["step"] >= 1]
        check(f"{name}: trained on {info['device']} in {info['precision']}",
              info["device"].startswith(device) and info["precision"] == precision)
        check(f"{name}: gradient checkpointing on", info.get("gradient_checkpointing") is True)
        if zero3:
            check(f"{name}: DeepSpeed ZeRO-3 through the shipped config ({info.get('deepspeed')})",
                  str(info.get("deepspeed", "")).endswith("stagerl/train/zero3.json"))
        check(f"{name}: {info['steps']} steps, one metrics row each ({[x['step'] for x in r]})",
              [x["step"] for x in r] == list(range(1, info["steps"] + 1)))
        check(f"{name}: loss and reward finite",
              all(isinstance(x.get(k), float) and math.isfinite(x[k]) for x in r for k in ("loss", "reward")))
        check(f"{name}: resumable checkpoint saved", latest_checkpoint(run / "stages" / name / "checkpoints") is not None)
    dev = [(x["step"], x["dev_score"]) for x in rows(run, "1_s1") if x.get("dev_score") is not None]
    check(f"stage 1: dev evaluations (step, dev_score) {dev}", {2, 4} <= {s for s, _ in dev})
    check("stage 1: rows of the steps before the checkpoint kept as they were",
          all(x in rows(run, "1_s1") for x in before if 1 <= x["step"] <= (info1["resumed_from"] or 0)))
    check("stage 1: the step-0 dev baseline kept through the resume (issue 19, part 2)",
          any(x["step"] == 0 for x in before) and any(x["step"] == 0 for x in rows(run, "1_s1")))
    check("stage 2 started from stage 1's saved checkpoint",
          info2["identity"]["start"]["fingerprint"] == fingerprint(info1["checkpoint"]))
    check("stage 2: truncated masked, entropy off", info2["loss"]["mask_truncated_completions"]
          and info2["loss"]["entropy_coef"] == 0.0)
    for name in ("1_s1", "2_s2"):
        secs = [x["seconds"] for x in rows(run, name) if x["step"] >= 1]
        steps = [b - a for a, b in zip(secs, secs[1:]) if b > a]
        if steps:
            print(f"STEP TIME {name}: {sum(steps) / len(steps):.2f} s/step (median {sorted(steps)[len(steps) // 2]:.2f}, "
                  f"{len(steps)} steps)")
    if gpu:
        print(f"PEAK GPU MEMORY: {mem.peak_mib / 1024:.2f} GiB in use (nvidia-smi, whole device)")
    print(f"PEAK HOST MEMORY: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB "
          "(largest child process)")
    return _end(results, root, dry=a.dry_run)


class _Nothing:
    def __enter__(self) -> "_Nothing":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _end(results: list[tuple[str, bool]], root: Path, dry: bool = False) -> int:
    failed = [w for w, ok in results if not ok]
    print(f"run folder: {root}")
    head = "DRY RUN (CPU, nothing about GPUs checked)" if dry else "GPU CHECK"
    print(f"{head}: all held" if not failed else f"{head}: {len(failed)} failed: {'; '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
