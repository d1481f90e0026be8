"""evaluate: pass@k and benchmark runs through the same engines and store as scoring."""

from .passk import mean_pass_at_k, pass_at_k
from .run import evaluate_checkpoint

__all__ = ["pass_at_k", "mean_pass_at_k", "evaluate_checkpoint"]
