"""``Gateway``: what a program builds and serves — the gateway's state (``state.py``) and
the ASGI application that answers with it."""

from __future__ import annotations

from .app import App
from .state import DEFAULT_MAX_BODY, GatewayState, normalize_prefix

__all__ = ["DEFAULT_MAX_BODY", "Gateway", "normalize_prefix"]


class Gateway(GatewayState):
    """The model table, stores and settings one server process answers with (see
    ``GatewayState``), and ``app()``: the ASGI application serving them."""

    def app(self) -> App:
        """The ASGI application (one per process; it starts and stops this gateway on the
        ASGI lifespan events)."""
        return App(self)
