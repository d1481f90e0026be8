"""Probe (not a feature yet): a GRPO group's shared prompt computed once, forward and backward.

TRL's GRPO loss runs every completion with its own copy of the prompt through the forward and
backward passes. Here the 2 distinct prompts (195 and 188 tokens, left-padded) of a batch of 2 x 4
completions (60 tokens, some right-padded) run once with the key-value cache, the cache is repeated
for the 4 completions of each, and the completions run on top of it. Printed: seconds of forward +
backward for both ways (twice each, alternating), the largest difference of the completion tokens'
log-probs and the relative difference of the full gradient. Random token ids, the embedded
SmolLM2-135M-Instruct in training mode, one thread.

    .venv/bin/python scripts/probe_shared_prompt.py
"""
import time, torch
from transformers import AutoModelForCausalLM
from stagerl.models import resolve_model
torch.manual_seed(0)
torch.set_num_threads(1)
path = resolve_model("smollm2-135m")
model = AutoModelForCausalLM.from_pretrained(path); model.train()
P, G, Lp, Lc = 2, 4, 195, 60
pad = 0
prompts = [torch.randint(100, 10000, (Lp - 7 * i,)) for i in range(P)]  # unequal lengths: left padding
plen = max(len(p) for p in prompts)
prompt_ids = torch.stack([torch.cat([torch.full((plen - len(p),), pad), p]) for p in prompts])
prompt_mask = torch.stack([torch.cat([torch.zeros(plen - len(p)), torch.ones(len(p))]) for p in prompts]).long()
comp = torch.randint(100, 10000, (P * G, Lc)); comp_mask = torch.ones_like(comp)
for r in range(P * G): comp_mask[r, Lc - 3 * r:] = 0  # right padding of shorter completions

def logps_of(logits, ids):
    return torch.gather(logits.float().log_softmax(-1), 2, ids[..., None])[..., 0]

def full():
    ids = torch.cat([prompt_ids.repeat_interleave(G, 0), comp], 1)
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), comp_mask], 1)
    out = model(input_ids=ids, attention_mask=mask, logits_to_keep=Lc + 1)
    return logps_of(out.logits[:, :-1], comp)

def shared():
    pos = (prompt_mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    cache.batch_repeat_interleave(G)
    first = out.logits[:, -1:].repeat_interleave(G, 0)
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), comp_mask], 1)
    cpos = pos[:, -1:].repeat_interleave(G, 0) + 1 + torch.arange(Lc)[None]
    out2 = model(input_ids=comp, attention_mask=mask, position_ids=cpos, past_key_values=cache, use_cache=True)
    logits = torch.cat([first, out2.logits[:, :-1]], 1)
    return logps_of(logits, comp)

res = {}
for name, fn in (("full", full), ("shared", shared), ("full2", full), ("shared2", shared)):
    model.zero_grad()
    t = time.time(); lp = fn(); loss = (lp * comp_mask).sum() / comp_mask.sum(); loss.backward(); dt = time.time() - t
    g = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    res[name] = (lp.detach(), g.clone(), dt)
    print(f"{name}: {dt:.1f} s")
a, b = res["full"], res["shared"]
m = comp_mask.bool()
print("max |logp diff| on real tokens:", (a[0] - b[0])[m].abs().max().item())
print("grad rel diff:", ((a[1] - b[1]).norm() / a[1].norm()).item())
