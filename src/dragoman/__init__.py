"""dragoman: an LLM gateway and agent runtime.

The public surface is small: ``Gateway`` (a model table and settings, served as an ASGI
app), ``serve`` (run one in the current event loop), ``load_config``/``build_gateway``
(the YAML route), ``SingleAgent``, ``Conductor``, ``Trinity``, ``SelfCaller``, ``AbMcts``
and ``serve_openai`` (an orchestrator served as a model; ``dragoman.verifiers``,
``dragoman.guards`` and ``dragoman.routers`` for them), the neutral request builders
``ChatRequest``/``Message``/``ContentPart``/``Role``, and the packages
``dragoman.core`` (neutral model), ``dragoman.providers`` (upstream
adapters) and ``dragoman.agents`` (tools and orchestrators).
"""

from __future__ import annotations

from typing import Any

from . import guards, routers, verifiers
from .agents import AbMcts, Conductor, SelfCaller, SingleAgent, Trinity
from .auth import Principal
from .config import build_gateway, load_config
from .core import ChatRequest, Message
from .core.build import ContentPart, Role
from .router import Deployment, ModelTable
from .serve_agent import serve_openai
from .server import Gateway

__version__ = "0.1.0"


async def serve(gateway: Gateway, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``gateway`` on ``host:port`` inside the running event loop until cancelled."""
    from .server.runner import serve as _serve

    app: Any = gateway.app()
    await _serve(app, host=host, port=port)


__all__ = ["ChatRequest", "ContentPart", "Deployment", "Gateway", "Message", "ModelTable",
           "Principal", "Role", "SingleAgent", "__version__", "build_gateway", "load_config",
           "serve", "serve_openai"]
__all__ += ["AbMcts", "Conductor", "SelfCaller", "Trinity", "guards", "routers", "verifiers"]
