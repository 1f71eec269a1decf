"""The live dashboard at ``/ui``: one static page (plain HTML and JS, uPlot vendored under
``server/ui/`` with its license; no build step, nothing fetched from the internet).

How the admin key gets there: a browser cannot send ``Authorization`` when it navigates,
so ``GET /ui`` without an admin key answers 401 with the page itself, which then shows
only a form for the key. The key is kept in ``sessionStorage`` (this tab only, gone when
it closes) and every data request the page makes (``/admin/*``) sends it as ``Bearer``.
That was chosen over ``/ui?key=…``: a key in a URL ends up in browser history, server
and proxy access logs and ``Referer`` headers. The page holds no data of its own; the
static files (``/ui/<file>``) are public code. Strict headers keep a script injection
from reading the key: no inline script (CSP ``script-src 'self'``), no framing, no
referrer, no caching of the page.
"""

from __future__ import annotations

from importlib import resources

from ..auth import Principal
from ..auth.errors import AuthError
from ..core import NotFound
from .http import Receive, Scope, Send, send_bytes
from .state import GatewayState

_ASSETS = {
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
    "uPlot.iife.min.js": b"text/javascript; charset=utf-8",
    "uPlot.min.css": b"text/css; charset=utf-8",
    "uPlot.LICENSE": b"text/plain; charset=utf-8",
}

_SECURITY = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     b"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files(__package__).joinpath("ui", name).read_bytes()
    return data


async def page(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
               send: Send, params: list[str]) -> None:
    """The dashboard: 200 with an admin key, else 401 with the same page (its key form)."""
    status = 200
    try:
        await gw.admin.check(scope)
    except AuthError:
        status = 401
    await send_bytes(send, status, _read("index.html"), b"text/html; charset=utf-8",
                     [*_SECURITY, (b"cache-control", b"no-store")])


async def asset(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                send: Send, params: list[str]) -> None:
    name = params[0]
    kind = _ASSETS.get(name)
    if kind is None:
        raise NotFound(f"No dashboard file '{name[:80]}'.", code="unknown_url")
    await send_bytes(send, 200, _read(name), kind,
                     [*_SECURITY, (b"cache-control", b"public, max-age=3600")])
