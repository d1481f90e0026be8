"""The toy experiments (experiments/): recipes load against the current schema, arms share one scoring
run per seed and spend equal budgets, seeds expand, the one-model levels cut as documented, and the
summary reads run-folder files. No model runs here (the experiments themselves take hours)."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stagerl.config import load_recipe
from stagerl.levels.rules import label, load_rules
from stagerl.store import SampleStore

from repo_files import load  # tests/ is on the path: conftest.py

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments"


@pytest.fixture(scope="module")
def run():
    return load("experiments/run.py")


def test_every_arm_loads_and_experiments_check(run):
    manifest = run.load_manifest()
    arms = run.check(manifest, list(manifest["experiments"]))
    assert set(arms) == {a for e in manifest["experiments"].values() for a in e["arms"]}
    for arm in arms:
        recipe = load_recipe(EXP / f"{arm}.yaml")
        assert recipe.name == arm
        assert recipe.train.policy == "smollm2-135m"
    assert len(manifest["seeds"]) >= 3


def test_staging_arms_differ_as_the_claim_says(run):
    staged = load_recipe(EXP / "staging-staged.yaml").train.stages
    single = load_recipe(EXP / "staging-single.yaml").train.stages
    s1, s2 = staged
    assert s1.plateau is not None and s2.max_completion_length > s1.max_completion_length
    assert s2.mask_truncated_completions and not s1.mask_truncated_completions
    assert s2.entropy_coef == 0 and s1.entropy_coef > 0
    assert len(single) == 1 and single[0].levels == s1.levels
    total = run.load_manifest()["experiments"]["staging"]["total_steps"]
    assert single[0].max_steps == total > s1.max_steps
    # the third arm: one stage at the LONG limit from the start (the limit alone, without the switch)
    (long,) = load_recipe(EXP / "staging-long.yaml").train.stages
    assert long.max_completion_length == s2.max_completion_length == int(1.5 * s1.max_completion_length)
    assert long.max_steps == total and long.levels == s1.levels and single[0].max_completion_length == s1.max_completion_length
    # the plateau rule watches the dev score and can act before stage 1's cap (issue #24)
    assert s1.plateau.metric == "dev_score" and s1.eval_every * s1.plateau.window * (s1.plateau.patience + 1) < s1.max_steps


def test_arms_must_share_scoring_and_budget(run, tmp_path):
    folder = tmp_path / "experiments"
    shutil.copytree(EXP, folder)
    manifest = run.load_manifest(folder / "experiments.yaml")
    d = yaml.safe_load((folder / "difficulty-L2.yaml").read_text())
    d["scoring"]["k"] = 4
    (folder / "difficulty-L2.yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(run.ExperimentError, match="difficulty-L2.*'scoring'"):
        run.check(manifest, ["difficulty"], folder)
    d["scoring"]["k"] = 8
    d["train"]["stages"][0]["max_steps"] = 21
    (folder / "difficulty-L2.yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(run.ExperimentError, match="different budgets"):
        run.check(manifest, ["difficulty"], folder)
    staged = yaml.safe_load((folder / "staging-staged.yaml").read_text())
    staged["train"]["stages"][0]["max_steps"] = manifest["experiments"]["staging"]["total_steps"]
    (folder / "staging-staged.yaml").write_text(yaml.safe_dump(staged))
    with pytest.raises(run.ExperimentError, match="below total_steps"):
        run.check(manifest, ["staging"], folder)


def test_seed_applies_to_training_data_scoring_and_stages_not_eval(run):
    base = run.arm_dict("mixing-mixed")
    seeded = run.with_seed(base, 7)
    assert [s["seed"] for s in seeded["data"]] == [7, 7]
    assert seeded["scoring"]["sampling"]["seed"] == 7
    assert [s["seed"] for s in seeded["train"]["stages"]] == [7]
    assert seeded["eval"] == base["eval"]  # the held-out set and its sampling seed stay fixed
    assert Path(seeded["levels"]["rules"]).is_file()  # absolute: works from any directory
    load_recipe(seeded)
    tiny = run.smoke(seeded)
    load_recipe(tiny)
    assert [s["n"] for s in tiny["data"]] == [6, 6]   # the generated families shrink too
    assert tiny["train"]["stages"][0]["dev"]["source"]["n"] == 4


def test_engine_switches_scoring_and_evaluation_only(run):
    base = run.with_seed(run.arm_dict("staging-staged"), 3)
    v = run.with_engine(base, "vllm")
    assert [m["engine"] for m in v["scoring"]["models"]] == ["vllm"] and v["eval"]["engine"] == "vllm"
    assert [m["engine"] for m in base["scoring"]["models"]] == ["transformers"]  # the input is not changed
    strip = lambda d: {**d, "scoring": {**d["scoring"], "models": [{k: x for k, x in m.items() if k != "engine"}
                                                                   for m in d["scoring"]["models"]]},
                       "eval": {k: x for k, x in d["eval"].items() if k != "engine"}}
    assert strip(v) == strip(base)  # models, sampling, seeds, data, training: all as they were
    assert run.with_engine(base, None) == base
    load_recipe(v)
    # every arm of an experiment still shares one scoring run under the switch
    arms = {a: run.with_engine(run.with_seed(run.arm_dict(a), 0), "vllm") for a in run.load_manifest()["experiments"]["staging"]["arms"]}
    assert len({json.dumps(run.shared_part(d), sort_keys=True) for d in arms.values()}) == 1


def test_expand_runs_a_shared_arm_once_per_seed(run):
    manifest = run.load_manifest()
    plan = run.expand(manifest, ["difficulty", "mixing"], [0, 1, 2])
    assert len(plan) == len(set(plan)) == 3 * 4  # difficulty-L1 is also mixing's math-only arm
    assert [s for s, _ in plan] == sorted(s for s, _ in plan)  # seeds outermost


def test_stage2_gets_the_rest_of_the_budget(run):
    assert run.stage2_steps(24, 12) == 12 and run.stage2_steps(24, 16) == 8
    with pytest.raises(run.ExperimentError, match="nothing left"):
        run.stage2_steps(24, 24)


def test_one_model_levels_are_nested_bands_of_the_policy_rate():
    rules = load_rules(EXP / "levels-one-model.yaml")
    got = {s: label(rules, {"smollm2-135m": s / 8}, "p", "math") for s in range(9)}
    assert [s for s in range(9) if got[s]["L1_math"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [s for s in range(9) if got[s]["L2_math"]] == [1, 2, 3, 4]
    assert [s for s in range(9) if got[s]["L3_math"]] == [1, 2]
    code = label(rules, {"smollm2-135m": 0.5}, "c", "code")
    assert code["L1"] and not any(code[f"L{i}_math"] for i in (1, 2, 3))


def test_dry_run_prints_the_plan_and_writes_nothing(run, tmp_path, capsys):
    assert run.main(["staging", "--seeds", "0", "--dry-run", "--runs-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "stagerl score" in out and out.count("stagerl score") == 1  # scoring once for both arms
    assert "staging-staged.stage1.yaml" in out and "stagerl report" in out
    assert not (tmp_path / "r").exists()


def test_summary_reads_the_run_folders(run, tmp_path):
    root = tmp_path / "runs"
    for seed, (base, final, rewards) in enumerate([(0.25, 0.5, [0.1, 0.2, 0.3, 0.6]), (0.3, 0.4, [0.2, 0.2, 0.5])]):
        arm = root / f"seed{seed}" / "difficulty-L1"
        stage = arm / "stages" / "1_L1"
        stage.mkdir(parents=True)
        (stage / "stage.json").write_text(json.dumps({"steps": len(rewards), "reason": "max_steps"}))
        (stage / "metrics.jsonl").write_text("".join(json.dumps({"step": i + 1, "reward": r}) + "\n"
                                                     for i, r in enumerate(rewards)))
        for ckpt, value in (("base", base), ("1_L1", final)):
            (arm / "eval" / ckpt).mkdir(parents=True)
            (arm / "eval" / ckpt / "results.json").write_text(json.dumps({"heldout_math": {"pass@1": value}}))
        (arm / "experiment.json").write_text(json.dumps({"seconds": {"train": 1.0}}))
    exp = {"claim": "x", "arms": ["difficulty-L1"]}
    s = run.summarize("difficulty", exp, [0, 1], root)["arms"]["difficulty-L1"]
    over = s["over_seeds"]
    assert over["heldout_math"]["gain"]["values"] == pytest.approx([0.25, 0.1])
    assert over["heldout_math"]["final"]["mean"] == pytest.approx(0.45)
    assert over["initial_reward"]["values"] == pytest.approx([0.2, 0.3])
    assert s["per_seed"][0]["stages"][0]["reward_last3"] == pytest.approx((0.2 + 0.3 + 0.6) / 3)
    assert s["per_seed"][0]["stages"][0]["reward_code_first3"] is None  # not logged: absent, not 0


def test_tables_print_the_run_folders_numbers(tmp_path):
    """experiments/tables.py (docs/results.md's tables) reads each number from the file that holds it."""
    tables = load("experiments/tables.py")
    root = tmp_path / "runs"
    arm = root / "seed0" / "staging-staged"
    for i, (name, steps, rows) in enumerate([("1_stage1", 2, [0.0, 0.2, 0.4]), ("2_stage2", 1, [0.6, 0.8])]):
        stage = arm / "stages" / name
        stage.mkdir(parents=True)
        (stage / "stage.json").write_text(json.dumps({"steps": steps, "reason": "plateau" if i == 0 else "max_steps",
                                                      "config": {"levels": ["L2_math"], "max_completion_length": 30}}))
        (stage / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "dev_score": d, **({"reward": 0.5, "clipped_ratio": 0.1 * (i + 1)} if s else {})}) + "\n"
            for s, d in enumerate(rows)))
    # the policy's scoring samples, in the seed's shared store: stage 1's limit (30) would truncate the
    # 40- and 31-token answers of its two problems (3 of 5), not the other level's 90-token one
    (arm / "levels").mkdir()
    (arm / "levels" / "stats.json").write_text(json.dumps({"levels": {}, "models": {"policy": "pol"}}))
    pd.DataFrame({"id": ["a", "b"]}).to_parquet(arm / "levels" / "L2_math.parquet")
    (root / "seed0" / "_shared").mkdir()
    with SampleStore(root / "seed0" / "_shared" / "samples.sqlite") as st:
        st.add([{"problem_id": pid, "model": m, "idx": i, "text": "", "tokens": t, "finish": "stop", "reward": 0}
                for pid, m, i, t in [("a", "pol", 0, 40), ("a", "pol", 1, 30), ("b", "pol", 0, 31), ("b", "pol", 1, 12),
                                     ("b", "pol", 2, 45), ("c", "pol", 0, 90), ("a", "other", 0, 99)]])
    for ckpt, v in (("base", 0.25), ("1_stage1", 0.3), ("2_stage2", 0.375)):
        (arm / "eval" / ckpt).mkdir(parents=True)
        (arm / "eval" / ckpt / "results.json").write_text(json.dumps({"heldout_math": {"pass@1": v, "ci95": [v - 0.1, v + 0.1]}}))
    pair = {"benchmark": "heldout_math", "diff": 0.125, "ci95": [-0.05, 0.3], "p_value": 0.21, "wins": 5, "losses": 1, "ties": 34}
    (arm / "eval" / "compare.json").write_text(json.dumps({"pairs": [{**pair, "a": "2_stage2", "b": "base"}]}))
    (root / "compare" / "staging-seed0").mkdir(parents=True)
    (root / "compare" / "staging-seed0" / "compare.json").write_text(json.dumps(
        {"pairs": [{**pair, "diff": -0.05, "a": "staging-single:1_single", "b": "staging-staged:2_stage2"}]}))
    (root / "compare" / "staging-seed0" / "dev.png").write_bytes(b"png")
    row = tables.claim_b(root, [0]).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["0", "staged", "2 (plateau)", "1 (max_steps)", "0.100 → 0.200"]
    assert cells[5] == "0.300 [0.200, 0.400]" and cells[6] == "0.375 [0.275, 0.475]"
    assert cells[7] == "+0.125 [-0.050, +0.300], p=0.210 (5/1/34), MDD 0.250"  # 2.80 x 0.35 / 3.92
    assert cells[9] == "0:0.00 1:0.20 2:0.40 3:0.80"  # global steps; stage 2's step 0 is stage 1's last weights
    assert cells[11] == "0.600 (5 samples, limit 30)"  # tokens > 30 among the policy's samples of a and b
    single = [c.strip() for c in tables.claim_b(root, [0]).splitlines()[3].strip("|").split("|")]
    assert single[8].startswith("-0.050 [")  # paired against the staged arm, from stagerl compare's file
    assert tables.copy_plots(root, [0], tmp_path / "docs") == [tmp_path / "docs" / "staging-seed0-dev.png"]


def _eval_store(folder: Path, ckpt: str, bench: str, successes: dict[str, int], k: int = 4, text: str = ""):
    """A real evaluation store: ``successes[pid]`` of ``k`` samples of ``ckpt`` correct on ``bench``."""
    (folder / ckpt).mkdir(parents=True, exist_ok=True)
    (folder / ckpt / "results.json").write_text(json.dumps({bench: {"pass@1": 0.0, "k": k}}))
    with SampleStore(folder / ckpt / f"{bench}.sqlite") as st:
        st.add([{"problem_id": pid, "model": ckpt, "idx": i, "text": text, "tokens": 5 + i, "finish": "stop",
                 "reward": float(i < c)} for pid, c in successes.items() for i in range(k)])


def test_pooled_comparisons_sum_seeds_count_base_once_and_give_t_intervals(tmp_path):
    """experiments/pooled.py: an arm's samples are summed over seeds problem by problem, the base model's
    identical evaluation is counted once, and the between-seed interval is a t interval (S - 1 df)."""
    pooled, power = load("experiments/pooled.py"), load("experiments/power.py")
    from stagerl.evaluate.stats import paired_difference
    assert power.t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-3)
    assert power.t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-3)
    pids = [f"p{i}" for i in range(12)]
    base = {p: i % 2 for i, p in enumerate(pids)}
    arm_by_seed = {0: {p: min(4, base[p] + 2) for p in pids}, 1: {p: base[p] + (i % 3 == 0) for i, p in enumerate(pids)},
                   2: {p: base[p] for p in pids}}
    for s, succ in arm_by_seed.items():
        _eval_store(tmp_path / f"seed{s}" / "_shared" / "eval", "base", "heldout_math", base)
        arm = tmp_path / f"seed{s}" / "difficulty-L2"
        for st in ("1_a", "2_b"):
            (arm / "stages" / st).mkdir(parents=True)
            (arm / "stages" / st / "stage.json").write_text("{}")
        _eval_store(arm / "eval", "2_b", "heldout_math", succ)
        _eval_store(arm / "eval", "1_a", "heldout_math", {p: 4 for p in pids})  # not the final stage: ignored
    r = pooled.compare(tmp_path, [0, 1, 2], "difficulty-L2", "base", "heldout_math")
    per = [statistics.fmean(arm_by_seed[s][p] / 4 - base[p] / 4 for p in pids) for s in (0, 1, 2)]
    assert r["seeds"] == [0, 1, 2] and r["per_seed"] == pytest.approx(per)
    assert r["pooled"]["diff"] == pytest.approx(statistics.fmean(per))
    # summed arm counts (12 samples a problem) against the base counted once (4), not 12 identical samples
    want = paired_difference({p: (12, sum(arm_by_seed[s][p] for s in (0, 1, 2))) for p in pids},
                             {p: (4, base[p]) for p in pids})
    assert r["pooled"]["ci95"] == pytest.approx(want["ci95"]) and r["pooled"]["p_value"] == pytest.approx(want["p_value"])
    half = power.t_quantile(0.975, 2) * statistics.stdev(per) / 3 ** 0.5
    assert r["between"]["ci95"] == pytest.approx([statistics.fmean(per) - half, statistics.fmean(per) + half])
    assert r["between"]["same_sign"] == 2  # seed 2 equals the base: no sign
    assert pooled.compare(tmp_path, [0, 1, 2], "difficulty-L3", "base", "heldout_math") is None  # never run
    row = pooled.pooled_table(tmp_path, [0, 1, 2]).splitlines()
    assert any("difficulty-L2 − base" in line and "| 3 |" in line for line in row)
    png = pooled.seeds_figure(tmp_path, [0, 1, 2], tmp_path / "docs")
    assert png == tmp_path / "docs" / "seeds-final.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert pooled.seeds_figure(tmp_path / "nothing", [0], tmp_path / "empty") is None


def test_tables_fill_results_page_between_markers_and_refuse_a_missing_one(tmp_path):
    """tables.py --into: each table lands between its markers, prose around them is kept; a table without
    a marker (or a marker naming no table) is an error naming it, and the page is left as it was."""
    tables = load("experiments/tables.py")
    page = tmp_path / "results.md"
    page.write_text("# R\nprose a\n<!-- table: A -->\nold A\n<!-- /table -->\nprose b\n<!-- table: B -->\n<!-- /table -->\n")
    tables.fill(page, {"A": "| x |\n|---|\n| 1 |", "B": "| y |"})
    assert page.read_text() == ("# R\nprose a\n<!-- table: A -->\n| x |\n|---|\n| 1 |\n<!-- /table -->\nprose b\n"
                                "<!-- table: B -->\n| y |\n<!-- /table -->\n")
    before = page.read_text()
    with pytest.raises(SystemExit, match="no marker '<!-- table: C -->'"):
        tables.fill(page, {"A": "new", "C": "c"})
    with pytest.raises(SystemExit, match="marker '<!-- table: B -->' names no table"):
        tables.fill(page, {"A": "new"})
    assert page.read_text() == before


def test_setup_table_reads_the_shared_folder(tmp_path):
    """The shared set-up row: the policy's samples in the store against k × problems, the levels, the base."""
    tables = load("experiments/tables.py")
    sh = tmp_path / "seed3" / "_shared"
    (sh / "levels").mkdir(parents=True)
    (sh / "levels" / "stats.json").write_text(json.dumps({
        "problems": 2, "domains": {"math": 2, "code": 0}, "in_no_level": 1, "models": {"policy": "pol"},
        "levels": {"L1": {"total": 1, "math": 1}, "L2_math": {"total": 1}}}))
    (sh / "recipe.yaml").write_text("scoring:\n  k: 4\n")
    with SampleStore(sh / "samples.sqlite") as st:
        st.add([{"problem_id": p, "model": m, "idx": i, "text": "", "tokens": 3, "finish": "stop", "reward": 0}
                for p, m, i in [("a", "pol", 0), ("a", "pol", 1), ("b", "pol", 0), ("b", "ref", 0)]])
    (sh / "eval" / "base").mkdir(parents=True)
    (sh / "eval" / "base" / "results.json").write_text(json.dumps({"heldout_math": {"pass@1": 0.25, "ci95": [0.2, 0.3]}}))
    cells = [c.strip() for c in tables.setup(tmp_path, [3]).splitlines()[2].strip("|").split("|")]
    assert cells == ["3", "2 + 0", "3 of 8", "1 (1 + 0)", "–", "1", "–", "1", "0.250 [0.200, 0.300]", "–"]


def test_strata_table_splits_heldout_by_level_and_overlap_with_training(tmp_path):
    """pooled.strata_table: held-out problems grouped by meta.level and by whether a training prompt of
    some seed is the same text; each cell sums the seeds' samples of that group."""
    pooled = load("experiments/pooled.py")
    from stagerl.data.families import chain_math
    train, held = chain_math(300, seed=0), chain_math(240, seed=1000)
    prompts = {p.prompt for p in train}
    sh = tmp_path / "seed0" / "_shared"
    sh.mkdir(parents=True)
    (sh / "recipe.yaml").write_text(yaml.safe_dump({
        "data": [{"builtin": "chain_math", "n": 300, "seed": 0}],
        "eval": {"benchmarks": [{"name": "heldout_math", "source": {"builtin": "chain_math", "n": 240, "seed": 1000}}]}}))
    lvl1 = [p for p in held if p.meta["level"] == 1]
    seen = [p.id for p in lvl1 if p.prompt in prompts]
    assert 0 < len(seen) < len(lvl1)
    _eval_store(sh / "eval", "base", "heldout_math", {p.id: 1 for p in lvl1})          # 1 of 4 right
    arm = tmp_path / "seed0" / "difficulty-L1"
    (arm / "stages" / "1_L1").mkdir(parents=True)
    (arm / "stages" / "1_L1" / "stage.json").write_text("{}")
    _eval_store(arm / "eval", "1_L1", "heldout_math", {p.id: 4 if p.id in seen else 2 for p in lvl1},
                text="4 + 3 = 7.\n7 * 2 = 14.")
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in pooled.strata_table(tmp_path, [0]).splitlines()[2:]]
    by = {(r[1], r[2]): r for r in rows}
    assert sum(int(r[3]) for r in rows) == 240
    assert by[("1", "yes")][3:6] == [str(len(seen)), "0.250", "1.000"]
    assert by[("1", "no")][3:6] == [str(len(lvl1) - len(seen)), "0.250", "0.500"]
    assert by[("2", "no")][4:6] == ["–", "–"]   # no samples of level-2 problems stored
    # answer length (tokens 5..8: mean 6.5) and '=' signs per answer (base "" 0, the arm's 2), level 1 only
    steps = pooled.steps_table(tmp_path, [0]).splitlines()
    assert len(steps) == 3 and steps[2].startswith("| 1 | 6.5 / 0.0 | 6.5 / 2.0 | – |")


def test_arms_option_runs_only_those_arms_and_refuses_an_unknown_one(run, tmp_path, capsys):
    """--arms splits a seed over processes: the plan holds only the named arms; a name that is not an
    arm of the experiments is an error before anything runs."""
    assert run.main(["staging", "--seeds", "2", "--arms", "staging-long", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 arm run(s): staging-long@seed2" in out and "staging-single" not in out
    with pytest.raises(SystemExit):
        run.main(["staging", "--arms", "difficulty-L1", "--dry-run", "--runs-dir", str(tmp_path)])
    assert "not an arm of staging" in capsys.readouterr().err


def test_same_compares_two_runs_file_by_file(tmp_path, capsys):
    """experiments/same.py: stores, metrics and tables of a second run against the first; the clock aside."""
    same = load("experiments/same.py")

    def write_run(root: Path, reward_of_b: float = 1.0, seconds: float = 1.0) -> None:
        _eval_store(root / "seed0" / "arm" / "eval", "1_L1", "heldout_math", {"a": 2, "b": 3})
        with SampleStore(root / "seed0" / "arm" / "eval" / "1_L1" / "heldout_math.sqlite") as st:
            st.add([{"problem_id": "b", "model": "1_L1", "idx": 9, "text": "x", "tokens": 3, "finish": "stop",
                     "reward": reward_of_b}])
        stage = root / "seed0" / "arm" / "stages" / "1_L1"
        stage.mkdir(parents=True)
        stage.joinpath("metrics.jsonl").write_text("\n".join(json.dumps(r) for r in (
            {"step": 0, "dev_score": 0.25, "seconds": seconds},
            {"step": 1, "reward": 0.5, "loss": -0.03, "seconds": 2 * seconds, "train_runtime": seconds})) + "\n")
        pd.DataFrame({"id": ["a", "b"], "rate": [0.5, 0.75]}).to_parquet(root / "seed0" / "pass_rates.parquet")

    first, second = tmp_path / "first", tmp_path / "second"
    write_run(first)
    write_run(second, seconds=7.0)                                       # another clock, the same run
    assert same.main([str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert ".sqlite: 1 of 1 files equal, 9 of 9 rows" in out and ".jsonl: 1 of 1 files equal, 2 of 2 rows" in out
    assert "reproduces the first" in out

    third = tmp_path / "third"
    write_run(third, reward_of_b=0.0)                                    # one sample graded otherwise
    (third / "seed1").mkdir()
    pd.DataFrame({"id": ["c"]}).to_parquet(third / "seed1" / "levels.parquet")   # a file the first run lacks
    assert same.main([str(first), str(third)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS seed0/arm/eval/1_L1/heldout_math.sqlite: 1 of 9 rows differ" in out
    assert "ONLY IN SECOND seed1/levels.parquet" in out and "the runs differ" in out
    fourth = tmp_path / "fourth"
    write_run(fourth)
    metrics = fourth / "seed0" / "arm" / "stages" / "1_L1" / "metrics.jsonl"
    metrics.write_text(metrics.read_text().replace('"loss": -0.03', '"loss": -0.031'))   # another loss at step 1
    assert same.main([str(first), str(fourth)]) == 1
    assert "DIFFERS seed0/arm/stages/1_L1/metrics.jsonl: 1 of 2 rows differ" in capsys.readouterr().out
    with pytest.raises(SystemExit):                                      # a folder that is not there
        same.main([str(first), str(tmp_path / "nowhere")])


def test_a_command_that_fails_unexpectedly_runs_once_more_and_a_bad_recipe_does_not(run, tmp_path, capsys):
    """A real process: exit status 1 (an unexpected error, e.g. vLLM's engine died) the first time and 0
    the second passes after one retry; exit status 2 (a bad recipe) and a second 1 are not retried."""
    import subprocess
    import sys

    def script(codes: list[int]) -> tuple[list[str], Path]:
        calls = tmp_path / f"calls-{'-'.join(map(str, codes))}"
        return [sys.executable, "-c", f"import pathlib, sys; p = pathlib.Path({str(calls)!r}); n = len(p.read_text()) "
                f"if p.exists() else 0; p.write_text('x' * (n + 1)); sys.exit({codes!r}[min(n, {len(codes) - 1})])"], calls

    cmd, calls = script([1, 0])
    run.sh(cmd, dry=False)
    assert calls.read_text() == "xx" and "running it again, retry 1 of 1" in capsys.readouterr().out
    for codes, runs in (([2, 0], 1), ([1, 1, 0], 2)):
        cmd, calls = script(codes)
        with pytest.raises(subprocess.CalledProcessError) as e:
            run.sh(cmd, dry=False)
        assert e.value.returncode == codes[runs - 1] and len(calls.read_text()) == runs
