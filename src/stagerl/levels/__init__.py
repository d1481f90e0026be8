"""levels: rules over pass rates (rules.py), leveled datasets (build.py), stats and plots
(stats.py), Hugging Face dataset export (export.py)."""

from .build import (Levels, build_levels, label_table, read_frame, read_level, read_table, to_long, write_levels,
                    write_parquet)
from .export import export_dataset
from .rules import (Interval, Rules, RulesError, bind, decide, label, load_rules, parse_interval, presets,
                    relevant_models, retained)
from .stats import level_stats, write_stats

__all__ = ["Rules", "RulesError", "Interval", "load_rules", "parse_interval", "bind", "decide", "label",
           "relevant_models", "retained", "presets", "build_levels", "Levels", "label_table", "read_level",
           "read_frame", "read_table",
           "to_long", "write_levels", "write_parquet", "export_dataset", "level_stats", "write_stats"]
