"""The neutral model's new parts fold and unfold: ``collect(events_of(r))`` is ``r`` for
refusals, phased messages and cited text, and the sessions store's msgspec encoding keeps
every part."""

from __future__ import annotations

import msgspec

from dragoman.core import (
    ChatResponse,
    Citation,
    CitationAdded,
    Message,
    Refusal,
    RefusalDelta,
    SearchResult,
    StopReason,
    Text,
    TextDelta,
    TextStart,
    ToolReference,
    ToolResult,
    collect,
    events_of,
)

CITE = Citation(url="https://weather.example/paris", title="Paris weather", start=3, end=9,
                dialect="openai_responses", data={"type": "url_citation"})


def test_round_trip_keeps_parts_apart() -> None:
    resp = ChatResponse(id="r", model="m", stop_reason=StopReason.REFUSAL, content=[
        Text(text="Let me look.", phase="commentary"),
        Text(text="It is sunny.", phase="final_answer"),
        Text(text="Plain "),
        Text(text="cited", citations=[CITE]),
        Refusal(text="I can't help with that."),
    ])
    assert collect(events_of(resp), "r", "m") == resp


def test_citation_before_its_text_opens_the_part() -> None:
    """Anthropic streams a block's citations before its text."""
    events = [TextDelta(text="Before. "), TextStart(), CitationAdded(citation=CITE),
              TextDelta(text="cited"), TextStart(), TextDelta(text=" after"),
              RefusalDelta(text="no"), RefusalDelta(text="pe")]
    got = collect(events, "r", "m").content
    assert got == [Text(text="Before. "), Text(text="cited", citations=[CITE]),
                   Text(text=" after"), Refusal(text="nope")]


def test_tool_result_content_encodes_and_shows_as_text() -> None:
    sr = SearchResult(source="https://docs.example/p", title="Guide",
                      content=[Text(text="Paris is in France.")], citations=True)
    result = ToolResult(call_id="c", content=[sr, ToolReference(tool_name="get_weather")])
    msg = Message(role="tool", content=[result])
    assert msgspec.json.decode(msgspec.json.encode(msg), type=Message) == msg
    assert result.text() == ("[search result: Guide (https://docs.example/p)]\n"
                             "Paris is in France.[tool reference: get_weather]")
