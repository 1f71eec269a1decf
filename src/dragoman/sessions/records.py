"""What callers hand the session store and get back from it."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import ChatRequest, ChatResponse, Message


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored Responses object, as ``GET /v1/responses/{id}`` renders it."""

    id: str
    tenant: str
    created: int
    model: str
    request: ChatRequest  # as the client sent it, without its messages
    response: ChatResponse
    status: str = "completed"


@dataclass(frozen=True, slots=True)
class PreviousResponse:
    """What ``previous_response_id`` resolves to: the whole history up to and including
    that response's output, and where it ends (so the next turn can extend it in place)."""

    id: str
    messages: list[Message]
    branch_id: str
    end_seq: int
    end_chain: bytes


@dataclass(frozen=True, slots=True)
class NewResponse:
    """A Responses object to store with its turn (``store`` not false)."""

    id: str
    model: str
    created: int
    request: ChatRequest
    response: ChatResponse
    status: str = "completed"


@dataclass(slots=True)
class Turn:
    """One completed exchange, committed before the client is told it is complete.

    ``messages`` is the whole conversation the model answered (stored history plus this
    request's input; request-level instructions are not part of it) and ``output`` what
    the model produced. ``input_count`` says how many trailing ``messages`` this request's
    client sent (the Responses ``input_items``)."""

    tenant: str
    messages: list[Message]
    output: list[Message]
    input_count: int
    thread_key: str | None = None
    previous: PreviousResponse | None = None
    response: NewResponse | None = None


@dataclass(frozen=True, slots=True)
class TurnResult:
    """Where the turn landed: ``branch_id`` and the history length after it;
    ``appended`` is false when it started a new branch or fork."""

    branch_id: str
    length: int
    appended: bool
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class PurgeStats:
    responses: int = 0
    branches: int = 0
    threads: int = 0
    agent_turns: int = 0

    @property
    def total(self) -> int:
        return self.responses + self.branches + self.threads + self.agent_turns
