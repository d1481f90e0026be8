"""The shared prompt (train/shared_prompt.py) against TRL's own path, on the embedded model: the same
per-token log-probs and entropies from TRL's fused head, the same gradient, and the prompt really run
once per distinct prompt."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM
from trl.trainer.utils import add_fused_lm_head

from stagerl.models import resolve_model
from stagerl.train.shared_prompt import shared_prompt


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m"))
    add_fused_lm_head(m, temperature=0.8, outputs=("log_probs", "entropy"))
    m.train()
    return m


def _batch(groups: int, size: int, prompt: int, completion: int):
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(100, 10000, (prompt - 5 * i,), generator=g) for i in range(groups)]
    ids = torch.zeros(groups * size, prompt + completion, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r in range(groups * size):
        p = prompts[r // size]
        ids[r, prompt - len(p):prompt] = p  # left padding, as TRL pads prompts
        mask[r, prompt - len(p):prompt] = 1
        n = completion - 2 * r  # right padding of shorter completions
        ids[r, prompt:prompt + n] = torch.randint(100, 10000, (n,), generator=g)
        mask[r, prompt:prompt + n] = 1
    return ids, mask


def _run(model, ids, mask, keep: int):
    """TRL's call in ``_get_per_token_logps_and_entropies``: labels on the completion only, fused head."""
    model.zero_grad()
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    logps, ent = out.log_probs[:, -keep:], out.entropy[:, -keep:]
    ((logps * mask[:, -keep:]).sum() + 0.1 * (ent * mask[:, -keep:]).sum()).backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return logps.detach(), ent.detach(), grad


def _rows_and_tokens(model, run, prompt: int):
    """``run()`` inside ``shared_prompt(model, prompt)``: the (rows, tokens) of each pass through the
    first decoder layer, and what ``run`` returned."""
    seen = []
    hook = model.base_model.layers[0].register_forward_pre_hook(
        lambda m, a, k: seen.append(tuple((a[0] if a else k["hidden_states"]).shape[:2])), with_kwargs=True)
    try:
        with shared_prompt(model, prompt):
            out = run()
    finally:
        hook.remove()
    return seen, out


def test_shared_prompt_gives_trls_log_probs_entropies_and_gradient(model):
    prompt, completion = 40, 12
    ids, mask = _batch(groups=2, size=3, prompt=prompt, completion=completion)
    full = _run(model, ids, mask, completion)
    seen, shared = _rows_and_tokens(model, lambda: _run(model, ids, mask, completion), prompt)
    assert seen == [(2, prompt), (6, completion)]  # each distinct prompt once, then the 6 completions on top
    real = mask[:, -completion:].bool()
    assert (full[0] - shared[0])[real].abs().max() < 1e-4
    assert (full[1] - shared[1])[real].abs().max() < 1e-4
    assert ((full[2] - shared[2]).norm() / full[2].norm()) < 1e-4
    assert "forward" not in model.base_model.__dict__  # the backbone's own forward is back


def test_shared_prompt_steps_aside_when_no_prompt_is_shared(model):
    ids, mask = _batch(groups=3, size=1, prompt=20, completion=6)
    seen, _ = _rows_and_tokens(model, lambda: _run(model, ids, mask, 6), 20)
    assert seen == [(3, 26)]  # one plain forward of the whole batch
