"""The transformers engine on real models: a tiny random Llama and the real SmolLM2-135M."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stagerl.engines import make_engine
from stagerl.engines.hf import TransformersEngine

PROMPTS = ["hi", "What is 2 + 2?", [{"role": "user", "content": "Name a colour, then a much longer list of fruits."}],
           "Tell me a story about a cat who learns to fly over the mountains.", "x"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> TransformersEngine:
    return make_engine("transformers", tiny_model_dir, batch_size=4)


@pytest.fixture(scope="module")
def smol(smollm2_dir) -> TransformersEngine:
    return TransformersEngine(smollm2_dir, batch_size=8)


def test_n_completions_per_prompt_in_order(tiny, tiny_model_dir):
    out = tiny.generate(PROMPTS, n=3, temperature=1.0, max_tokens=12, seed=0)
    assert [len(r) for r in out] == [3] * len(PROMPTS)
    for c in (c for r in out for c in r):
        assert isinstance(c.text, str) and 1 <= c.tokens <= 12 and c.finish in ("stop", "length")
        assert c.finish == "stop" or c.tokens == 12
    assert tiny.model_path == str(Path(tiny_model_dir).resolve()) and tiny.device == "cpu"


def test_on_done_reports_each_prompt_once_as_its_batch_ends(tiny):
    """Sampled and greedy: a prompt is reported after the batch that completes it, before the call
    ends (4 of the 15 sequences per batch), with the completions the call returns."""
    for temperature in (1.0, 0):
        heard: list[tuple[int, list, int]] = []
        bars: list = []
        tiny.progress = lambda **kw: bars.append(_Count()) or bars[-1]
        try:
            out = tiny.generate(PROMPTS, n=3, temperature=temperature, max_tokens=8, seed=1,
                                on_done=lambda i, c: heard.append((i, c, bars[-1].n)))
        finally:
            tiny.progress = False
        assert sorted(i for i, _, _ in heard) == list(range(len(PROMPTS)))
        assert {i: c for i, c, _ in heard} == dict(enumerate(out))
        done_at = [n for _, _, n in heard]
        assert done_at == sorted(done_at) and done_at[0] < len(PROMPTS) * (3 if temperature else 1), done_at


class _Count:
    """A progress bar that only counts (what the engine has generated when ``on_done`` is called)."""

    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def close(self) -> None:
        pass


def test_same_seed_same_completions_other_seed_differs_and_global_rng_is_untouched(tiny):
    state = torch.random.get_rng_state()
    a = tiny.generate(PROMPTS, n=2, temperature=1.0, max_tokens=10, seed=5)
    b = tiny.generate(PROMPTS, n=2, temperature=1.0, max_tokens=10, seed=5)
    c = tiny.generate(PROMPTS, n=2, temperature=1.0, max_tokens=10, seed=6)
    assert a == b
    assert a != c
    assert torch.equal(torch.random.get_rng_state(), state)
    # the samples of one prompt differ from each other (they are not copies)
    assert len({x.text for x in a[3]}) == 2


def test_batching_does_not_change_greedy_results(tiny_model_dir, tiny):
    one = TransformersEngine(tiny_model_dir, batch_size=1)
    a = one.generate(PROMPTS, n=1, temperature=0, max_tokens=10)
    b = tiny.generate(PROMPTS, n=1, temperature=0, max_tokens=10)
    assert a == b


def test_greedy_gives_n_identical_samples(tiny):
    out = tiny.generate(PROMPTS[:2], n=3, temperature=0, max_tokens=8)
    assert all(len(r) == 3 and r[0] == r[1] == r[2] for r in out)


def test_chat_template_is_applied(smol):
    text = smol.tokenizer.decode(smol.encode("hi"))
    assert "<|im_start|>user\nhi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_finish_reasons_and_token_counts_match_a_plain_generate(smol):
    """Batched greedy results equal one-prompt-at-a-time ``model.generate`` (EOS counted, no padding)."""
    prompts = ["Say hello.", "What is the capital of France? Answer in one word.", "Count from 1 to 30."]
    max_tokens = 40
    out = smol.generate(prompts, n=1, temperature=0, max_tokens=max_tokens)
    eos = set(smol.eos_ids)
    for p, [c] in zip(prompts, out):
        ids = torch.tensor([smol.encode(p)])
        ref = smol.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                  max_new_tokens=max_tokens, pad_token_id=smol.pad_id)[0, ids.shape[1]:].tolist()
        if ref[-1] in eos:
            assert (c.finish, c.tokens) == ("stop", len(ref))
            assert c.text == smol.tokenizer.decode(ref[:-1], skip_special_tokens=True)
        else:
            assert (c.finish, c.tokens) == ("length", max_tokens) and len(ref) == max_tokens
    assert {c.finish for [c] in out} == {"stop", "length"}  # both paths exercised


def test_short_budget_truncates(smol):
    out = smol.generate(["Say hello.", "Write a poem."], n=2, max_tokens=3, seed=1)
    assert all(c.finish == "length" and c.tokens == 3 and c.text for r in out for c in r)


def test_loaded_model_needs_its_tokenizer(tiny):
    with pytest.raises(ValueError, match="tokenizer"):
        TransformersEngine(tiny.model)
    eng = TransformersEngine(tiny.model, tokenizer=tiny.tokenizer)
    assert eng.generate(["hi"], n=2, max_tokens=4, seed=0) == tiny.generate(["hi"], n=2, max_tokens=4, seed=0)


def test_bad_arguments(tiny):
    with pytest.raises(ValueError):
        tiny.generate(["hi"], n=0)


def test_make_engine_errors_are_clear():
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("nope", "x")
    with pytest.raises(ValueError, match="base_url"):
        make_engine("openai", "served-model")


def test_vllm_engine_without_vllm_names_the_extra():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install stagerl\[vllm\]"):
            make_engine("vllm", "smollm2-135m")
    else:
        pytest.skip("vLLM is installed here")
