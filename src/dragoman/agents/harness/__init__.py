"""Harness agents: Codex CLI or Claude Code run as an orchestrator in the thread's sandbox
(``agent.HarnessAgent``), their event streams translated by ``events``, their command lines
in ``clis``."""

from .agent import HarnessAgent
from .clis import CLIS, ClaudeCode, Codex, HarnessKind

__all__ = ["CLIS", "ClaudeCode", "Codex", "HarnessAgent", "HarnessKind"]
