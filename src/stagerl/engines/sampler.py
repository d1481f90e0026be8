"""Per-sequence seeded sampling for ``transformers`` ``generate``.

``model.generate`` draws every row of a batch from one global random stream, so what a sequence
gets depends on which other sequences share its batch. :class:`SeededSampler` is a
``LogitsProcessor`` that does the sampling itself, each row with its own ``torch.Generator``
seeded by that sequence's seed: temperature, then nucleus (top-p) filtering, then the Gumbel-max
draw (``argmax(logits / T + G)`` with one Gumbel variate per vocabulary entry, which samples the
softmax exactly). It returns scores that are ``-inf`` everywhere but the chosen token, so
``generate`` run with greedy selection (``do_sample=False``) takes exactly that token. A
sequence's draws therefore depend only on its seed and its own logits, not on the batch it runs
in, its position in it or the batch size.

What this does not remove: a batched forward pass can differ from another batch shape in the last
bits of the logits (another padding width, other matrix kernels; about 1e-7 on CPU). Gumbel-max
keeps the effect small: each token has its own noise, so a tiny change of the logits changes the
choice only when the two best perturbed scores are that close, or when the token at the nucleus
edge that moved in or out would have been chosen. After such a step the sequence continues
differently.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any JSON-like parts (stable across processes and Python versions)."""
    key = "\x1f".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


NUCLEUS_HEAD = 256
"""Tokens ``nucleus_drop`` ranks first (``topk``) before falling back to sorting the whole vocabulary."""


def nucleus_drop(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask of the tokens outside each row's nucleus: ranked by probability, a token is dropped when
    the mass before it already reaches ``top_p``.

    Sorting a 49k vocabulary per row per step cost ~10% of a CPU generation (profiled on the demo);
    the nucleus almost always lies within the first ``NUCLEUS_HEAD`` tokens, so those are ranked with
    ``topk`` and the full sort is kept for the rows whose head holds less than ``top_p`` of the mass
    (everything past a head that reaches ``top_p`` is dropped, as the full sort would drop it)."""
    rows, vocab = probs.shape
    head = min(NUCLEUS_HEAD, vocab)
    top_p_sorted, order = probs.topk(head, dim=-1)
    drop = torch.ones_like(probs, dtype=torch.bool)
    mass = top_p_sorted.cumsum(-1)
    drop.scatter_(1, order, (mass - top_p_sorted) >= top_p)
    short = (mass[:, -1] < top_p).nonzero().flatten()
    if head < vocab and len(short):  # the nucleus reaches past the head: rank those rows in full
        sorted_p, full = probs[short].sort(dim=-1, descending=True)
        drop[short] = torch.zeros_like(sorted_p, dtype=torch.bool).scatter_(
            1, full, (sorted_p.cumsum(-1) - sorted_p) >= top_p)
    return drop


class SeededSampler(LogitsProcessor):
    """Sample row ``r`` of every step with its own generator seeded ``seeds[r]``."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        if temperature <= 0:
            raise ValueError(f"SeededSampler samples; temperature must be > 0, got {temperature}")
        self.seeds = [int(s) for s in seeds]
        self.generators: list[torch.Generator] = []
        self.temperature, self.top_p = float(temperature), float(top_p)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return self.sample(scores)

    def sample(self, scores: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``-inf`` everywhere but each row's drawn token; ``rows``: which of the seeded sequences the
        rows of ``scores`` are (default: all, in order), for a caller that drops finished ones."""
        n, vocab = scores.shape
        if rows is None and n != len(self.seeds):
            raise RuntimeError(f"SeededSampler: {len(self.seeds)} seeds for a batch of {n} rows")
        if not self.generators:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        generators = self.generators if rows is None else [self.generators[r] for r in rows.tolist()]
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:  # the nucleus: smallest most-probable set whose mass reaches top_p
            logits = logits.masked_fill(nucleus_drop(torch.softmax(logits, dim=-1), self.top_p), float("-inf"))
        u = torch.stack([torch.rand(vocab, generator=g, device=scores.device) for g in generators])
        gumbel = -torch.log(-torch.log(u.clamp_(min=1e-20, max=1.0 - 1e-7)))
        tokens = (logits + gumbel).argmax(dim=-1, keepdim=True)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, tokens, 0.0)
