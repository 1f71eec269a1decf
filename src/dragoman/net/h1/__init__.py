"""A small HTTP/1.1 client: keep-alive connections to one origin, parsed by httptools.

Why not aiohttp's client for the upstream hop: measured on the bench machine, one
sequential request through ``aiohttp.ClientSession`` costs ~140 µs of CPU; the same
exchange on an ``asyncio.Protocol`` with httptools' parser costs ~36 µs, and this module
~45 µs (bench/README.md, "Own upstream HTTP client"). A gateway makes one such request per
client request, so that was most of what it added. aiohttp's client does much that an
upstream hop never needs (cookies, redirects, proxies, tracing, multipart payloads); what
it does need is here:

* one origin per pool (scheme, host, port or a Unix socket), TLS with a caller-supplied
  context, a connection limit with a FIFO of waiters, idle connections reused newest first
  and closed after ``KEEPALIVE`` seconds; host names resolved once per ``DNS_TTL`` and
  their addresses raced Happy-Eyeballs style (``aiohappyeyeballs``, as aiohttp does);
* request heads built once with CR/LF/NUL refused (no header injection), bodies sent with
  ``Content-Length`` and write back-pressure;
* responses framed by httptools (Content-Length, chunked, or read-until-close), interim 1xx
  answers skipped, gzip/deflate bodies inflated, headers as a case-insensitive multidict
  built only when asked for;
* read back-pressure: past ``HIGH_WATER`` buffered bytes the socket stops being read until
  the consumer catches up, so a slow client never makes the gateway buffer a whole stream;
* timeouts (first byte, idle between body reads, total) checked by one watchdog timer
  per pool, not a timer per exchange;
* a response released before its end is drained (``DRAIN_*``) and its connection reused:
  a stream's consumer stops at the terminal event, before the upstream's last bytes;
* a reused connection that the server closed before answering is retried once on a new
  one for idempotent methods only (RFC 9112 §9.3.1), as aiohttp does.

Failures surface as ``H1Error`` (transport) or ``H1Timeout``; ``net.http`` turns them into
the core error kinds with messages that say which phase failed.

Modules: ``wire`` (request heads, response head fields, inflating, errors),
``connection`` (one connection and its exchange), ``pool`` (connections to one origin).
"""

from .connection import DRAIN_BYTES, DRAIN_SECONDS, HIGH_WATER, MAX_HEAD, MAX_INFLATED, Connection
from .pool import DNS_TTL, HAPPY_EYEBALLS_DELAY, KEEPALIVE, Origin, Pool, default_tls
from .wire import (
    IDEMPOTENT,
    H1Error,
    H1Timeout,
    Headers,
    StaleConnection,
    headers_of,
    request_head,
    split_head,
)

__all__ = ["DNS_TTL", "DRAIN_BYTES", "DRAIN_SECONDS", "HAPPY_EYEBALLS_DELAY", "HIGH_WATER",
           "IDEMPOTENT", "KEEPALIVE", "MAX_HEAD", "MAX_INFLATED", "Connection", "H1Error",
           "H1Timeout", "Headers", "Origin", "Pool", "StaleConnection", "default_tls", "headers_of",
           "request_head", "split_head"]
