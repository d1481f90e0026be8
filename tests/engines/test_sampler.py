"""The nucleus of ``SeededSampler``: ranking only the head of the vocabulary drops exactly what
ranking all of it drops (a flat row takes the full sort)."""

import torch

from stagerl.engines.sampler import NUCLEUS_HEAD, nucleus_drop


def full_sort_drop(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The reference: sort every row in full."""
    sorted_p, order = probs.sort(dim=-1, descending=True)
    drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
    return torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)


def test_head_nucleus_equals_the_full_sort_on_peaked_and_flat_rows():
    g = torch.Generator().manual_seed(0)
    vocab = 49152
    peaked = torch.randn(6, vocab, generator=g) * 3 + torch.arange(vocab).flip(0) * 1e-3
    peaked[:, :5] += 12  # a confident model: the nucleus is a handful of tokens
    flat = torch.randn(3, vocab, generator=g) * 0.1  # the nucleus spans most of the vocabulary
    logits = torch.cat([peaked, flat])
    for temperature in (0.6, 0.8, 1.0):
        probs = torch.softmax(logits / temperature, dim=-1)
        for top_p in (0.5, 0.95, 0.999):
            got = nucleus_drop(probs, top_p)
            assert torch.equal(got, full_sort_drop(probs, top_p))
            kept = (~got).sum(-1)
            assert (kept >= 1).all()
    flat_kept = (~nucleus_drop(torch.softmax(flat, -1), 0.95)).sum(-1)
    assert (flat_kept > NUCLEUS_HEAD).all()  # these rows went through the full sort
