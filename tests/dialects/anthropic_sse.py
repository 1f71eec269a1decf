"""Test helpers for the Anthropic Messages dialect: SSE splitting and SDK validation."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as at
import pydantic
from anthropic.lib.streaming._messages import accumulate_event

EVENT_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(at.RawMessageStreamEvent)


def split_frames(raw: bytes) -> list[tuple[str | None, str]]:
    """SSE bytes → [(event name, data text)], checking the framing on the way."""
    assert raw.endswith(b"\n\n") or raw == b""
    out: list[tuple[str | None, str]] = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        event: str | None = None
        data: list[str] = []
        for line in frame.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        out.append((event, "\n".join(data)))
    return out


def validate_stream(raw: bytes) -> tuple[list[dict[str, Any]], at.Message | None]:
    """Check every frame against the SDK's types and drive the SDK's accumulator.

    Returns the decoded payloads and the accumulated message (None if the stream ended
    with an error event)."""
    payloads: list[dict[str, Any]] = []
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for event, data in split_frames(raw):
        payload = json.loads(data)
        assert event == payload["type"], (event, payload)
        payloads.append(payload)
        if event == "ping":
            continue
        if event == "error":
            at.ErrorResponse.model_validate(payload)
            return payloads, None
        ev = EVENT_ADAPTER.validate_python(payload)
        snapshot = accumulate_event(event=ev, current_snapshot=snapshot, json_bufs=json_bufs)
    message = at.Message.model_validate(snapshot.to_dict()) if snapshot is not None else None
    return payloads, message
