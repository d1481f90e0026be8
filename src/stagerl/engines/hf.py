"""In-process generation with Hugging Face transformers (CPU or GPU).

All samples of all prompts are flattened into one list of sequences, sorted by prompt length and
generated in chunks of ``batch_size`` sequences (left padding, KV cache on), so the ``n`` samples
of a prompt and several prompts share one batch: greedy chunks through ``model.generate``, sampled
ones through ``_sample`` (the same steps, with the chunk's common prompt prefix computed once and
finished rows leaving the batch).

Seeds: every sequence is sampled with its own random generator (``sampler.SeededSampler``), seeded
by ``seeds[i][j]`` when given (scoring passes one seed per (problem, model, sample index)), else
derived from ``seed`` and ``(i, j)``. A sequence's random draws therefore do not depend on the
batch it runs in; see ``sampler.py`` for the one thing that can still differ between batch shapes
(the last bits of the logits).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ..models import resolve_model
from .base import ClosingEngine, Completion, OnDone, Prompt, as_messages, bar_of, check_seeds, report_if_done
from .sampler import SeededSampler, derive_seed

CPU_BATCH_SIZE = 32
"""Default sequences per ``generate`` call on CPU."""
GPU_BATCH_SIZE = 128
"""Default sequences per ``generate`` call on GPU."""


def pick_device(device: str | None = "auto") -> str:
    """``"auto"``/``None`` → ``"cuda"`` when available, else ``"cpu"``; anything else unchanged."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _dtype_for(device: str, dtype: str | torch.dtype | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a completion: the generation config's EOS ids plus the tokenizer's."""
    ids: list[int] = []
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        val = getattr(src, "eos_token_id", None) if src is not None else None
        if val is not None:
            ids.extend(val if isinstance(val, (list, tuple)) else [val])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(int(i) for i in ids))


class TransformersEngine(ClosingEngine):
    """The ``transformers`` engine: batched ``model.generate`` in this process.

    ``model`` is a spec for ``resolve_model`` (alias, folder, hub id) or an already loaded
    ``PreTrainedModel`` (then ``tokenizer`` is required; handy for generating with a policy in
    training). ``batch_size`` is the maximum number of sequences per ``generate`` call.
    """

    name = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        device: str | None = "auto",
        dtype: str | torch.dtype | None = None,
        batch_size: int | None = None,
        progress: Any = False,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if isinstance(model, str):
            self.model_path = resolve_model(model)
            self.device = pick_device(device)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.model_path, dtype=_dtype_for(self.device, dtype), trust_remote_code=trust_remote_code
            ).to(self.device)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(
                self.model_path, trust_remote_code=trust_remote_code
            )
        else:
            if tokenizer is None:
                raise ValueError("TransformersEngine: pass the tokenizer along with a loaded model")
            self.model, self.tokenizer = model, tokenizer
            self.model_path = getattr(model, "name_or_path", "") or ""
            self.device = str(next(model.parameters()).device)
        self.model.eval()
        default = GPU_BATCH_SIZE if self.device.startswith("cuda") else CPU_BATCH_SIZE
        self.batch_size = int(batch_size or default)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.progress = progress
        self.eos_ids = eos_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of ``prompt`` with the model's chat template (plain text if it has none)."""
        messages = as_messages(prompt)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        text = "\n\n".join(str(m["content"]) for m in messages)
        return list(self.tokenizer(text)["input_ids"])

    def _sampling(self, temperature: float, top_p: float, max_tokens: int) -> Any:
        cfg = copy.deepcopy(self.model.generation_config)
        cfg.max_new_tokens, cfg.max_length, cfg.min_new_tokens = max_tokens, None, None
        cfg.eos_token_id, cfg.pad_token_id = self.eos_ids or None, self.pad_id
        cfg.num_return_sequences, cfg.use_cache = 1, True
        cfg.repetition_penalty, cfg.no_repeat_ngram_size = 1.0, 0  # plain sampling, like vLLM/OpenAI
        if temperature <= 0:
            cfg.do_sample, cfg.temperature, cfg.top_p, cfg.top_k = False, None, None, None
        else:
            cfg.do_sample, cfg.temperature, cfg.top_p, cfg.top_k = True, float(temperature), float(top_p), 0
        return cfg

    def _seeded(self, max_tokens: int) -> Any:
        """Greedy selection over the scores of ``SeededSampler``, which does the sampling."""
        cfg = self._sampling(0.0, 1.0, max_tokens)
        cfg.top_k = None
        return cfg

    def _finish(self, row: list[int]) -> Completion:
        """Cut a generated row at its first EOS; count real tokens (EOS included, padding not)."""
        stops = set(self.eos_ids)
        for i, tok in enumerate(row):
            if tok in stops:
                return Completion(text=self._decode(row[:i]), tokens=i + 1, finish="stop")
        return Completion(text=self._decode(row), tokens=len(row), finish="length")

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @torch.inference_mode()
    def generate(
        self,
        prompts: list[Prompt],
        n: int = 1,
        temperature: float = 0.6,
        top_p: float = 0.95,
        max_tokens: int = 1024,
        seed: int | None = None,
        seeds: list[list[int]] | None = None,
        on_done: OnDone | None = None,
    ) -> list[list[Completion]]:
        """For each prompt, ``n`` completions in sample order (see ``Engine``); ``on_done`` hears of a
        prompt after the batch that completes it.

        Sample ``j`` of prompt ``i`` is drawn with seed ``seeds[i][j]`` (or one derived from ``seed``,
        ``i`` and ``j``; random when both are ``None``), whatever else is in the call and whatever
        ``batch_size``; ``temperature`` 0 is greedy decoding.
        """
        if n < 1 or max_tokens < 1:
            raise ValueError(f"n and max_tokens must be >= 1, got n={n}, max_tokens={max_tokens}")
        check_seeds(seeds, len(prompts), n)
        encoded = [self.encode(p) for p in prompts]
        greedy = temperature <= 0  # greedy samples are identical: generate one, copy it n times
        per_prompt = 1 if greedy else n
        # One entry per sequence: (prompt index, sample index); longest prompts first so a chunk
        # holds similar lengths (little padding) and an out-of-memory shows up at once.
        seqs = sorted(
            ((i, j) for i in range(len(prompts)) for j in range(per_prompt)), key=lambda s: (-len(encoded[s[0]]), s)
        )
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        if seeds is None:
            base = seed if seed is not None else int(torch.randint(0, 2**62, ()).item())
            seeds = [[derive_seed(base, i, j) for j in range(n)] for i in range(len(prompts))]
        cfg = self._sampling(temperature, top_p, max_tokens) if greedy else self._seeded(max_tokens)
        bar = bar_of(self.progress, len(seqs), "generate")
        try:
            for start in range(0, len(seqs), self.batch_size):
                chunk = seqs[start : start + self.batch_size]
                sampler = None if greedy else SeededSampler([seeds[i][j] for i, j in chunk], temperature, top_p)
                if sampler is None:
                    ids, mask = self._left_pad([encoded[i] for i, _ in chunk])
                    gen = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
                    rows = gen[:, ids.shape[1] :].tolist()
                else:
                    rows = self._sample([encoded[i] for i, _ in chunk], sampler, max_tokens)
                for (i, j), row in zip(chunk, rows):
                    out[i][j] = self._finish(row)
                bar.update(len(chunk))
                for i in dict.fromkeys(i for i, _ in chunk):  # the prompts this batch touched, once each
                    if not greedy:
                        report_if_done(on_done, out, i)
                    elif on_done is not None:  # greedy: one sequence stands for all n
                        on_done(i, [copy.copy(out[i][0]) for _ in range(n)])
        finally:
            bar.close()
        if greedy:
            out = [[copy.copy(r[0]) for _ in range(n)] for r in out]
        return [list(r) for r in out]  # type: ignore[arg-type]

    def _sample(self, prompts: list[list[int]], sampler: SeededSampler, max_tokens: int) -> list[list[int]]:
        """Sampled continuations of a batch of prompts (token ids), each row's own tokens up to its EOS.

        What ``model.generate`` does for these models (KV cache, position ids from the attention
        mask, the sampler's token each step), minus two wastes measured on the demo (CPU, 32 rows):
        the prompts' common prefix (system message and worked examples: ~150 of ~180 tokens) is
        computed once and its cache shared by every row, and a row leaves the batch, cache included,
        once it has its EOS (``generate`` keeps finished rows until the longest one ends: 58% of the
        row-steps of that batch)."""
        import inspect

        from transformers import DynamicCache

        model, dev = self.model, self.device
        key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        stops = torch.tensor(self.eos_ids or [-1], device=dev)
        shared = _common_prefix(prompts)
        cache = DynamicCache(config=model.config)
        if shared:
            head = torch.tensor([prompts[0][:shared]], dtype=torch.long, device=dev)
            model(input_ids=head, attention_mask=torch.ones_like(head), use_cache=True, **{key: cache})
            cache.batch_repeat_interleave(len(prompts))
        ids, tail_mask = self._left_pad([p[shared:] for p in prompts])
        pos = (tail_mask.cumsum(-1) - 1).masked_fill(tail_mask == 0, 0) + shared
        mask = torch.cat([tail_mask.new_ones((len(prompts), shared)), tail_mask], dim=-1)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                       **{key: cache}).logits[:, -1, :]
        live = torch.arange(len(prompts), device=dev)  # batch rows still generating
        pos = pos[:, -1:]
        rows: list[list[int]] = [[] for _ in prompts]
        for step in range(max_tokens):
            token = sampler.sample(logits.float(), live).argmax(dim=-1)
            for r, t in zip(live.tolist(), token.tolist()):
                rows[r].append(t)
            going = ~torch.isin(token, stops)
            if step + 1 == max_tokens or not bool(going.any()):
                break
            if not bool(going.all()):
                keep = going.nonzero().flatten()
                cache.batch_select_indices(keep)
                live, token, mask, pos = live[keep], token[keep], mask[keep], pos[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            pos = pos + 1
            logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=pos, use_cache=True,
                           **{key: cache}).logits[:, -1, :]
        return rows

    def _left_pad(self, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, x in enumerate(batch):
            ids[r, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[r, width - len(x) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def close(self) -> None:
        """Free the model (and GPU memory)."""
        self.model = None  # type: ignore[assignment]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _common_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix all ``prompts`` share, leaving each at least one token of its own."""
    n = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for p in prompts[1:]:
        i = 0
        while i < n and p[i] == first[i]:
            i += 1
        n = i
    return max(0, n)
