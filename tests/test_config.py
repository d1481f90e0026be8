"""The typed recipe: YAML round trip, defaults and the errors that name the key path."""

import pytest
import yaml

from stagerl.config import ConfigError, Recipe, StageConfig, builtin_recipes, dump_recipe, load_recipe, to_dict


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_builtin_recipes_round_trip(name, tmp_path):
    assert name in builtin_recipes()
    recipe = load_recipe(name)
    path = dump_recipe(recipe, tmp_path / "r.yaml")
    again = load_recipe(path)
    assert again == recipe
    assert to_dict(again) == yaml.safe_load(path.read_text())


def test_paper_recipe_has_the_papers_hyperparameters():
    r = load_recipe("paper")
    s1, s2 = r.train.stages
    assert (s1.learning_rate, s1.num_generations, s1.prompts_per_step, s1.beta, s1.entropy_coef) == (1e-6, 16, 128, 0.001, 0.001)
    assert s1.levels == ["L2"] and s2.levels == ["L3"]
    assert (s1.max_completion_length, s2.max_completion_length) == (16384, 24576)
    assert not s1.mask_truncated_completions and s2.mask_truncated_completions and s2.entropy_coef == 0
    assert [m.name for m in r.scoring.models][-1] == "deepseek-r1"
    for s in (s1, s2):  # the plateau watches held-out accuracy, evaluated on problems kept out of training
        assert s.plateau.metric == "dev_score" and s.eval_every > 0 and s.dev.holdout > 0
    assert {b.name: b.k for b in r.eval.benchmarks} == {"aime24": 16, "math500": 16, "lcb_test": 4}
    assert (r.eval.sampling.temperature, r.eval.sampling.top_p) == (0.6, 0.95)


def test_defaults_and_coercions():
    r = load_recipe({"train": {"stages": [{"learning_rate": "2e-6", "beta": 0}]}, "scoring": {"models": [{"name": "m"}]}})
    st = r.train.stages[0]
    assert isinstance(st.learning_rate, float) and st.learning_rate == 2e-6
    assert isinstance(st.beta, float) and st.beta == 0.0
    assert r.scoring.models[0].model == "m"  # model defaults to name
    assert st == StageConfig(learning_rate=2e-6, beta=0.0)
    assert r.eval.benchmarks == [] and Recipe().run_dir.as_posix() == "runs/run"


@pytest.mark.parametrize("data, where", [
    ({"trian": {}}, "trian: unknown key"),
    ({"train": {"stages": [{}, {"betaa": 1}]}}, "train.stages[1].betaa: unknown key"),
    ({"train": {"stages": [{"beta": "high"}]}}, "train.stages[0].beta: expected float"),
    ({"scoring": {"k": 2.5}}, "scoring.k: expected int"),
    ({"scoring": {"adaptive": "yes"}}, "scoring.adaptive: expected bool"),
    ({"scoring": {"models": [{"model": "x"}]}}, "scoring.models[0]"),
    ({"train": {"stages": {"name": "x"}}}, "train.stages: expected a list"),
])
def test_errors_name_the_key_path(data, where):
    with pytest.raises(ConfigError, match=__import__("re").escape(where)):
        load_recipe(data)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scoring:\n  k: [1\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_recipe(bad)
    bad.write_text("scoring:\n  kk: 1\n")
    with pytest.raises(ConfigError, match="bad.yaml: scoring.kk: unknown key"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="no built-in recipe"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_builtin_recipes_rules_name_only_scored_models(name):
    """Adaptive scoring and levels need a rate for every model the rules use."""
    from stagerl.pipeline import bound_rules

    recipe = load_recipe(name)
    assert set(bound_rules(recipe).models.values()) <= {m.name for m in recipe.scoring.models}
