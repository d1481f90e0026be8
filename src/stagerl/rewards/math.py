"""Math reward (first version; issue "Math reward" replaces it): last \\boxed{} vs gold with Math-Verify."""

from __future__ import annotations

from math_verify import parse, verify
from math_verify.parser import LatexExtractionConfig


def _last_boxed(text: str) -> str | None:
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    depth, start = 0, i + len("\\boxed{")
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[start:j]
            depth -= 1
    return None


def math_reward(response: str, gold: str) -> float:
    box = _last_boxed(response)
    if box is None or not box.strip():
        return 0.0
    g = parse(f"${gold}$", extraction_config=[LatexExtractionConfig()])
    r = parse(f"${box}$", extraction_config=[LatexExtractionConfig()])
    return 1.0 if g and r and verify(g, r) else 0.0


def math_rewards(responses: list[str], golds: list[str], workers: int | None = None) -> list[float]:
    return [math_reward(r, g) for r, g in zip(responses, golds)]
