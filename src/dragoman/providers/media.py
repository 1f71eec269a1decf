"""Media an upstream cannot take by URL (Ollama, Bedrock, Gemini for plain https…):
dragoman fetches it itself, through the SSRF-safe fetcher, and sends it inline.

``inline_remote_media(req, should_fetch, policy)`` returns ``req`` untouched when no image
or document is given by a URL ``should_fetch`` accepts (the common case costs one scan of
the parts), else a copy whose such parts carry base64 data instead (tool results' content
included). Each distinct URL is fetched once, all of them concurrently; a refused or
failed fetch is an ``InvalidRequest`` naming the reason (never an internal address).
``data:`` URLs are inlined without a fetch.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import msgspec

from ..core import ChatRequest, File, Image, InvalidRequest, Message, Part, ToolResult
from ..dialects.data_urls import split_data_url
from ..net.fetch import FetchPolicy, fetch

#: content types worth inlining for a multimodal upstream (prefixes)
MEDIA_TYPES = ("image/", "application/pdf", "audio/", "video/", "text/")
IMAGE_TYPES = ("image/",)

#: an image fetch by default: 20 MiB of ``image/*`` within 15 s
IMAGE_FETCH_POLICY = FetchPolicy(max_bytes=20 * 1024 * 1024, timeout=15.0,
                                 allowed_content_types=IMAGE_TYPES)


def every_url(url: str) -> bool:
    return True


class _Scan:
    __slots__ = ("should_fetch", "urls")

    def __init__(self, should_fetch: Callable[[str], bool]) -> None:
        self.should_fetch = should_fetch
        self.urls: set[str] = set()

    def wanted(self, p: object) -> bool:
        return (isinstance(p, (Image, File)) and p.data is None and bool(p.url)
                and self.should_fetch(p.url))  # type: ignore[arg-type]

    def visit(self, p: Part) -> bool:
        """Note the URLs of ``p`` (and of a tool result's content); whether it has any."""
        found = False
        for q in p.content if isinstance(p, ToolResult) else (p,):
            if self.wanted(q):
                self.urls.add(q.url)  # type: ignore[union-attr,arg-type]
                found = True
        return found


async def _load(url: str, policy: FetchPolicy) -> tuple[str, str]:
    """(mime, base64 data) of one URL."""
    inline = split_data_url(url)
    if inline is not None:
        return inline
    got = await fetch(url, policy)
    if not 200 <= got.status < 300:  # an error page is not the image the client meant
        raise InvalidRequest(f"Could not fetch a media URL: the server answered HTTP "
                             f"{got.status}.")
    mime = got.content_type.split(";", 1)[0].strip() or "application/octet-stream"
    return mime, base64.b64encode(got.body).decode()


async def inline_remote_media(req: ChatRequest,
                              should_fetch: Callable[[str], bool] = every_url,
                              policy: FetchPolicy = IMAGE_FETCH_POLICY) -> ChatRequest:
    scan = _Scan(should_fetch)
    touched = [any([scan.visit(p) for p in m.content]) for m in req.messages]
    if not scan.urls:
        return req
    ordered = sorted(scan.urls)
    results = await asyncio.gather(*(_load(u, policy) for u in ordered))
    loaded = dict(zip(ordered, results, strict=True))

    def inline(p: object) -> object:
        if not (isinstance(p, (Image, File)) and scan.wanted(p)):
            return p
        mime, data = loaded[p.url]  # type: ignore[index]
        return msgspec.structs.replace(p, mime=mime, data=data, url=None)

    def part(p: Part) -> Part:
        if isinstance(p, ToolResult):
            return msgspec.structs.replace(p, content=[inline(q) for q in p.content])
        return inline(p)  # type: ignore[return-value]

    messages = [Message(role=m.role, name=m.name, content=[part(p) for p in m.content])
                if hit else m for m, hit in zip(req.messages, touched, strict=True)]
    return msgspec.structs.replace(req, messages=messages)
