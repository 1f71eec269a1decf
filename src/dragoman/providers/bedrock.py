"""AWS Bedrock upstream: the Converse API (``POST /model/{modelId}/converse``) and
ConverseStream (``/converse-stream``, a binary AWS event stream).

Authentication, in order: ``api_key`` (a Bedrock API key, sent as ``Authorization:
Bearer``); ``aws_access_key_id`` + ``aws_secret_access_key`` (+ ``aws_session_token``);
``profile`` (a named profile of the shared AWS config files); otherwise the standard AWS
credential chain (environment, shared files, SSO, container and instance roles…) as
botocore resolves it. Requests are signed with botocore's ``SigV4Auth`` (service
``bedrock``) over the exact bytes sent: the model id is percent-encoded once in the path
(``:`` → ``%3A``, ``/`` → ``%2F``) and that path goes out untouched.

Credentials are resolved lazily, in a worker thread (the chain may do network I/O), and
refreshed the same way when botocore says they are about to expire. Image URLs are fetched
by dragoman through the SSRF-safe fetcher (Bedrock takes images as bytes only).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, cast
from urllib.parse import quote

import botocore.session
import msgspec
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError

from ..core import (
    NO_CONTEXT,
    ChatRequest,
    ChatResponse,
    DragomanError,
    RequestContext,
    StreamError,
    StreamEvent,
    UpstreamError,
)
from ..dialects.bedrock_converse import DIALECT as BEDROCK_CONVERSE
from ..dialects.bedrock_converse import DOCUMENT_FORMATS, StreamParser, parse_error, parse_response
from ..net import UpstreamResponse
from ..net.eventstream import EventStreamDecoder, EventStreamMessage
from ..net.fetch import FetchPolicy
from .base import HttpDialectProvider
from .frames import FrameDecoder
from .media import IMAGE_FETCH_POLICY, IMAGE_TYPES, inline_remote_media
from .registry import OptionsError, ProviderSpec
from .upstream_call import with_retry_after

SERVICE = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"

# botocore's signer logs the canonical request at DEBUG, session token included: keep it
# quiet whatever level the application sets for the root logger.
logging.getLogger("botocore.auth").setLevel(logging.INFO)


class BedrockOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``provider: bedrock`` keys besides the common ones."""

    region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    profile: str | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"BedrockOptions(region={self.region!r}, profile={self.profile!r})"


class _EventStreamFrames:
    """The AWS event stream as ``(name, payload)`` frames for the Converse stream parser:
    an event's ``:event-type``, or an exception's ``:exception-type`` (exceptions are
    members of the same event union in the service model)."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = EventStreamDecoder()

    def feed(self, chunk: bytes) -> Iterator[tuple[str | None, Any]]:
        for m in self._decoder.feed(chunk):
            yield _frame(m)
        self._decoder.check()  # a corrupt frame after the good ones: fail after them

    def close(self) -> list[tuple[str | None, Any]]:
        self._decoder.close()
        return []


def _frame(m: EventStreamMessage) -> tuple[str | None, Any]:
    kind = m.message_type
    if kind == "event":
        return m.header(":event-type"), m.payload
    if kind == "exception":
        return m.header(":exception-type") or "internalServerException", m.payload
    # ``error`` frames carry their code and text in headers, not in the payload.
    text = f"{m.header(':error-code') or 'error'}: {m.header(':error-message') or ''}"
    return "internalServerException", msgspec.json.encode({"message": text.strip()})


class Bedrock(HttpDialectProvider):
    dialect = BEDROCK_CONVERSE

    def __init__(self, *, region: str, credentials: Credentials | None = None,
                 profile: str | None = None, fetch_policy: FetchPolicy | None = None,
                 base_url: str | None = None, **kw: Any) -> None:
        super().__init__(base_url=base_url or f"https://bedrock-runtime.{region}.amazonaws.com",
                         **kw)
        self.region = region
        self._profile = profile
        self._credentials: Credentials | None = credentials
        self._credentials_lock = asyncio.Lock()
        # Bedrock takes images and documents as bytes only: fetch both kinds.
        self._fetch_policy = dataclasses.replace(
            fetch_policy or IMAGE_FETCH_POLICY,
            allowed_content_types=IMAGE_TYPES + tuple(DOCUMENT_FORMATS))

    def __repr__(self) -> str:  # never the credentials
        return f"Bedrock(model={self.model!r}, region={self.region!r})"

    # --- envelope ------------------------------------------------------------------------

    def path(self, req: ChatRequest, stream: bool) -> str:
        suffix = "converse-stream" if stream else "converse"
        return f"/model/{quote(self.model, safe='')}/{suffix}"

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        return body  # the stream choice is the path, the model is in the path

    def request_headers(self, req: ChatRequest, stream: bool,
                        ctx: RequestContext = NO_CONTEXT) -> dict[str, str]:
        h = super().request_headers(req, stream, ctx)
        if stream:
            h["accept"] = EVENT_STREAM
        return h


    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        return parse_response(body, req.custom_tool_names())

    def upstream_stream_parser(self, req: ChatRequest) -> StreamParser:
        return StreamParser(req.custom_tool_names())

    def stream_decoder(self) -> FrameDecoder:
        return _EventStreamFrames()

    def error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError:
        return with_retry_after(
            parse_error(resp.status, raw, resp.headers.get("x-amzn-ErrorType")), resp)

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        """As the base, except that an exception frame before any content (a throttle at
        the very start of a ConverseStream) is raised, like an HTTP error would be, so the
        client gets the status and its SDK can retry."""
        events = cast(AsyncGenerator[StreamEvent, None], super().stream(req, ctx))
        try:
            first = await anext(events, None)
            if isinstance(first, StreamError):
                raise first.error
            if first is not None:
                yield first
                async for ev in events:
                    yield ev
        finally:
            await events.aclose()

    # --- sending: fetch images, sign the exact bytes -----------------------------------------

    async def send(self, req: ChatRequest, stream: bool,
                   ctx: RequestContext = NO_CONTEXT) -> UpstreamResponse:
        req = await inline_remote_media(req, _is_web_url, self._fetch_policy)
        url = self.http.base_url + self.path(req, stream)
        body = self._body(req, stream)
        headers = self.request_headers(req, stream, ctx)
        if not any(k.lower() == "authorization" for k in headers):  # no API key: SigV4
            headers = self._sign(url, headers, body, await self._frozen_credentials())
        return await self.http.request("POST", url, body=body, headers=headers, encoded=True)

    def _sign(self, url: str, headers: dict[str, str], body: bytes,
              creds: ReadOnlyCredentials) -> dict[str, str]:
        areq = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(creds, SERVICE, self.region).add_auth(areq)
        return dict(areq.headers.items())

    async def _frozen_credentials(self) -> ReadOnlyCredentials:
        creds = self._credentials
        if creds is None:
            async with self._credentials_lock:
                creds = self._credentials
                if creds is None:
                    creds = self._credentials = await asyncio.to_thread(self._resolve)
        if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    def _resolve(self) -> Credentials:
        """The standard AWS credential chain (or the configured profile)."""
        try:
            creds = botocore.session.Session(profile=self._profile).get_credentials()
        except BotoCoreError as e:
            raise UpstreamError(f"bedrock: cannot load AWS credentials ({type(e).__name__})") \
                from None
        if creds is None:
            raise UpstreamError("bedrock: no AWS credentials found (configure api_key, "
                                "aws_access_key_id/aws_secret_access_key, a profile, or the "
                                "standard AWS environment)")
        return creds


def _is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))  # s3:// goes to Bedrock as s3Location


def _default_region(profile: str | None) -> str | None:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    try:
        value = botocore.session.Session(profile=profile).get_config_variable("region")
    except BotoCoreError:
        return None
    return value if isinstance(value, str) and value else None


def from_spec(spec: ProviderSpec) -> Bedrock:
    opts = spec.parse_options(BedrockOptions)
    if (opts.aws_access_key_id is None) != (opts.aws_secret_access_key is None):
        raise OptionsError("aws_access_key_id and aws_secret_access_key go together - at `$`")
    if opts.aws_session_token is not None and opts.aws_access_key_id is None:
        raise OptionsError("aws_session_token needs aws_access_key_id and "
                           "aws_secret_access_key - at `$`")
    region = opts.region or _default_region(opts.profile)
    if not region:
        raise OptionsError("`region` is required for provider bedrock (or set AWS_REGION) "
                           "- at `$`")
    creds = None
    if opts.aws_access_key_id is not None and opts.aws_secret_access_key is not None:
        creds = Credentials(opts.aws_access_key_id, opts.aws_secret_access_key,
                            opts.aws_session_token)
    return Bedrock(region=region, credentials=creds, profile=opts.profile,
                   fetch_policy=spec.fetch_policy, **spec.http_kwargs())
