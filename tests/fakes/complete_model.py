"""Vendor-shaped answers for the parts of the wire that issue 18 gave a neutral form:
refusals, Responses message ``phase`` and citations. Hand-written from
docs/protocols/*.md (never produced by dragoman's renderers), as plain dicts without
framing: ``upstream.FakeUpstream`` frames them (SSE, sequence numbers, ids, usage).

``refusal``   Chat ``message.refusal`` / ``delta.refusal``; a Responses ``refusal`` content
              part (``response.refusal.delta``/``.done``); Anthropic text + stop reason
              ``refusal`` with ``stop_details``
``phase``     Responses: a ``commentary`` message then a ``final_answer`` message in one
              turn; Chat and Anthropic have no phase and answer plain text
``citations`` Chat ``message.annotations`` (url_citation; not streamed: chunk deltas have
              no annotations); Responses ``output_text.annotations`` and
              ``response.output_text.annotation.added``; Anthropic a cited text block
              (``web_search_result_location``) between two plain ones, ``citations_delta``
              in the stream
"""

from __future__ import annotations

from typing import Any

SCENARIOS = frozenset({"refusal", "phase", "citations"})

REFUSAL_CHUNKS = ("I can't help", " with that.")
REFUSAL = "".join(REFUSAL_CHUNKS)

COMMENTARY = "Let me look that up."
FINAL_CHUNKS = ("Paris is", " sunny today.")
FINAL = "".join(FINAL_CHUNKS)

CITE_URL = "https://weather.example/paris"
CITE_TITLE = "Paris weather"
CITED_TEXT = "Paris: sunny, 18C"
CITE_BEFORE = "According to the forecast, "
CITE_SPAN = "it is sunny in Paris"
CITE_AFTER = "."
CITED_ANSWER = CITE_BEFORE + CITE_SPAN + CITE_AFTER
CITE_START = len(CITE_BEFORE)
CITE_END = CITE_START + len(CITE_SPAN)
ENCRYPTED_INDEX = "Eo8BCioIAhgBIiQ0NGFlNjdjOS1mYWtl+/="

#: ids of the Responses message items
RESP_MSG_IDS = {"refusal": "msg_68b0refuse", "commentary": "msg_68b0comment",
                "final_answer": "msg_68b0final", "citations": "msg_68b0cite"}

# --- OpenAI Chat -------------------------------------------------------------------------

_CHAT_ANNOTATION = {"type": "url_citation", "url_citation": {
    "start_index": CITE_START, "end_index": CITE_END, "url": CITE_URL, "title": CITE_TITLE}}


def chat_message(scen: str) -> tuple[dict[str, Any], str]:
    """The ``message`` fields (besides ``role``) and the ``finish_reason``."""
    if scen == "refusal":
        return {"content": None, "refusal": REFUSAL, "annotations": []}, "stop"
    if scen == "citations":
        return {"content": CITED_ANSWER, "refusal": None,
                "annotations": [_CHAT_ANNOTATION]}, "stop"
    return {"content": FINAL, "refusal": None, "annotations": []}, "stop"


def chat_deltas(scen: str) -> tuple[list[dict[str, Any]], str]:
    """The deltas after the role chunk, and the ``finish_reason``."""
    if scen == "refusal":
        return [{"refusal": t} for t in REFUSAL_CHUNKS], "stop"
    if scen == "citations":
        return [{"content": t} for t in (CITE_BEFORE, CITE_SPAN, CITE_AFTER)], "stop"
    return [{"content": t} for t in FINAL_CHUNKS], "stop"


# --- OpenAI Responses --------------------------------------------------------------------

_RESP_ANNOTATION = {"type": "url_citation", "start_index": CITE_START,
                    "end_index": CITE_END, "url": CITE_URL, "title": CITE_TITLE}


def _output_text(text: str, annotations: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [],
            "logprobs": []}


def _message(item_id: str, content: list[dict[str, Any]], phase: str | None = None,
             status: str = "completed") -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "message", "status": status,
                            "role": "assistant", "content": content}
    if phase is not None:
        item["phase"] = phase
    return item


def responses_output(scen: str) -> list[dict[str, Any]]:
    if scen == "refusal":
        return [_message(RESP_MSG_IDS["refusal"], [{"type": "refusal", "refusal": REFUSAL}])]
    if scen == "citations":
        return [_message(RESP_MSG_IDS["citations"],
                         [_output_text(CITED_ANSWER, [_RESP_ANNOTATION])])]
    return [_message(RESP_MSG_IDS["commentary"], [_output_text(COMMENTARY)], "commentary"),
            _message(RESP_MSG_IDS["final_answer"], [_output_text(FINAL)], "final_answer")]


def responses_events(scen: str) -> list[dict[str, Any]]:
    """The events between ``response.in_progress`` and ``response.completed`` (without
    ``sequence_number``, which the fake adds)."""
    if scen == "refusal":
        mid = RESP_MSG_IDS["refusal"]
        at = {"item_id": mid, "output_index": 0, "content_index": 0}
        return [
            {"type": "response.output_item.added", "output_index": 0,
             "item": _message(mid, [], status="in_progress")},
            {"type": "response.content_part.added", **at,
             "part": {"type": "refusal", "refusal": ""}},
            *({"type": "response.refusal.delta", **at, "delta": t} for t in REFUSAL_CHUNKS),
            {"type": "response.refusal.done", **at, "refusal": REFUSAL},
            {"type": "response.content_part.done", **at,
             "part": {"type": "refusal", "refusal": REFUSAL}},
            {"type": "response.output_item.done", "output_index": 0,
             "item": responses_output("refusal")[0]},
        ]
    if scen == "citations":
        mid = RESP_MSG_IDS["citations"]
        return _text_item_events(0, mid, None, (CITE_BEFORE, CITE_SPAN, CITE_AFTER),
                                 [_RESP_ANNOTATION])
    return [*_text_item_events(0, RESP_MSG_IDS["commentary"], "commentary", (COMMENTARY,)),
            *_text_item_events(1, RESP_MSG_IDS["final_answer"], "final_answer",
                               FINAL_CHUNKS)]


def _text_item_events(idx: int, mid: str, phase: str | None, chunks: tuple[str, ...],
                      annotations: list[dict[str, Any]] | None = None
                      ) -> list[dict[str, Any]]:
    at = {"item_id": mid, "output_index": idx, "content_index": 0}
    full = "".join(chunks)
    return [
        {"type": "response.output_item.added", "output_index": idx,
         "item": _message(mid, [], phase, "in_progress")},
        {"type": "response.content_part.added", **at, "part": _output_text("")},
        *({"type": "response.output_text.delta", **at, "delta": t, "logprobs": []}
          for t in chunks),
        *({"type": "response.output_text.annotation.added", **at, "annotation_index": i,
           "annotation": a} for i, a in enumerate(annotations or ())),
        {"type": "response.output_text.done", **at, "text": full, "logprobs": []},
        {"type": "response.content_part.done", **at,
         "part": _output_text(full, annotations)},
        {"type": "response.output_item.done", "output_index": idx,
         "item": _message(mid, [_output_text(full, annotations)], phase)},
    ]


# --- Anthropic Messages ------------------------------------------------------------------

ANTHROPIC_CITATION = {"type": "web_search_result_location", "cited_text": CITED_TEXT,
                      "url": CITE_URL, "title": CITE_TITLE,
                      "encrypted_index": ENCRYPTED_INDEX}
REFUSAL_DETAILS = {"type": "refusal", "category": "general_harms",
                   "explanation": "This request was declined."}


def anthropic_content(scen: str) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """Content blocks, ``stop_reason`` and extra top-level message fields."""
    if scen == "refusal":
        return ([{"type": "text", "text": REFUSAL, "citations": None}], "refusal",
                {"stop_details": REFUSAL_DETAILS})
    if scen == "citations":
        return ([{"type": "text", "text": CITE_BEFORE, "citations": None},
                 {"type": "text", "text": CITE_SPAN, "citations": [ANTHROPIC_CITATION]},
                 {"type": "text", "text": CITE_AFTER, "citations": None}], "end_turn", {})
    return [{"type": "text", "text": FINAL, "citations": None}], "end_turn", {}


def anthropic_blocks(scen: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(``content_block_start`` block, its deltas) for each block of the stream."""
    def text(chunks: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"type": "text_delta", "text": t} for t in chunks]

    if scen == "refusal":
        return [({"type": "text", "text": ""}, text(REFUSAL_CHUNKS))]
    if scen == "citations":
        return [({"type": "text", "text": ""}, text((CITE_BEFORE,))),
                ({"type": "text", "text": "", "citations": []},
                 [{"type": "citations_delta", "citation": ANTHROPIC_CITATION},
                  *text((CITE_SPAN,))]),
                ({"type": "text", "text": ""}, text((CITE_AFTER,)))]
    return [({"type": "text", "text": ""}, text(FINAL_CHUNKS))]
