"""data: the Problem model, loaders (files, HF datasets), built-in and generated sets, prompts."""

from .builtin import builtin_names, load_builtin
from .generated import demo_code, demo_math
from .loaders import LoadError, Problems, load_file, load_hf, load_source
from .problem import DOMAINS, Problem, ProblemError
from .prompts import to_messages

__all__ = ["Problem", "ProblemError", "DOMAINS", "LoadError", "Problems", "load_file", "load_hf", "load_source",
           "load_builtin", "builtin_names", "demo_math", "demo_code", "to_messages"]
