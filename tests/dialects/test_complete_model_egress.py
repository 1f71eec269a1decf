"""Upstreams that have no form for a refusal, a search result or a tool reference (Gemini,
Bedrock Converse, Ollama) get their text, never silence: what a conversation said still
reaches the model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    Message,
    Refusal,
    SearchResult,
    Text,
    ToolCall,
    ToolReference,
    ToolResult,
)
from dragoman.dialects.bedrock_converse.egress import render_request as bedrock
from dragoman.dialects.gemini.egress import render_request as gemini
from dragoman.dialects.ollama.egress import render_request as ollama

SEARCH = SearchResult(source="https://docs.example/p", title="Guide",
                      content=[Text(text="Paris is in France.")])
REQUEST = ChatRequest(model="m", messages=[
    Message(role="user", content=[SEARCH, Text(text="Where is Paris?")]),
    Message(role="assistant", content=[Refusal(text="I can't help with that.")]),
    Message(role="user", content=[Text(text="Look it up")]),
    Message(role="assistant", content=[ToolCall(id="c1", name="find", arguments="{}")]),
    Message(role="tool", content=[ToolResult(call_id="c1", content=[
        ToolReference(tool_name="get_weather"), SEARCH])]),
])


@pytest.mark.parametrize("render", [gemini, bedrock, ollama])
def test_parts_without_a_form_travel_as_text(render: Callable[[ChatRequest], Any]) -> None:
    body = json.dumps(render(REQUEST))
    for text in ("[search result: Guide (https://docs.example/p)]", "Paris is in France.",
                 "I can't help with that.", "[tool reference: get_weather]"):
        assert text in body, text
