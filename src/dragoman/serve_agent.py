"""``serve_openai``: serve one orchestrator (or any provider) as the only model of a gateway.

    orch = dragoman.SingleAgent(provider=dragoman.providers.Anthropic(model="…", api_key="…"))
    await dragoman.serve_openai(orchestrator=orch, bind="0.0.0.0:8080",
                                auth=dragoman.auth.StaticTokens({"sk-…": dragoman.Principal(
                                    tenant_id="acme")}))

Despite the name it answers all three ingress dialects (Chat Completions, Responses,
Messages). The orchestrator is listed in ``/v1/models`` under its ``name`` and answers
whatever model name a client sends (Codex and Claude Code send their own).
"""

from __future__ import annotations

from .auth import AuthResolver
from .providers.base import LlmProvider
from .router import Deployment, ModelTable
from .server import Gateway
from .server.agent_events import EventStyle
from .server.gateway import DEFAULT_MAX_BODY


def parse_bind(bind: str) -> tuple[str, int]:
    """``"host:port"``, ``"[::1]:port"`` or ``":port"`` → (host, port)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind must be 'host:port', got {bind!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def orchestrator_gateway(orchestrator: LlmProvider, *, auth: AuthResolver | None = None,
                         name: str | None = None,
                         max_body_bytes: int = DEFAULT_MAX_BODY,
                         agents_events: EventStyle = "dragoman") -> Gateway:
    """A gateway whose one model is ``orchestrator`` (listed as ``name``, default its own
    ``name``; any other requested name reaches it too). ``agents_events="tako"`` names
    the agent events as tako does."""
    listed = name or getattr(orchestrator, "name", None) or "agent"
    table = ModelTable([Deployment(listed, orchestrator, owned_by="dragoman-agent"),
                        Deployment("*", orchestrator, owned_by="dragoman-agent")])
    return Gateway(table, auth=auth, max_body_bytes=max_body_bytes,
                   agents_events=agents_events)


async def serve_openai(orchestrator: LlmProvider, *, bind: str = "127.0.0.1:8080",
                       auth: AuthResolver | None = None, name: str | None = None,
                       max_body_bytes: int = DEFAULT_MAX_BODY,
                       agents_events: EventStyle = "dragoman") -> None:
    """Serve ``orchestrator`` on ``bind`` in the running event loop until cancelled. With
    ``auth`` None every caller is accepted (development)."""
    from . import serve

    host, port = parse_bind(bind)
    gw = orchestrator_gateway(orchestrator, auth=auth, name=name, max_body_bytes=max_body_bytes,
                              agents_events=agents_events)
    try:
        await serve(gw, host=host, port=port)
    finally:
        await gw.aclose()
