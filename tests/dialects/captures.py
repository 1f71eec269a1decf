"""Requests captured from real clients (official SDKs, LangChain, LiteLLM, Codex CLI,
Claude Code), kept in ``tests/fixtures/clients/`` (see its README for how they were
sanitized)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"


def captured_posts(path_matches: Callable[[str], bool]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(id, path, body)`` of every captured POST whose path matches, the id naming the
    client file, the line and the scenario. The fixtures are part of the repository, so an
    empty result is a broken checkout, not a reason to skip."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for f in sorted(CAPTURES.glob("*.jsonl")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            rec = json.loads(line)
            if rec["method"] == "POST" and path_matches(rec["path"]) \
                    and isinstance(rec["body"], dict):
                out.append((f"{f.stem}:{n}:{rec['scenario'][:50]}", rec["path"], rec["body"]))
    assert out, f"no captured client requests in {CAPTURES}"
    return out
