"""One pooled HTTP client per upstream, with the timeouts a streaming gateway needs and
every transport failure classified into a core error kind.

aiohttp rather than httpx: measured here (../shared/bench-notes.md, bench/README.md),
httpx's pool degrades badly at 64 concurrent requests while aiohttp stays near the bare
relay ceiling.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from ..core import TransportError, UpstreamTimeout


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``connect``: TCP+TLS set-up; ``first_byte``: until response headers arrive;
    ``idle``: longest silence between two body chunks of a stream; ``total``: the whole
    exchange, body or stream included (None: no limit)."""

    connect: float = 10.0
    first_byte: float = 600.0
    idle: float = 300.0
    total: float | None = None


class UpstreamResponse:
    """An open upstream response: status, headers, and the body as bytes or chunks."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except TimeoutError:
            raise UpstreamTimeout("upstream went silent while sending the body") from None
        except aiohttp.ClientError as e:
            raise TransportError(f"upstream connection failed: {type(e).__name__}") from None

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeout("upstream stream went idle or ran past its total time "
                                  "limit") from None
        except aiohttp.ClientError as e:
            raise TransportError(f"upstream stream broke: {type(e).__name__}") from None

    def release(self) -> None:
        """Body fully read: hand the connection back to the pool."""
        self._resp.release()

    def close(self) -> None:
        """Abandon the response: the connection is closed, which stops the upstream."""
        self._resp.close()


#: Connections one upstream pool may hold. LLM streams are long; a pool smaller than the
#: number of concurrent streams makes the rest queue before their first byte.
DEFAULT_POOL = 1024


class HttpClient:
    """A keep-alive connection pool to one upstream base URL."""

    def __init__(self, base_url: str, *, timeouts: Timeouts | None = None,
                 limit: int = DEFAULT_POOL, unix_socket: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context`` replaces the default TLS settings (a private CA, a client
        certificate for mTLS: see ``net.tls``)."""
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts or Timeouts()
        self._limit = limit
        self._unix_socket = unix_socket
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: an aiohttp session belongs to the running event loop.
        s = self._session
        if s is None or s.closed:
            connector: aiohttp.BaseConnector
            if self._unix_socket:
                connector = aiohttp.UnixConnector(path=self._unix_socket, limit=self._limit)
            else:
                connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit,
                                                 ttl_dns_cache=300, enable_cleanup_closed=True,
                                                 ssl=self._ssl if self._ssl is not None else True)
            s = self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeouts.total,
                                              connect=self.timeouts.connect,
                                              sock_read=self.timeouts.idle),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return s

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None,
                      encoded: bool = False) -> UpstreamResponse:
        """``encoded=True``: the path is already percent-encoded and goes out byte for byte
        (a signed request must send exactly the path it signed)."""
        url: str | URL = path if path.startswith(("http://", "https://")) else self.base_url + path
        if encoded:
            url = URL(url, encoded=True)
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                resp = await self._get_session().request(method, url, data=body,
                                                         headers=headers)
        except TimeoutError:
            raise UpstreamTimeout("upstream did not answer in time") from None
        except aiohttp.ClientError as e:
            raise TransportError(f"cannot reach upstream: {type(e).__name__}") from None
        return UpstreamResponse(resp)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
