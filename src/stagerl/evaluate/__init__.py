"""evaluate: pass@k with intervals, paired comparisons, and benchmark runs through the same
engines and store as scoring."""

from .compare import compare_pair, compare_run
from .passk import mean_pass_at_k, pass_at_k
from .run import evaluate_checkpoint, level_ids
from .stats import paired_difference, pass1_interval, pass_at_ks

__all__ = ["pass_at_k", "mean_pass_at_k", "evaluate_checkpoint", "level_ids", "pass1_interval", "pass_at_ks",
           "paired_difference", "compare_pair", "compare_run"]
