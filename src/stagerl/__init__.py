"""stagerl: difficulty-aware staged RL for LLM reasoners.

The pipeline, one module per stage, data flowing one way:
data -> engines -> rewards -> scoring -> levels -> curriculum -> train -> evaluate -> report
"""

__version__ = "0.1.0"

from . import _moved

_moved.install()  # old module paths (stagerl.config_train, stagerl.rewards.math_pool, ...) for one release
