"""levels: rules over pass rates (rules.py), leveled datasets (build.py), stats and export."""

from .build import build_levels, label_table, read_level, read_table, to_long, write_levels
from .export import export_dataset
from .rules import Rules, RulesError, bind, decide, label, load_rules, presets, relevant_models, retained
from .stats import level_stats, write_stats

__all__ = ["Rules", "RulesError", "load_rules", "bind", "decide", "label", "relevant_models", "retained", "presets",
           "build_levels", "label_table", "read_level", "read_table", "to_long", "write_levels", "export_dataset",
           "level_stats", "write_stats"]
