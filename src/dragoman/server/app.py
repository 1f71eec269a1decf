"""The ASGI application: routing, authentication, and errors in the caller's dialect.

A plain ASGI callable with a dict router: no framework sits on the hot path, and every
route answers in the envelope of the API it belongs to.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec

from ..auth import Principal
from ..core import DragomanError, InvalidRequest, NotFound, UpstreamError, validate_request
from ..core.estimate import estimate_request
from ..dialects import anthropic_messages, openai_chat, openai_responses
from ..dialects.contract import Dialect
from . import access_log
from . import admin as admin_routes
from . import models as model_routes
from . import responses as response_routes
from . import ui as ui_routes
from .generate import generate
from .http import (
    ClientGone,
    Receive,
    Scope,
    Send,
    authenticate,
    header,
    parse_json,
    read_body,
    send_error,
    send_json,
)
from .state import GatewayState

log = logging.getLogger("dragoman.server")
_encode = msgspec.json.Encoder().encode

CHAT = openai_chat.DIALECT
RESPONSES = openai_responses.DIALECT
MESSAGES = anthropic_messages.DIALECT

Handler = Callable[[GatewayState, Principal, Scope, Receive, Send, list[str]], Awaitable[None]]


def _generation(dialect: Dialect) -> Handler:
    async def handler(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                      send: Send, params: list[str]) -> None:
        body = parse_json(await read_body(receive, scope, gw.max_body_bytes))
        await generate(gw, dialect, principal, body, scope, receive, send)

    return handler


async def _count_tokens(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                        send: Send, params: list[str]) -> None:
    body = parse_json(await read_body(receive, scope, gw.max_body_bytes))
    req = anthropic_messages.parse_count_tokens_request(body)
    validate_request(req)
    provider = gw.model_choice.route(gw.models, principal, req).provider
    n = await provider.count_tokens(req)
    if n is None:
        n = estimate_request(req)
    await send_json(send, anthropic_messages.render_count_tokens(n))


async def _health(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                  send: Send, params: list[str]) -> None:
    await send_json(send, b'{"status":"ok"}')


async def _ready(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                 send: Send, params: list[str]) -> None:
    """Ready for traffic: stores reachable and some deployment not behind an open breaker
    (503 otherwise, so a load balancer sends the traffic elsewhere). A request that
    carries a key gets the detailed view once the key is valid (401 otherwise)."""
    credentials = header(scope, b"authorization") or header(scope, b"x-api-key")
    report = await gw.readiness(await authenticate(gw.auth, scope) if credentials else None)
    await send_json(send, _encode(report), 200 if report["status"] == "ready" else 503)


Routes = dict[str, tuple[Handler, Dialect, bool]]

#: what a path outside ``path_prefix`` is routed as: no route has a NUL, so an unknown URL
_OUTSIDE_PREFIX = "/\0"

#: (method, path segments after /v1) → (handler, dialect for errors, needs auth)
_ROUTES: dict[tuple[str, ...], Routes] = {
    ("chat", "completions"): {"POST": (_generation(CHAT), CHAT, True)},
    ("responses",): {"POST": (_generation(RESPONSES), RESPONSES, True)},
    ("responses", "*"): {"GET": (response_routes.get, RESPONSES, True),
                         "DELETE": (response_routes.delete, RESPONSES, True)},
    ("responses", "*", "input_items"): {"GET": (response_routes.input_items, RESPONSES, True)},
    ("messages",): {"POST": (_generation(MESSAGES), MESSAGES, True)},
    ("messages", "count_tokens"): {"POST": (_count_tokens, MESSAGES, True)},
    ("models",): {"GET": (model_routes.list_models, CHAT, True)},
    ("models", "*"): {"GET": (model_routes.get_model, CHAT, True)},
    ("healthz",): {"GET": (_health, CHAT, False)},
    ("readyz",): {"GET": (_ready, CHAT, False)},
    # The operator's routes check the admin key themselves (server/admin_auth.py).
    ("metrics",): {"GET": (admin_routes.metrics, CHAT, False)},
    ("admin", "usage"): {"GET": (admin_routes.usage, CHAT, False)},
    ("admin", "deployments"): {"GET": (admin_routes.deployments, CHAT, False)},
    ("admin", "series"): {"GET": (admin_routes.series_route, CHAT, False)},
    ("admin", "live"): {"GET": (admin_routes.live, CHAT, False)},
    ("ui",): {"GET": (ui_routes.page, CHAT, False)},
    ("ui", "*"): {"GET": (ui_routes.asset, CHAT, False)},
}


def _match(parts: list[str]) -> tuple[Routes | None, list[str]]:
    """Exact routes first, then routes with one ``*`` segment (an id). Model ids may
    contain slashes (``dragoman/echo``), so everything after ``models/`` is the id."""
    if len(parts) > 2 and parts[0] == "models":
        return _ROUTES[("models", "*")], ["/".join(parts[1:])]
    exact = _ROUTES.get(tuple(parts))
    if exact is not None:
        return exact, []
    for i in range(len(parts)):
        hit = _ROUTES.get(tuple("*" if j == i else p for j, p in enumerate(parts)))
        if hit is not None:
            return hit, [parts[i]]
    return None, []


def _split(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    # Clients configured with or without /v1 (or with it twice: Claude Code given a base
    # URL ending in /v1) reach the same routes.
    while parts and parts[0] == "v1":
        parts.pop(0)
    return parts


#: path → (segments, routes, params) of the paths that matched an exact route (a handful:
#: the API's paths with and without /v1), so a request does not split and match again
_ROUTED: dict[str, tuple[list[str], Routes, list[str]]] = {}
_ROUTED_KEPT = 64


def _route(path: str) -> tuple[list[str], Routes | None, list[str]]:
    hit = _ROUTED.get(path)
    if hit is not None:
        return hit
    parts = _split(path)
    routes, params = _match(parts)
    if routes is not None and not params and len(_ROUTED) < _ROUTED_KEPT:
        _ROUTED[path] = (parts, routes, params)
    return parts, routes, params


def _error_dialect(scope: Scope, parts: list[str]) -> Dialect:
    if parts[:1] == ["messages"] or header(scope, b"anthropic-version") is not None:
        return MESSAGES
    if parts[:1] == ["responses"]:
        return RESPONSES
    return CHAT


class App:
    def __init__(self, gateway: GatewayState) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await self.gw.open()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.gw.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        line = None
        if access_log.log.isEnabledFor(logging.INFO):
            line = scope[access_log.SCOPE_KEY] = access_log.AccessLine(scope)
            send = line.watch(send)
        path = scope["path"]
        prefix = self.gw.path_prefix
        if prefix:  # mounted under a prefix: only paths below it are ours
            if path == prefix or path.startswith(prefix + "/"):
                path = path[len(prefix):]
            else:
                path = _OUTSIDE_PREFIX
        parts, routes, params = _route(path)
        # Errors answer in the route's dialect; before a route is found (and for
        # /v1/models, which serves both families), in the one the path and headers say.
        dialect: Dialect | None = None
        try:
            if not parts and method in ("HEAD", "GET"):
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"text/plain"),
                                        (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
            if routes is None:
                raise NotFound(f"Unknown request URL: {method} {scope['path'][:200]}. "
                               "Please check the URL and method.", code="unknown_url")
            entry = routes.get(method)
            if entry is None:
                allowed = ", ".join(sorted(routes))
                raise InvalidRequest(f"Method {method} is not allowed here; use {allowed}.",
                                     status=405, code="method_not_allowed")
            handler, dialect, needs_auth = entry
            if parts[0] == "models":  # /v1/models serves both API families
                dialect = None
            principal = await authenticate(self.gw.auth, scope) if needs_auth else None
            await handler(self.gw, principal, scope, receive, send, params)  # type: ignore[arg-type]
        except DragomanError as err:
            if line is not None:
                line.outcome = err.kind.value
            await send_error(send, dialect or _error_dialect(scope, parts), err)
        except ClientGone:
            if line is not None:
                line.outcome = "client_closed"
            return
        except Exception:
            if line is not None:
                line.outcome = "internal_error"
            log.exception("unhandled error on %s %s", method, scope["path"])
            internal = UpstreamError("The server had an error while processing your request.",
                                     status=500)
            with contextlib.suppress(Exception):
                await send_error(send, dialect or _error_dialect(scope, parts), internal)
        finally:
            if line is not None:
                line.emit()
