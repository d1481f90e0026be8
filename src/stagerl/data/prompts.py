"""How a Problem is put to a model: chat messages built from plain templates.

Math follows the R1 / Qwen-Math convention (reason step by step, final answer in ``\\boxed{}``);
code asks for one fenced Python block that reads stdin or completes the starter function.
"""

from __future__ import annotations

from .problem import Problem

MATH_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

CODE_STDIN_TEMPLATE = (
    "{problem}\n\nWrite a Python 3 program that reads the input from standard input and writes the "
    "answer to standard output. Put your final solution in one ```python code block."
)

CODE_CALL_TEMPLATE = (
    "{problem}\n\nComplete the following Python 3 code; `{fn_name}` must return the answer (do not "
    "print it or read input). Put your final solution in one ```python code block.\n\n"
    "```python\n{starter}\n```"
)


def to_text(problem: Problem) -> str:
    """The user message for ``problem``."""
    if problem.domain == "math":
        return MATH_TEMPLATE.format(problem=problem.prompt)
    fn_name = (problem.tests or {}).get("fn_name")
    if not fn_name:
        return CODE_STDIN_TEMPLATE.format(problem=problem.prompt)
    starter = (problem.meta.get("starter_code") or f"def {fn_name}(*args):\n    ").rstrip()
    return CODE_CALL_TEMPLATE.format(problem=problem.prompt, fn_name=fn_name, starter=starter)


def to_messages(problem: Problem, system: str | None = None) -> list[dict]:
    """Chat messages for ``problem`` (optionally after a system message)."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": to_text(problem)}]
