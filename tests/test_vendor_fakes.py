"""The Azure, Codex, Mistral and Ollama fakes checked against the vendors' own clients (no
gateway in between): ``openai.AzureOpenAI``, the openai SDK pointed at the Codex backend,
``mistralai`` and ``ollama``. If those parse the fakes' bytes and find their URLs, the
provider tests stand on vendor-shaped ground."""

from __future__ import annotations

import json
from collections.abc import Iterator

import ollama
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.fakes.azure import AZURE_AD_TOKENS, AZURE_KEY, DEPLOYMENT, FakeAzure
from tests.fakes.codex import ACCOUNT_ID, CODEX_TOKENS, FakeCodex
from tests.fakes.mistral import MISTRAL_CALL_IDS, MISTRAL_KEY, MISTRAL_MODEL, FakeMistral
from tests.fakes.ollama import OLLAMA_MODEL, FakeOllama
from tests.fakes.upstream import (
    CHAT_CALL_IDS,
    IMAGE_PNG,
    PREAMBLE,
    TEXT,
    THINK_ANSWER,
    THINKING,
    image_answer,
    image_note,
)


@pytest.fixture(scope="module")
def azure() -> Iterator[FakeAzure]:
    with FakeAzure() as f:
        yield f


@pytest.fixture(scope="module")
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as f:
        yield f


@pytest.fixture(scope="module")
def mistral() -> Iterator[FakeMistral]:
    with FakeMistral() as f:
        yield f


@pytest.fixture(scope="module")
def local_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


# --- Azure: the openai SDK's own Azure client ----------------------------------------------


def test_azure_client_key_and_stream(azure: FakeAzure) -> None:
    client = openai.AzureOpenAI(azure_endpoint=azure.url, api_key=AZURE_KEY,
                                api_version="2024-10-21", max_retries=0)
    r = client.chat.completions.create(model=DEPLOYMENT,
                                       messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == TEXT
    chunks = list(client.chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "scenario:tools"}],
        stream=True))
    assert chunks[0].choices == []  # Azure's prompt-filter chunk
    calls = [tc.id for c in chunks for ch in c.choices for tc in ch.delta.tool_calls or ()
             if tc.id]
    assert calls == list(CHAT_CALL_IDS)
    assert azure.requests[-1].path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"


def test_azure_client_entra_token_and_responses(azure: FakeAzure) -> None:
    client = openai.AzureOpenAI(azure_endpoint=azure.url,
                                azure_ad_token_provider=lambda: AZURE_AD_TOKENS[0],
                                api_version="2025-04-01-preview", max_retries=0)
    r = client.responses.create(model=DEPLOYMENT, input="hi")
    assert r.output_text == TEXT
    assert azure.requests[-1].path == "/openai/responses"
    with pytest.raises(openai.AuthenticationError):
        openai.AzureOpenAI(azure_endpoint=azure.url, api_key="wrong", max_retries=0,
                           api_version="2024-10-21").chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "hi"}])


def test_azure_v1_with_the_plain_client(azure: FakeAzure) -> None:
    # The v1 API takes the stock OpenAI client (an Entra token as the bearer).
    client = openai.OpenAI(base_url=azure.url + "/openai/v1", api_key=AZURE_AD_TOKENS[0],
                           max_retries=0)
    r = client.chat.completions.create(model=DEPLOYMENT,
                                       messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == TEXT
    assert azure.requests[-1].path == "/openai/v1/chat/completions"
    both = openai.OpenAI(base_url=azure.url + "/openai/v1", api_key=AZURE_AD_TOKENS[0],
                         default_headers={"api-key": AZURE_KEY}, max_retries=0)
    with pytest.raises(openai.AuthenticationError):  # a key AND a token: refused
        both.chat.completions.create(model=DEPLOYMENT,
                                     messages=[{"role": "user", "content": "hi"}])


# --- Codex: the openai SDK pointed at the backend ---------------------------------------------


@pytest.mark.parametrize("scenario", ["text", "done"])
def test_codex_stream_with_the_openai_sdk(scenario: str, codex: FakeCodex) -> None:
    client = openai.OpenAI(base_url=codex.url + "/backend-api/codex",
                           api_key=CODEX_TOKENS[0], max_retries=0, default_headers={
                               "chatgpt-account-id": ACCOUNT_ID,
                               "OpenAI-Beta": "responses=experimental",
                               "originator": "codex_cli_rs", "session_id": "s-1"})
    events = list(client.responses.create(
        model="gpt-5-fake", input=f"scenario:{scenario}", instructions="Be terse.",
        stream=True, store=False, include=["reasoning.encrypted_content"]))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == TEXT
    assert events[-1].type == ("response.done" if scenario == "done" else "response.completed")
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.create(model="gpt-5-fake", input="hi", instructions="x",
                                stream=True, store=True)
    assert ei.value.body == {"detail": "Store must be set to false"}


# --- Mistral: mistralai ---------------------------------------------------------------------


def test_mistral_client(mistral: FakeMistral) -> None:
    client = Mistral(api_key=MISTRAL_KEY, server_url=mistral.url)
    r = client.chat.complete(model=MISTRAL_MODEL,
                             messages=[{"role": "user", "content": "scenario:tools"}])
    msg = r.choices[0].message
    assert msg.content == PREAMBLE
    assert [tc.id for tc in msg.tool_calls or ()] == list(MISTRAL_CALL_IDS)
    r = client.chat.complete(model=MISTRAL_MODEL,
                             messages=[{"role": "user", "content": "scenario:thinking"}])
    think, answer = r.choices[0].message.content  # type: ignore[misc]
    assert think.type == "thinking" and think.thinking[0].text == THINKING  # type: ignore[union-attr]
    assert answer.text == THINK_ANSWER  # type: ignore[union-attr]
    events = list(client.chat.stream(model=MISTRAL_MODEL,
                                     messages=[{"role": "user", "content": "hi"}]))
    assert "".join(e.data.choices[0].delta.content or "" for e in events  # type: ignore[misc]
                   if isinstance(e.data.choices[0].delta.content, str)) == TEXT
    assert events[-1].data.usage is not None and events[-1].data.usage.prompt_tokens == 21
    with pytest.raises(SDKError) as ei:
        client.chat.complete(model=MISTRAL_MODEL,
                             messages=[{"role": "user", "content": "scenario:error429"}])
    assert ei.value.status_code == 429


def test_mistral_rejects_what_mistral_rejects(mistral: FakeMistral) -> None:
    client = Mistral(api_key=MISTRAL_KEY, server_url=mistral.url)
    with pytest.raises(Exception) as ei:  # the SDK's 422 error type
        client.chat.complete(model=MISTRAL_MODEL, messages=[
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_not_nine", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_not_nine", "content": "x"}])
    assert "must be a-z, A-Z, 0-9, with a length of 9" in str(ei.value)
    body = json.loads(mistral.requests[-1].raw)
    assert body["messages"][0]["tool_calls"][0]["id"] == "call_not_nine"


# --- Ollama: ollama ---------------------------------------------------------------------------


def test_ollama_client(local_ollama: FakeOllama) -> None:
    client = ollama.Client(host=local_ollama.url)
    r = client.chat(model=OLLAMA_MODEL, messages=[{"role": "user", "content": "scenario:tools"}])
    assert r.message.content == PREAMBLE and r.done_reason == "stop"
    assert [(c.function.name, c.function.arguments) for c in r.message.tool_calls or ()] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {})]
    parts = list(client.chat(model=OLLAMA_MODEL, stream=True, think=True,
                             messages=[{"role": "user", "content": "scenario:thinking"}]))
    assert "".join(p.message.thinking or "" for p in parts) == THINKING
    assert "".join(p.message.content or "" for p in parts) == THINK_ANSWER
    assert parts[-1].done and parts[-1].eval_count
    r = client.chat(model=OLLAMA_MODEL, messages=[
        {"role": "user", "content": "scenario:image", "images": [IMAGE_PNG]}])
    assert r.message.content == image_answer([image_note(data=IMAGE_PNG)])
    with pytest.raises(ollama.ResponseError) as ei:
        client.chat(model="not-pulled", messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == 404 and "pulling" in ei.value.error
