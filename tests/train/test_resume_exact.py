"""Resume changes no decision (issue 19): one stage with a dev-score plateau and online filtering, run once
straight and once SIGKILLed (the real command, a real SIGKILL) just after its second dev evaluation and run
again; the dev rows (step 0 included), the plateau step, stage.json's dev history and cost and the online
counters equal the uninterrupted run's, and dev samples made after the resumed checkpoint are made again."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stagerl.data.generated import demo_math
from stagerl.store import SampleStore
from stagerl.train.resume_state import STATE_FILE

from test_resume import kill_when  # tests/train is on the path: conftest.py

# the reproduction: 10 demo_math problems (3 held out for dev), 2 prompts x 2 samples, 8 steps at most,
# a checkpoint every step, a dev evaluation every 2 steps, a plateau on dev_score, online filtering with skipping,
# and the policy of the best dev score kept (keep_best: its saved copy must survive the resume)
STAGE = dict(name="s1", levels=["L1"], num_generations=2, prompts_per_step=2, max_steps=8, max_completion_length=16,
             learning_rate=1e-5, math_code_ratio=None, seed=0, checkpoint_every=1, keep_checkpoints=2, eval_every=2,
             dev={"holdout": 3, "max_tokens": 16}, dev_k=2,
             plateau={"metric": "dev_score", "window": 1, "patience": 2, "min_delta": 0.5},
             online={"predictive_skip": True, "max_extra_rounds": 1}, keep_best=True, report_to="none")
COUNTS = ("groups_generated", "groups_dropped", "groups_skipped", "groups_filled", "groups_signal", "extra_rounds")


def _second_dev_row(out: Path):
    """Whether step 2's dev row (the second dev evaluation) is written."""
    def ready() -> bool:
        path = out / "metrics.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")] if path.is_file() else []
        return any(r["step"] == 2 and "dev_score" in r for r in rows)
    return ready


def _dev_rows(run_dir: Path, kit) -> list[tuple[int, float]]:
    return [(r["step"], r["dev_score"]) for r in map(json.loads, kit.metric_lines(run_dir)) if "dev_score" in r]


def straight_and_resumed(kit, make_run, model: str, stage: dict = STAGE, resumed_at=(1, 2)) -> tuple[dict, dict]:
    """The stage run straight and killed just after its second dev evaluation, then run again; ``resumed_at``:
    the checkpoints it may resume from (``None``: none complete at the kill, it starts again at step 0)."""
    levels = {"L1": demo_math(n=10, seed=0)}
    straight, ref_dir = make_run(model, [stage], levels=levels, name="straight")
    killed, run_dir = make_run(model, [stage], levels=levels, name="killed")
    out = run_dir / "stages" / "1_s1"
    # the two runs side by side (one core each on a 2-core box): the straight one runs to its end meanwhile
    ref = subprocess.Popen([sys.executable, "-m", "stagerl.cli", "train", str(straight)], env=kit.cli_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        kill_time = kill_when(kit, killed, _second_dev_row(out))
        assert not (out / "stage.json").exists(), "the stage finished before it was killed: nothing tested"
        assert [r for r in _dev_rows(run_dir, kit) if r[0] == 2], "killed before its second dev evaluation"
        done = kit.stagerl("train", str(killed), timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
        _, err = ref.communicate(timeout=1800)
        assert ref.returncode == 0, err[-3000:]
    finally:
        if ref.poll() is None:  # a failure above: leave nothing running (its stage process dies with it)
            ref.kill()
            ref.wait()

    a, b = kit.stage_json(ref_dir), kit.stage_json(run_dir)
    resumed = b["resumed_from"]
    assert a["resumed_from"] is None and resumed in resumed_at   # e.g. checkpoint-2 may or may not be complete at the kill
    line = ("resuming at step 0 (no complete checkpoint yet)" if resumed is None
            else f"resuming after step {resumed} (checkpoint-{resumed})")
    assert line in done.stdout, done.stdout[-3000:]
    assert (out / "checkpoints" / f"checkpoint-{b['steps']}" / STATE_FILE).is_file()
    # dev samples: those of evaluations after the resumed checkpoint were deleted and made again; with no
    # checkpoint, the starting policy's whole evaluation (step 0) was kept
    with SampleStore(out / "dev.sqlite") as store:
        made = {m: max(c for (c,) in store.query("SELECT created FROM samples WHERE model = ?", (m,)))
                for (m,) in store.query("SELECT DISTINCT model FROM samples")}
    assert sorted(made, key=lambda m: int(m[5:])) == [f"step-{s}" for s, _ in _dev_rows(ref_dir, kit)]
    for model_name, created in made.items():
        assert (created > kill_time) == (int(model_name[5:]) > (resumed or 0)), (model_name, resumed)
    return a, b


def check_same_decisions(kit, a: dict, b: dict, ref_dir: Path, run_dir: Path) -> None:
    # the plateau decision and the dev history, step 0 included
    assert b["reason"] == a["reason"] and b["steps"] == a["steps"]
    assert _dev_rows(run_dir, kit) == _dev_rows(ref_dir, kit) and _dev_rows(ref_dir, kit)[0][0] == 0
    assert b["dev"] == a["dev"] and b["cost"]["dev_tokens"] == a["cost"]["dev_tokens"]
    # the policy kept (keep_best): the same step, and the same weights up to float order
    assert b["kept"] == a["kept"] and a["kept"]["step"] in {int(s) for s in a["dev"]["scores"]}
    wa, wb = (load_file(str(Path(x["checkpoint"]) / "model.safetensors")) for x in (a, b))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6) for k in wa)
    # the online filtering decisions: per step and in total
    rows_a = [json.loads(x) for x in kit.metric_lines(ref_dir)]
    rows_b = [json.loads(x) for x in kit.metric_lines(run_dir)]
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a]
    assert [{k: r.get(k) for k in COUNTS} for r in rows_b] == [{k: r.get(k) for k in COUNTS} for r in rows_a]
    assert b["online"] == a["online"] and a["online"]["groups_generated"] > 0
    for key in COUNTS:
        assert a["online"][key] == sum(r.get(key) or 0 for r in rows_a)
    # the same completions were trained on: rewards, lengths and tokens per step (losses up to float order)
    for ra, rb in zip(rows_a[1:], rows_b[1:]):
        assert (rb["tokens"], rb["reward"]) == (ra["tokens"], ra["reward"]), ra["step"]
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4, abs=1e-7), ra["step"]


def test_killed_stage_makes_the_same_decisions_tiny(kit, make_run, tiny_model_dir):
    """CI: the reproduction on the tiny random Llama (same recipe; every group all-equal, so skipping and
    refilling act on every step)."""
    a, b = straight_and_resumed(kit, make_run, tiny_model_dir)
    check_same_decisions(kit, a, b, Path(a["checkpoint"]).parents[2], Path(b["checkpoint"]).parents[2])
    assert a["reason"] == "plateau at step 4" and a["online"]["groups_skipped"] > 0
    report(a, b)


def test_killed_before_its_first_checkpoint_keeps_the_step0_evaluation_and_its_decisions_tiny(kit, make_run,
                                                                                              tiny_model_dir):
    """Killed after two dev evaluations but before its first checkpoint (every 4 steps): the stage starts again at
    step 0 without evaluating the starting policy again (its stored samples, made before the kill, are kept and
    cost what they cost), remakes step 2's, and decides as the straight run does."""
    stage = dict(STAGE, checkpoint_every=4)
    a, b = straight_and_resumed(kit, make_run, tiny_model_dir, stage=stage, resumed_at=(None,))
    check_same_decisions(kit, a, b, Path(a["checkpoint"]).parents[2], Path(b["checkpoint"]).parents[2])
    assert a["reason"] == "plateau at step 4" and b["cost"]["dev_tokens"] > 0


@pytest.mark.slow
def test_killed_stage_makes_the_same_decisions_smollm2(kit, make_run, smollm2_dir):
    """The issue's reproduction on the embedded SmolLM2-135M (minutes on 2 cores)."""
    a, b = straight_and_resumed(kit, make_run, smollm2_dir)
    check_same_decisions(kit, a, b, Path(a["checkpoint"]).parents[2], Path(b["checkpoint"]).parents[2])
    report(a, b)


def report(a: dict, b: dict) -> None:
    """The comparison's figures (``pytest -s`` shows them)."""
    for name, info in (("straight", a), ("killed+resumed", b)):
        print(f"{name}: " + json.dumps({**{k: info[k] for k in ("reason", "steps", "resumed_from", "online")},
                                        "dev_scores": info["dev"]["scores"], "dev_tokens": info["cost"]["dev_tokens"]}))


def test_a_checkpoint_without_stagerl_state_is_not_resumed_from(tmp_path):
    """A kill between TRL's trainer_state.json and our stagerl_state.json: that checkpoint is incomplete."""
    from stagerl.train.grpo import latest_checkpoint

    for step, files in ((1, ("trainer_state.json", STATE_FILE)), (2, ("trainer_state.json",)), (3, (STATE_FILE,))):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-1"


def test_a_checkpoint_cut_short_is_removed_and_the_resume_line_says_from_which_step(tmp_path):
    """A kill during a checkpoint's save leaves its folder with a half-written weights file: the next run
    removes it before training (it could never be resumed from) and its stage line says so."""
    from stagerl.train.resume_state import drop_cut_short
    from stagerl.train.runner import _resume_note

    out, ck = tmp_path / "1_s1", tmp_path / "1_s1" / "checkpoints"
    assert _resume_note(out, drop_cut_short(ck)) == ""  # a fresh stage: nothing to say, no folder needed
    for step, files in ((2, ("trainer_state.json", STATE_FILE, "model.safetensors")), (4, ("config.json", ".tmpu1DjY7"))):
        (ck / f"checkpoint-{step}").mkdir(parents=True)
        for name in files:
            (ck / f"checkpoint-{step}" / name).write_bytes(b"{}" if name.endswith(".json") else b"\0" * 4096)
    (out / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    cut = drop_cut_short(ck)
    assert cut == [4] and not (ck / "checkpoint-4").exists()
    assert sorted(p.name for p in (ck / "checkpoint-2").iterdir()) == ["model.safetensors", STATE_FILE, "trainer_state.json"]
    assert _resume_note(out, cut) == "resuming after step 2 (checkpoint-2); checkpoint-4: save cut short (killed, or the disk filled), removed, "
    assert drop_cut_short(ck) == [] and _resume_note(out, []) == "resuming after step 2 (checkpoint-2), "
    (ck / "checkpoint-2" / STATE_FILE).unlink()  # now no complete checkpoint: training starts again at step 0
    assert _resume_note(out, drop_cut_short(ck)) == ("resuming at step 0 (no complete checkpoint yet); "
                                                     "checkpoint-2: save cut short (killed, or the disk filled), removed, ")
