"""Reasoning effort levels and thinking budgets: one table for every dialect."""

from __future__ import annotations

#: OpenAI-style effort level → Anthropic-style thinking budget. ``none`` means thinking off.
EFFORT_BUDGET: dict[str, int] = {
    "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768,
}


def budget_for_effort(effort: str, max_tokens: int | None) -> int | None:
    """Thinking budget for an effort level, kept >= 1024 and < ``max_tokens``; None when
    the effort means no thinking or no budget fits."""
    budget = EFFORT_BUDGET.get(effort)
    if budget is None:
        return None
    if max_tokens is not None:
        budget = min(budget, max_tokens - 1)
    return budget if budget >= 1024 else None


def effort_for_budget(budget: int) -> str:
    """The smallest effort level whose budget covers ``budget``."""
    for effort, b in EFFORT_BUDGET.items():
        if budget <= b:
            return effort
    return "xhigh"
