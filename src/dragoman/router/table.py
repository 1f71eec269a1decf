"""The model table: what clients may ask for and which provider answers."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..core import NotFound
from ..providers.base import LlmProvider


@dataclass(frozen=True, slots=True)
class Deployment:
    """A client-visible model name bound to a provider instance.

    ``name`` may be a glob (``claude-*``) so one entry answers every model name a client
    family sends (Claude Code asks for several ``claude-…`` names); globs are not listed
    in ``/v1/models``.
    """

    name: str
    provider: LlmProvider
    owned_by: str = "dragoman"
    created: int = 0
    passthrough: bool = True
    """Allow the same-dialect fast path (``providers.passthrough``); False always
    translates through the neutral model."""
    hold_history: bool = False
    """dragoman holds the conversation of thread-keyed requests (``dragoman.sessions``):
    clients may send only their newest message; turns on one thread are serialized."""

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?[")


class ModelTable:
    def __init__(self, deployments: list[Deployment]) -> None:
        self._exact = {d.name: d for d in deployments if not d.is_pattern}
        self._patterns = [d for d in deployments if d.is_pattern]
        self._all = deployments

    def resolve(self, name: str) -> Deployment:
        d = self._exact.get(name)
        if d is not None:
            return d
        for p in self._patterns:
            if fnmatch.fnmatchcase(name, p.name):
                return p
        raise NotFound(f"The model '{name}' does not exist or you do not have access to it.",
                       param="model", code="model_not_found")

    def listed(self) -> list[Deployment]:
        return list(self._exact.values())

    def providers(self) -> list[LlmProvider]:
        seen: dict[int, LlmProvider] = {}
        for d in self._all:
            seen.setdefault(id(d.provider), d.provider)
        return list(seen.values())
