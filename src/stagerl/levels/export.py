"""Export leveled data as a Hugging Face dataset folder with a dataset card.

The folder loads with ``datasets.load_dataset(folder, "<level>")`` and publishes as it stands with
``push_to_hub`` (or ``huggingface-cli upload``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from .rules import Rules


def export_dataset(levels: dict[str, pd.DataFrame], rules: Rules, out_dir: str | Path, info: dict) -> Path:
    """Write ``data/<level>.parquet`` (one config per level, split ``train``) and ``README.md``.

    ``info`` describes how the rates were made: sources, reference models, k, sampling settings."""
    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, df in levels.items():
        df.to_parquet(out / "data" / f"{name}.parquet", index=False)
    front = {"configs": [{"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}.parquet"}]}
                         for name in levels],
             "tags": ["reasoning", "math", "code", "difficulty", "stagerl"]}
    counts = "\n".join(f"| {name} | {len(df)} | " + ", ".join(f"{d}: {c}" for d, c in df["domain"].value_counts().items())
                       + " |" for name, df in levels.items())
    card = f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# Difficulty-graded problems (stagerl)

Problems graded by the pass rates of reference models sampled k times each, then cut into
levels by rules over those rates (a-m-team 2025 recipe, built with stagerl). Levels may overlap.

## How the rates were made
- Sources: {", ".join(map(str, info.get("sources", []))) or "n/a"}
- Reference models (weakest to strongest): {", ".join(info.get("reference_models", [])) or "n/a"}
- Samples per problem and model (k): {info.get("k", "n/a")}
- Sampling: `{json.dumps(info.get("sampling", {}))}`

## Counts per level
| level | problems | by domain |
|---|---|---|
{counts}

## Rules
```yaml
{rules.to_yaml().strip()}
```

## Fields
`id`, `domain` (math | code), `prompt`, `answer` (math), `tests` (code; JSON string in the APPS/TACO
`input_output` form), `source`, `meta` (JSON string), and `rate_<model>`: the pass rate of each
reference model.

Load a level: `datasets.load_dataset("<this folder or repo>", "<level>", split="train")`.
"""
    (out / "README.md").write_text(card)
    return out
