"""Curriculum: which problems a stage trains on, in which order, and when it ends (pure logic)."""

from .mixing import math_per_batch, mixed_order
from .plateau import PlateauTracker, plateau_reached, smooth
from .stages import StageDataError, stage_dir, stage_folders, stage_problems

__all__ = ["mixed_order", "math_per_batch", "plateau_reached", "PlateauTracker", "smooth",
           "stage_problems", "StageDataError", "stage_dir", "stage_folders"]
