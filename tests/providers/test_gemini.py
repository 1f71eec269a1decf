"""The ``gemini`` and ``vertex`` providers against the fake Google upstream over loopback:
text, streaming, parallel tool calls with signatures, thinking, images, usage, and every
failure — each case for both envelopes."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dragoman.core import (
    ChatRequest,
    ContextLengthExceeded,
    DragomanError,
    File,
    Finish,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Overloaded,
    RateLimited,
    Reasoning,
    RequestTooLarge,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
    TransportError,
    UpstreamError,
    Usage,
    collect,
)
from dragoman.providers.gemini import GoogleGenerateContent
from dragoman.providers.registry import OptionsError, ProviderSpec, build
from tests.cross_dialect.clients import TIME_SCHEMA, WEATHER_SCHEMA
from tests.fakes.gemini import (
    COUNT_TOKENS,
    GEMINI_CALL_IDS,
    GEMINI_KEY,
    GEMINI_SIGNATURE,
    PDF_BYTES,
    SKIP_SIGNATURE,
    THINK_SIGNATURE,
    FakeGemini,
)
from tests.fakes.upstream import (
    FOLLOWUP,
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PREAMBLE,
    TEXT,
    TEXT_CHUNKS,
    THINK_ANSWER,
    THINKING,
    TRUNCATED,
    image_answer,
    image_note,
)

from .gemini_env import ask, gemini_provider, marker, service_account_file, vertex_provider

TOOLS = [Tool(name="get_weather", description="Weather now", parameters=WEATHER_SCHEMA),
         Tool(name="get_time", description="Local time", parameters=TIME_SCHEMA)]
SYNTH_ID = re.compile(r"^call_gemini_[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as f:
        yield f


@pytest.fixture(scope="module")
def sa_file(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return service_account_file(fake, tmp_path_factory.mktemp("sa"))


@pytest.fixture(params=["gemini", "vertex"])
async def provider(request: pytest.FixtureRequest, fake: FakeGemini,
                   sa_file: Path) -> AsyncIterator[GoogleGenerateContent]:
    p = gemini_provider(fake) if request.param == "gemini" else vertex_provider(fake, sa_file)
    yield p
    await p.aclose()


async def events(p: GoogleGenerateContent, req: ChatRequest) -> list[StreamEvent]:
    return [ev async for ev in p.stream(req)]


def path_of(p: GoogleGenerateContent, verb: str) -> str:
    if p.name == "gem":
        return f"/v1beta/models/gemini-2.5-flash:{verb}"
    return ("/v1/projects/proj-fake-123/locations/us-central1/publishers/google/models/"
            f"gemini-2.5-flash:{verb}")


# --- text ---------------------------------------------------------------------------------


async def test_text(provider: GoogleGenerateContent, fake: FakeGemini) -> None:
    user, nonce = marker("text")
    r = await provider.complete(ask(user, system=[Text(text="Be terse.")], max_tokens=64,
                                    temperature=0.3))
    assert r.text() == TEXT and r.stop_reason is StopReason.END_TURN
    assert r.usage == Usage(input_tokens=11, output_tokens=7)
    rec = fake.one(nonce)
    assert rec.path == path_of(provider, "generateContent") and rec.query == ""
    assert rec.body == {"contents": [{"role": "user", "parts": [{"text": user}]}],
                        "systemInstruction": {"parts": [{"text": "Be terse."}]},
                        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.3}}
    if provider.name == "gem":
        assert rec.headers["x-goog-api-key"] == GEMINI_KEY and "authorization" not in rec.headers
    else:
        assert rec.headers["authorization"].startswith("Bearer ya29.fake-")
        assert "x-goog-api-key" not in rec.headers


async def test_text_stream(provider: GoogleGenerateContent, fake: FakeGemini) -> None:
    user, nonce = marker("text")
    evs = await events(provider, ask(user))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == list(TEXT_CHUNKS)
    assert evs[-1] == Finish(stop_reason=StopReason.END_TURN)
    assert collect(evs, "x", "m").usage == Usage(input_tokens=11, output_tokens=7)
    rec = fake.one(nonce)
    assert rec.path == path_of(provider, "streamGenerateContent") and rec.query == "alt=sse"
    assert rec.headers["accept"] == "text/event-stream"


# --- tools and thought signatures ---------------------------------------------------------


def _turn2(user: str, content: list[object], results: dict[str, str]) -> ChatRequest:
    calls = [p for p in content if isinstance(p, ToolCall)]
    return ChatRequest(model="client-name", tools=TOOLS, messages=[
        Message(role="user", content=[Text(text=user)]),
        Message(role="assistant", content=content),  # type: ignore[arg-type]
        Message(role="tool", content=[ToolResult(call_id=c.id, content=[
            Text(text=results[c.name])]) for c in calls])])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_parallel_tool_calls_round_trip(provider: GoogleGenerateContent,
                                              fake: FakeGemini, stream: bool) -> None:
    user, nonce = marker("tools")
    req = ask(user, tools=TOOLS)
    r = collect(await events(provider, req), "x", "m") if stream \
        else await provider.complete(req)
    assert r.stop_reason is StopReason.TOOL_USE
    assert r.text() == PREAMBLE
    calls = r.tool_calls()
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city":"Paris"}'),
                                                      ("get_time", "{}")]
    assert all(SYNTH_ID.match(c.id) for c in calls) and calls[0].id != calls[1].id
    # the signature travels as a gemini Thinking right before the call it was on
    i = r.content.index(calls[0])
    assert r.content[i - 1] == Thinking(signature=GEMINI_SIGNATURE, origin="gemini")
    assert r.usage == Usage(input_tokens=80, output_tokens=31, cached_tokens=64,
                            reasoning_tokens=6)
    first = fake.one(nonce)
    decls = first.body["tools"][0]["functionDeclarations"]
    assert decls == [{"name": "get_weather", "description": "Weather now",
                      "parametersJsonSchema": WEATHER_SCHEMA},
                     {"name": "get_time", "description": "Local time",
                      "parametersJsonSchema": TIME_SCHEMA}]

    # A Chat client cannot carry the signature: it replays text and calls only.
    replay = [p for p in r.content if not isinstance(p, Thinking)]
    r2 = await provider.complete(_turn2(user, replay, {"get_weather": "18C, sunny",
                                                       "get_time": "12:00"}))
    assert r2.text() == FOLLOWUP and r2.stop_reason is StopReason.END_TURN
    second = fake.find(nonce)[1].body["contents"]
    assert second[1] == {"role": "model", "parts": [
        {"text": PREAMBLE},
        # remembered by the provider, back on the very part it came on; no made-up ids
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": GEMINI_SIGNATURE},
        {"functionCall": {"name": "get_time", "args": {}}}]}
    assert second[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "18C, sunny"}}},
        {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}}]}


async def test_unknown_call_gets_the_skip_signature(fake: FakeGemini) -> None:
    """History the provider never saw (another worker, another model): Gemini 3 would
    refuse unsigned calls, the documented skip value keeps it working."""
    p = gemini_provider(fake)
    user, nonce = marker("tools")
    content = [Text(text=PREAMBLE),
               ToolCall(id="call_Wx7pQ1", name="get_weather", arguments='{"city":"Paris"}'),
               ToolCall(id="call_Tm3kZ2", name="get_time", arguments="{}")]
    r = await p.complete(_turn2(user, content, {"get_weather": "18C", "get_time": "12:00"}))
    await p.aclose()
    assert r.text() == FOLLOWUP
    model = fake.one(nonce).body["contents"][1]["parts"]
    assert model[1]["thoughtSignature"] == SKIP_SIGNATURE
    assert model[1]["functionCall"]["id"] == "call_Wx7pQ1"  # a foreign id goes as it is


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_gemini_minted_call_ids_round_trip(provider: GoogleGenerateContent,
                                                 fake: FakeGemini, stream: bool) -> None:
    user, nonce = marker("tools_ids")
    req = ask(user, tools=TOOLS)
    r = collect(await events(provider, req), "x", "m") if stream \
        else await provider.complete(req)
    assert [c.id for c in r.tool_calls()] == list(GEMINI_CALL_IDS)
    await provider.complete(_turn2(user, r.content, {"get_weather": "18C", "get_time": "1"}))
    contents = fake.find(nonce)[1].body["contents"]
    assert [p["functionCall"]["id"] for p in contents[1]["parts"] if "functionCall" in p] \
        == list(GEMINI_CALL_IDS)
    assert [p["functionResponse"]["id"] for p in contents[2]["parts"]] == list(GEMINI_CALL_IDS)


# --- thinking --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_thinking(provider: GoogleGenerateContent, fake: FakeGemini,
                        stream: bool) -> None:
    user, nonce = marker("thinking")
    req = ask(user, reasoning=Reasoning(effort="low"), max_tokens=4096)
    r = collect(await events(provider, req), "x", "m") if stream \
        else await provider.complete(req)
    assert r.text() == THINK_ANSWER
    assert "".join(p.text for p in r.content if isinstance(p, Thinking)) == THINKING
    sigs = [p.signature for p in r.content if isinstance(p, Thinking) and p.signature]
    assert sigs == [THINK_SIGNATURE]
    assert r.usage == Usage(input_tokens=9, output_tokens=44, reasoning_tokens=40)
    assert fake.one(nonce).body["generationConfig"] == {
        "maxOutputTokens": 4096,
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}}
    # replayed: the signature goes back on the answer's text part, thoughts do not
    follow, nonce2 = marker("text")
    await provider.complete(ChatRequest(model="x", messages=[
        Message(role="user", content=[Text(text=user)]),
        Message(role="assistant", content=r.content),
        Message(role="user", content=[Text(text=follow)])]))
    assert fake.one(nonce2).body["contents"][1] == {"role": "model", "parts": [
        {"text": THINK_ANSWER, "thoughtSignature": THINK_SIGNATURE}]}


# --- images ------------------------------------------------------------------------------------


async def test_images_inline_fetched_and_google_hosted(provider: GoogleGenerateContent,
                                                       fake: FakeGemini) -> None:
    user, nonce = marker("image")
    r = await provider.complete(ask(
        user, Image(mime="image/png", data=IMAGE_PNG_B64),
        Image(url=f"{fake.url}/images/red.png"),       # fetched by dragoman, sent inline
        Image(url="gs://fake-bucket/cat.jpg")))         # Google fetches Cloud Storage itself
    assert r.text() == image_answer([image_note(data=IMAGE_PNG), image_note(data=IMAGE_PNG),
                                     image_note(url="gs://fake-bucket/cat.jpg")])
    parts = fake.one(nonce).body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": IMAGE_PNG_B64}}
    assert parts[2] == {"inlineData": {"mimeType": "image/png", "data": IMAGE_PNG_B64}}
    assert parts[3] == {"fileData": {"mimeType": "image/jpeg",
                                     "fileUri": "gs://fake-bucket/cat.jpg"}}


async def test_document_url_is_fetched_and_inlined(provider: GoogleGenerateContent,
                                                   fake: FakeGemini) -> None:
    user, nonce = marker("image")
    await provider.complete(ask(user, File(url=f"{fake.url}/docs/note.pdf")))
    assert fake.one(nonce).body["contents"][0]["parts"][1] == {"inlineData": {
        "mimeType": "application/pdf", "data": base64.b64encode(PDF_BYTES).decode()}}


async def test_image_urls_as_file_data_when_fetching_is_off(fake: FakeGemini) -> None:
    p = gemini_provider(fake, fetch_urls=False)
    user, nonce = marker("image")
    url = "https://images.example.com/cat.webp"
    r = await p.complete(ask(user, Image(url=url)))
    await p.aclose()
    assert r.text() == image_answer([image_note(url=url)])
    assert fake.one(nonce).body["contents"][0]["parts"][1] == {
        "fileData": {"mimeType": "image/webp", "fileUri": url}}


async def test_private_image_url_is_refused_before_any_upstream_call(fake: FakeGemini) -> None:
    from dragoman.providers.gemini import GeminiApi

    p = GeminiApi(model="gemini-2.5-flash", base_url=fake.url, api_key=GEMINI_KEY)
    user, nonce = marker("image")
    with pytest.raises(InvalidRequest):
        await p.complete(ask(user, Image(url=f"{fake.url}/images/red.png")))
    await p.aclose()
    assert fake.find(nonce) == []


# --- stops, usage, counting -------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "text", "stop"), [
    ("truncated", TRUNCATED, StopReason.MAX_TOKENS),
    ("blocked", "", StopReason.CONTENT_FILTER),
    ("safety", "I can", StopReason.CONTENT_FILTER),
])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_stop_reasons(provider: GoogleGenerateContent, scenario: str, text: str,
                            stop: StopReason, stream: bool) -> None:
    user, _ = marker(scenario)
    r = collect(await events(provider, ask(user)), "x", "m") if stream \
        else await provider.complete(ask(user))
    assert r.text() == text and r.stop_reason is stop


async def test_count_tokens(provider: GoogleGenerateContent, fake: FakeGemini) -> None:
    user, nonce = marker("text")
    assert await provider.count_tokens(ask(user, tools=TOOLS)) == COUNT_TOKENS
    rec = fake.one(nonce)
    assert rec.path == path_of(provider, "countTokens")
    body = rec.body
    if provider.name == "gem":
        assert body["generateContentRequest"]["model"] == "models/gemini-2.5-flash"
        body = body["generateContentRequest"]
    assert body["contents"][0]["parts"] == [{"text": user}]


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "kind", "status", "text"), [
    ("error400", ContextLengthExceeded, 400, "exceeds the maximum number of tokens"),
    ("error403", UpstreamError, 502, "has not been used in project"),
    ("error404", NotFound, 404, "is not found for API version"),
    ("error413", RequestTooLarge, 413, "413"),
    ("error429", RateLimited, 429, "exceeded your current quota"),
    ("error500", UpstreamError, 502, "internal error"),
    ("error503", Overloaded, 503, "overloaded"),
])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_http_failures(provider: GoogleGenerateContent, scenario: str,
                             kind: type[DragomanError], status: int, text: str,
                             stream: bool) -> None:
    user, _ = marker(scenario)
    with pytest.raises(DragomanError) as info:
        if stream:
            await events(provider, ask(user))  # fails before the first event: raised
        else:
            await provider.complete(ask(user))
    err = info.value
    assert type(err) is kind and err.status == status and text in err.message
    if scenario == "error429":
        assert err.retry_after == 37.0  # from RetryInfo: Google sends no retry-after header


async def test_wrong_api_key_is_a_gateway_problem(fake: FakeGemini) -> None:
    p = gemini_provider(fake, key="AIza-wrong-key-XYZ")
    user, _ = marker("text")
    with pytest.raises(UpstreamError) as info:
        await p.complete(ask(user))
    await p.aclose()
    assert info.value.status == 502 and "credentials" in info.value.message
    assert "AIza-wrong-key-XYZ" not in info.value.message
    assert "AIza" not in repr(p) and GEMINI_KEY not in repr(p)


@pytest.mark.parametrize(("scenario", "kind", "partial"), [
    ("cut", TransportError, "".join(TEXT_CHUNKS[:2])),
    ("malformed", UpstreamError, TEXT_CHUNKS[0]),
    ("midstream_error", Overloaded, "Partial answer"),
])
async def test_failures_after_the_first_byte(provider: GoogleGenerateContent, scenario: str,
                                             kind: type[DragomanError], partial: str) -> None:
    user, _ = marker(scenario)
    evs = await events(provider, ask(user))
    assert "".join(e.text for e in evs if isinstance(e, TextDelta)) == partial
    assert isinstance(evs[-1], StreamError) and type(evs[-1].error) is kind
    assert not any(isinstance(e, Finish) for e in evs)


@pytest.mark.parametrize(("scenario", "kind"), [("cut", TransportError),
                                                ("malformed", UpstreamError)])
async def test_broken_whole_answers(provider: GoogleGenerateContent, scenario: str,
                                    kind: type[DragomanError]) -> None:
    user, _ = marker(scenario)
    with pytest.raises(kind):
        await provider.complete(ask(user))


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider_name", "options", "api_key", "message"), [
    ("gemini", {"projet": "x"}, "k", "projet"),
    ("gemini", {}, None, "needs `api_key`"),
    ("gemini", {"signature_cache": "many"}, "k", "signature_cache"),
    ("vertex", {"credentials_file": "/x.json"}, "k", "never both"),
    ("vertex", {"location": 5}, None, "location"),
])
def test_options_are_validated(provider_name: str, options: dict[str, object],
                               api_key: str | None, message: str) -> None:
    with pytest.raises(OptionsError, match=re.escape(message)):
        build(ProviderSpec(name="m", provider=provider_name, model="gemini-2.5-flash",
                           api_key=api_key, options=options))


def test_signature_memory_is_bounded_and_restores_only_what_is_missing() -> None:
    from dragoman.providers.gemini import SignatureMemory

    mem = SignatureMemory(2)
    mem.observe([Thinking(signature="S1", origin="gemini"), ToolCall(id="a", name="f"),
                 Thinking(signature="S2", origin="gemini"), ToolCall(id="b", name="f"),
                 Thinking(signature="other", origin="anthropic"), ToolCall(id="c", name="f")])
    mem.remember("d", "S4")  # evicts "a", the oldest
    msgs = [Message(role="user", content=[Text(text="u")]),
            Message(role="assistant", content=[ToolCall(id="a", name="f"),
                                               ToolCall(id="b", name="f")]),
            Message(role="assistant", content=[Thinking(signature="kept", origin="gemini"),
                                               ToolCall(id="d", name="f")])]
    req = ChatRequest(model="m", messages=msgs)
    out = mem.restore(req)
    assert out.messages[1].content == [ToolCall(id="a", name="f"),
                                       Thinking(signature="S2", origin="gemini"),
                                       ToolCall(id="b", name="f")]
    assert out.messages[2] is msgs[2]  # already signed: untouched
    assert req.messages[1].content == msgs[1].content and len(msgs[1].content) == 2
    assert SignatureMemory(0).restore(req) is req
