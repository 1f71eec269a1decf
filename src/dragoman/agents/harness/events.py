"""Translators: one CLI's JSON event stream → neutral stream events.

A translator is fed one decoded JSON object per line and returns the events it means; it
remembers the CLI's session id (to resume the thread's session next turn), sums usage, and
notes a failure the CLI reported. Pure: no I/O, so each CLI's grammar is tested on its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from ...core import (
    AgentToolCall,
    AgentToolResult,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    Usage,
)

#: Between two assistant messages of one turn ("Let me check." and the answer).
SEPARATOR = "\n\n"


class Translator(Protocol):
    session_id: str | None
    usage: Usage
    failure: str | None

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]: ...


class _Texts:
    """Text shown so far, to separate consecutive messages."""

    def __init__(self) -> None:
        self.shown = False

    def text(self, text: str) -> list[StreamEvent]:
        if not text:
            return []
        out: list[StreamEvent] = [TextDelta(text=SEPARATOR)] if self.shown else []
        self.shown = True
        return [*out, TextDelta(text=text)]


def _int(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else 0


class CodexEvents:
    """``codex exec --json``: ``thread.started``, ``item.started/updated/completed`` with
    items ``agent_message``, ``reasoning``, ``command_execution``, ``file_change``,
    ``mcp_tool_call``, ``web_search``, ``todo_list``, ``error`` (a warning); then
    ``turn.completed`` (usage) or ``turn.failed``; ``error`` for a fatal stream error."""

    TOOLS = {"command_execution": "shell", "file_change": "apply_patch",
             "mcp_tool_call": "mcp", "web_search": "web_search"}

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.usage = Usage()
        self.failure: str | None = None
        self._texts = _Texts()
        self._started: set[str] = set()

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        kind = event.get("type")
        if kind == "thread.started":
            self.session_id = event.get("thread_id") or self.session_id
        elif kind == "turn.completed":
            u = event.get("usage") or {}
            self.usage = self.usage + Usage(
                input_tokens=_int(u, "input_tokens"), output_tokens=_int(u, "output_tokens"),
                cached_tokens=_int(u, "cached_input_tokens"),
                reasoning_tokens=_int(u, "reasoning_output_tokens"))
        elif kind == "turn.failed":
            self.failure = str((event.get("error") or {}).get("message") or "the turn failed")
        elif kind == "error":
            self.failure = str(event.get("message") or "codex reported an error")
        elif kind in ("item.started", "item.completed"):
            item = event.get("item") or {}
            return self._item(item, done=kind == "item.completed")
        return []

    def _item(self, item: dict[str, Any], *, done: bool) -> list[StreamEvent]:
        kind, iid = item.get("type"), str(item.get("id") or "")
        if kind == "agent_message" and done:
            return self._texts.text(str(item.get("text") or ""))
        if kind == "reasoning" and done:
            return [ThinkingDelta(text=str(item.get("text") or ""))]
        name = self.TOOLS.get(str(kind))
        if name is None:
            return []
        out: list[StreamEvent] = []
        if iid not in self._started:
            self._started.add(iid)
            out.append(AgentToolCall(id=iid, name=_codex_tool_name(item, name),
                                     args=_codex_args(item)))
        if done:
            status = item.get("status")
            failed = status == "failed" or (isinstance(item.get("exit_code"), int)
                                            and item["exit_code"] != 0)
            out.append(AgentToolResult(id=iid, name=_codex_tool_name(item, name),
                                       result=_codex_result(item), is_error=bool(failed)))
        return out


def _codex_tool_name(item: dict[str, Any], default: str) -> str:
    if item.get("type") == "mcp_tool_call":
        return f"{item.get('server')}__{item.get('tool')}"
    return default


def _codex_args(item: dict[str, Any]) -> Any:
    kind = item.get("type")
    if kind == "command_execution":
        return {"command": item.get("command")}
    if kind == "file_change":
        return {"changes": item.get("changes")}
    if kind == "mcp_tool_call":
        return item.get("arguments")
    if kind == "web_search":
        return {"query": item.get("query")}
    return None


def _codex_result(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind == "command_execution":
        return str(item.get("aggregated_output") or "")
    if kind == "file_change":
        changes = item.get("changes") or []
        return "\n".join(f"{c.get('kind')} {c.get('path')}" for c in changes
                         if isinstance(c, dict))
    if kind == "mcp_tool_call":
        err = item.get("error")
        if err:
            return str(err.get("message") if isinstance(err, dict) else err)
        return str(item.get("result") or "")
    return str(item.get("status") or "")


class ClaudeCodeEvents:
    """``claude -p --output-format stream-json --verbose``: ``system``/``init`` (session
    id), whole ``assistant`` messages (text, thinking, tool_use blocks), ``user`` messages
    carrying the tool results, and a final ``result`` with the summed usage."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.usage = Usage()
        self.failure: str | None = None
        self._texts = _Texts()
        self._names: dict[str, str] = {}

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        kind = event.get("type")
        if isinstance(event.get("session_id"), str):
            self.session_id = event["session_id"]
        if kind == "assistant":
            return self._assistant((event.get("message") or {}).get("content") or [])
        if kind == "user":
            return self._results((event.get("message") or {}).get("content") or [])
        if kind == "result":
            u = event.get("usage") or {}
            cached, written = _int(u, "cache_read_input_tokens"), \
                _int(u, "cache_creation_input_tokens")
            self.usage = self.usage + Usage(
                input_tokens=_int(u, "input_tokens") + cached + written,
                output_tokens=_int(u, "output_tokens"), cached_tokens=cached,
                cache_write_tokens=written)
            if event.get("is_error"):
                self.failure = str(event.get("result") or event.get("subtype")
                                   or "claude reported an error")
        return []

    def _assistant(self, blocks: list[Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for b in blocks:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text":
                out += self._texts.text(str(b.get("text") or ""))
            elif b.get("type") == "thinking":
                out.append(ThinkingDelta(text=str(b.get("thinking") or "")))
            elif b.get("type") == "tool_use":
                tid, name = str(b.get("id") or ""), str(b.get("name") or "tool")
                self._names[tid] = name
                out.append(AgentToolCall(id=tid, name=name, args=b.get("input")))
        return out

    def _results(self, blocks: list[Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for b in blocks:
            if isinstance(b, dict) and b.get("type") == "tool_result":
                tid = str(b.get("tool_use_id") or "")
                content = b.get("content")
                if isinstance(content, list):
                    content = "".join(str(p.get("text") or "") for p in content
                                      if isinstance(p, dict))
                out.append(AgentToolResult(id=tid, name=self._names.get(tid, "tool"),
                                           result=str(content or ""),
                                           is_error=bool(b.get("is_error"))))
        return out
