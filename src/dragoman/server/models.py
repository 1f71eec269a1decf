"""``GET /v1/models`` and ``/v1/models/{id}``: one path, two API families. Anthropic
clients always send ``anthropic-version``; they get the Anthropic list shape, everyone
else the OpenAI one."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from ..auth import Principal
from ..router import Route, unknown_model
from .http import Receive, Scope, Send, header, send_json
from .state import GatewayState

_encode = msgspec.json.Encoder().encode


def _openai(d: Route, name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": d.created, "owned_by": d.owned_by}


def _anthropic(d: Route, name: str) -> dict[str, Any]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d.created))
    return {"type": "model", "id": name, "display_name": name, "created_at": created}


def _is_anthropic(scope: Scope) -> bool:
    return header(scope, b"anthropic-version") is not None


async def list_models(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                      send: Send, params: list[str]) -> None:
    # A principal limited to some models sees only those.
    listed = [d for d in gw.models.listed() if principal.may_use(d.name)]
    if _is_anthropic(scope):
        data = [_anthropic(d, d.name) for d in listed]
        body: dict[str, Any] = {"data": data, "has_more": False,
                                "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None}
    else:
        body = {"object": "list", "data": [_openai(d, d.name) for d in listed]}
    await send_json(send, _encode(body))


async def get_model(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                    send: Send, params: list[str]) -> None:
    name = params[0]
    if not principal.may_use(name):  # as absent as in the list (no probing for names)
        raise unknown_model(name)
    d = gw.models.resolve(name)
    render = _anthropic if _is_anthropic(scope) else _openai
    await send_json(send, _encode(render(d, name)))
