"""What each server worker process imports: the app, built from ``$DRAGOMAN_CONFIG``.

``dragoman serve`` (``server.runner.run``) names ``create_app`` to uvicorn or granian as
an import string, so every worker builds its own gateway. It lives here, beside
``config``, because building a gateway from a config file is the config layer's work:
``server/`` does not import ``config``.
"""

from __future__ import annotations

import os
from typing import Any

from .config import build_gateway, load_config
from .server.runner import settle_heap


def create_app() -> Any:
    """Factory the server workers call: builds the gateway from ``$DRAGOMAN_CONFIG``."""
    app = build_gateway(load_config(os.environ.get("DRAGOMAN_CONFIG"))).app()
    settle_heap()
    return app
