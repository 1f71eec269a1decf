"""Recognising a resent history: message fingerprints, prefix chains and de-duplication.

A client that holds the conversation resends it every turn, re-encoded by its own SDK:
thinking blocks dropped or kept, cache markers moved, text split differently, JSON
arguments re-serialised. So two messages are "the same" when their *fingerprint* matches:
the role (``developer`` counts as ``system``), the concatenated text (trimmed), the ids and
names of tool calls, the call ids and text of tool results, and the identity of images and
files. Thinking, signatures, opaque items and cache markers do not count.

``chain`` folds fingerprints into a running 16-byte hash, so the chain value after k
messages names the whole prefix: comparing one stored value with one computed value
answers "is the stored history a prefix of what the client sent?".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import msgspec

from ..core import File, Image, Message, Text, ToolCall, ToolResult

EMPTY_CHAIN = bytes(16)

_encode = msgspec.msgpack.Encoder().encode


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def fingerprint(m: Message) -> bytes:
    """What identifies a message across a client's re-encodings (see module docstring)."""
    texts: list[str] = []
    calls: list[tuple[str, str]] = []
    results: list[tuple[str, str]] = []
    media: list[str] = []
    for p in m.content:
        if isinstance(p, Text):
            texts.append(p.text)
        elif isinstance(p, ToolCall):
            calls.append((p.id, p.name))
        elif isinstance(p, ToolResult):
            results.append((p.call_id, p.text().strip()))
        elif isinstance(p, (Image, File)):
            ref = p.url or (p.file_id if isinstance(p, File) else None)
            media.append(ref or _digest((p.data or "").encode()).hex())
    role = "system" if m.role == "developer" else m.role
    return _digest(_encode((role, "".join(texts).strip(), calls, results, media)))


def chain(prev: bytes, m: Message) -> bytes:
    """The chain value after ``m``, given the value before it."""
    return _digest(prev + fingerprint(m))


def prefix_chains(messages: list[Message], start: bytes = EMPTY_CHAIN) -> list[bytes]:
    """``out[k]`` is the chain value of ``messages[:k]`` (``out[0] == start``)."""
    out = [start]
    c = start
    for m in messages:
        c = chain(c, m)
        out.append(c)
    return out


def common_prefix(a: list[bytes], b: list[bytes]) -> int:
    """How many messages two histories share, given their prefix chains."""
    n = min(len(a), len(b)) - 1
    k = 0
    while k < n and a[k + 1] == b[k + 1]:
        k += 1
    return k


Mode = Literal["new", "resent", "diverged", "delta"]


@dataclass(frozen=True, slots=True)
class Continuation:
    """The conversation to run for a turn on a history-holding thread.

    ``mode``: ``new`` (the thread was empty), ``resent`` (the client resent the stored
    history and added ``new``), ``diverged`` (the client's history parts from the stored
    one: the client's version is used), ``delta`` (the client sent only new messages)."""

    messages: list[Message]
    new: list[Message]
    mode: Mode


@dataclass(frozen=True, slots=True)
class ThreadView:
    """The main branch of a thread: its messages and chain value (empty if no thread)."""

    messages: list[Message]
    head_chain: bytes = EMPTY_CHAIN
    thread_id: str | None = None
    branch_id: str | None = None

    def continue_with(self, incoming: list[Message], *, deltas: bool = True) -> Continuation:
        """De-duplicate what a client sent against the stored history (module docstring
        of ``dragoman.sessions``). The stored messages are kept when the client resends
        them, because they may carry what the client dropped (thinking signatures).
        ``deltas=False``: the client always sends whole conversations, so one that does
        not extend the stored history is a conversation of its own, never a newest
        message to append."""
        h = len(self.messages)
        if h == 0:
            return Continuation(incoming, incoming, "new")
        chains = prefix_chains(incoming)
        if len(incoming) >= h and chains[h] == self.head_chain:
            new = incoming[h:]
            return Continuation(self.messages + new, new, "resent")
        if not deltas or common_prefix(prefix_chains(self.messages), chains) > 0 or any(
                m.role == "assistant" for m in incoming):
            # A resend that parts from the stored history, or another whole conversation.
            return Continuation(incoming, incoming, "diverged")
        return Continuation(self.messages + incoming, incoming, "delta")
