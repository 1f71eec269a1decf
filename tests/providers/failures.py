"""The failure scenarios every vendor fake serves (``tests/fakes``), and what a provider
must turn each into: the same core error kinds whatever the vendor's envelope.

``outcome(provider, scenario, stream)`` runs one request and returns what came out: the
error raised before any event, or the ``StreamError`` after some, with the text streamed
before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dragoman.core import (
    ChatRequest,
    DragomanError,
    ErrorKind,
    Message,
    StreamError,
    Text,
    TextDelta,
)
from dragoman.providers.base import LlmProvider

#: scenario → the error kind a provider must report (HTTP failures before any byte)
HTTP_FAILURES: dict[str, ErrorKind] = {
    "error403": ErrorKind.UPSTREAM,  # the gateway's own credentials: never the client's fault
    "error404": ErrorKind.NOT_FOUND,
    "error413": ErrorKind.REQUEST_TOO_LARGE,
    "error429": ErrorKind.RATE_LIMITED,
    "error500": ErrorKind.UPSTREAM,
    "overloaded": ErrorKind.OVERLOADED,
}
#: the shared retry-after the fakes send with a 429
RETRY_AFTER_SECONDS = 7.0


def request(scenario: str, stream: bool, **kw: object) -> ChatRequest:
    return ChatRequest(model="client-model", stream=stream, messages=[
        Message(role="user", content=[Text(text=f"scenario:{scenario} please")])], **kw)  # type: ignore[arg-type]


@dataclass
class Outcome:
    error: DragomanError | None = None
    in_band: bool = False
    """The error came as a ``StreamError`` event (after the stream had started)."""
    text: str = ""


async def outcome(provider: LlmProvider, scenario: str, stream: bool) -> Outcome:
    out = Outcome()
    req = request(scenario, stream)
    try:
        if not stream:
            out.text = (await provider.complete(req)).text()
            return out
        async for ev in provider.stream(req):
            if isinstance(ev, TextDelta):
                out.text += ev.text
            elif isinstance(ev, StreamError):
                out.error, out.in_band = ev.error, True
    except DragomanError as e:
        out.error = e
    return out


async def assert_broken_streams(provider: LlmProvider, stream: bool, partial: str) -> None:
    """A stream cut midway, a malformed frame and an in-band error each end as a transport
    or upstream error; streamed, they come in-band after the ``partial`` text."""
    for scenario in ("cut", "malformed", "midstream_error"):
        got = await outcome(provider, scenario, stream)
        assert got.error is not None, scenario
        assert got.error.kind in (ErrorKind.TRANSPORT, ErrorKind.UPSTREAM), scenario
        if stream:
            assert got.in_band and got.text == partial, scenario
