"""web_fetch: GET a public URL through dragoman's SSRF-safe fetcher, as text.

Every guarantee comes from ``dragoman.net.fetch``: loopback, private, link-local and
metadata addresses are refused (each redirect re-checked), size and time are capped.
``allow_hosts`` exempts named hosts from the address checks (an intranet wiki, a test
server). HTML is reduced to its readable text.
"""

from __future__ import annotations

import html.parser
import re
from typing import Any

import msgspec

from ...core import DragomanError
from ...net import fetch as net_fetch
from ..tools import ToolError
from .files import _schema, _str_arg

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml",
              "application/rss+xml", "application/atom+xml", "application/javascript",
              "application/x-yaml", "application/yaml")


class WebFetchOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_bytes: int = 5 * 1024 * 1024
    max_chars: int = 50_000
    timeout: float = 15.0
    max_redirects: int = 5
    allow_hosts: list[str] = msgspec.field(default_factory=list)


_BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                    "section", "article", "header", "footer", "pre", "table", "ul", "ol",
                    "blockquote", "hr", "title", "dt", "dd"})
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})


class _TextOf(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    p = _TextOf()
    p.feed(markup)
    p.close()
    body = "".join(p.parts)
    body = re.sub(r"[ \t\r\f\v]+", " ", body)
    body = re.sub(r"\s*\n\s*", "\n", body).strip()
    title = " ".join(p.title.split())
    return f"# {title}\n\n{body}" if title else body


class WebFetch:
    name = "web_fetch"
    description = ("Fetch a public http(s) URL and return its content as text (HTML is "
                   "reduced to its readable text).")
    parameters = _schema({"url": {"type": "string", "description": "An http(s) URL."}},
                         ["url"])

    def __init__(self, options: WebFetchOptions | None = None) -> None:
        self.opts = options or WebFetchOptions()
        self.policy = net_fetch.FetchPolicy(
            max_bytes=self.opts.max_bytes, timeout=self.opts.timeout,
            max_redirects=self.opts.max_redirects, allowed_content_types=TEXT_TYPES,
            allow_hosts=frozenset(h.lower() for h in self.opts.allow_hosts))

    async def run(self, args: dict[str, Any]) -> str:
        url = _str_arg(args, "url").strip()
        try:
            res = await net_fetch.fetch(url, self.policy)
        except DragomanError as e:
            raise ToolError(f"cannot fetch {url[:200]}: {e.message}") from None
        except NotImplementedError:
            raise ToolError("web_fetch is not available in this build") from None
        text = res.body.decode("utf-8", "replace")
        if "html" in res.content_type:
            text = html_to_text(text)
        cap = self.opts.max_chars
        if len(text) > cap:
            text = text[:cap] + f"\n[truncated: {len(text)} characters, the first {cap} shown]"
        head = f"URL: {res.url}\nStatus: {res.status}\nContent-Type: {res.content_type}\n\n"
        if res.status >= 400:
            raise ToolError(head + text)
        return head + text
