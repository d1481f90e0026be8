"""How a Problem is put to a model: chat messages built from plain templates.

Math follows the R1 / Qwen-Math convention (reason step by step, final answer in ``\\boxed{}``);
code asks for one fenced Python block that reads stdin or completes the starter function.
"""

from __future__ import annotations

from .problem import Problem

MATH_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
"""Math problems: the R1 / Qwen2.5-Math instruction, verbatim."""

CODE_STDIN_TEMPLATE = (
    "{problem}\n\nWrite a Python 3 program that reads the input from standard input and writes the "
    "answer to standard output. Put your final solution in one ```python code block."
)
"""Code problems tested on stdin/stdout (no ``fn_name``)."""

CODE_CALL_TEMPLATE = (
    "{problem}\n\nComplete the {what} below in Python 3: it must return the answer (do not print it or "
    "read input). Put your final solution in one ```python code block.\n\n```python\n{starter}\n```"
)
"""Function-call problems (``tests["fn_name"]``): ``{what}`` is "function `f`" or "method `f` of class
`Solution`", ``{starter}`` the starter code (or a bare signature when the problem has none)."""


def to_text(problem: Problem) -> str:
    """The user message for ``problem``."""
    if problem.domain == "math":
        return MATH_TEMPLATE.format(problem=problem.prompt)
    fn_name = (problem.tests or {}).get("fn_name")
    if not fn_name:
        return CODE_STDIN_TEMPLATE.format(problem=problem.prompt)
    starter = (problem.meta.get("starter_code") or "").rstrip() or f"def {fn_name}(*args):\n    ..."
    what = (f"method `{fn_name}` of class `Solution`" if "class Solution" in starter
            else f"function `{fn_name}`")
    return CODE_CALL_TEMPLATE.format(problem=problem.prompt, what=what, starter=starter)


FEWSHOT: dict[str, list[tuple[Problem, str]]] = {
    "math": [(Problem("fewshot-math", "math", "What is 3 + 4?", answer="7"), "3 + 4 = 7.\nThe answer is \\boxed{7}."),
             (Problem("fewshot-math-word", "math", "Mia has 5 pens and buys 2 more. How many pens does Mia have now?",
                      answer="7"), "Mia has 5 + 2 = 7 pens.\nThe answer is \\boxed{7}.")],
    "code": [(Problem("fewshot-code", "code", "Read one line of text and print it in upper case.",
                      tests={"inputs": ["hi\n"], "outputs": ["HI\n"]}),
              "```python\nprint(input().upper())\n```")],
}
"""Worked exchanges per domain, shown before the problem when ``fewshot=True`` (recipe key
``prompt.fewshot``). Small models rarely keep the answer format without them: in calibration
(``scripts/calibrate_demo.py``) SmolLM2-135M boxed 1 of 12 answers without the arithmetic
example, 11 of 12 with it; the word-problem example lifted one-step word problems from 0.12 to
about 0.3 pass rate (T=0.8, k=4)."""


FEWSHOT_BY_SOURCE: dict[str, list[tuple[Problem, str]]] = {
    "chain_math": [(Problem("fewshot-chain", "math", "Start with 4, add 3, then multiply by 2. Compute it step by step, "
                            "writing the result after each operation. What is the final result?", answer="14"),
                    "4 + 3 = 7.\n7 * 2 = 14.\nThe answer is \\boxed{14}.")],
}
"""Worked exchanges for one generated family (``Problem.source``), used instead of the domain's: the
one-line sums of ``FEWSHOT["math"]`` taught one-line guesses on multi-step chains (issue #24 pilot)."""


def to_messages(problem: Problem, system: str | None = None, fewshot: bool = False) -> list[dict]:
    """Chat messages for ``problem``: an optional system message, optional worked exchanges of the
    same domain (``FEWSHOT``; a generated family's own, ``FEWSHOT_BY_SOURCE``) as earlier
    user/assistant turns, then the problem."""
    messages = [{"role": "system", "content": system}] if system else []
    if fewshot:
        for example, answer in FEWSHOT_BY_SOURCE.get(problem.source) or FEWSHOT[problem.domain]:
            messages += [{"role": "user", "content": to_text(example)}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": to_text(problem)}]
