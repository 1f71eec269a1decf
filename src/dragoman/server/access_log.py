"""One access line per request: ``dragoman.access`` logger, INFO, logfmt.

``status`` (what the client was answered), ``model`` and ``deployment`` (the model the
request named and the deployment that served it, ``-`` when none), ``outcome`` (``ok``,
an error kind, ``client_closed`` or ``internal_error``) and ``duration_ms``. Never a
header, a key or a body: the path is logged without its query string.

Nothing of this runs unless the logger is enabled for INFO: the app checks that once per
request and only then watches ``send`` for the status.
"""

from __future__ import annotations

import logging
import time

from ..router.usage import logfmt_value
from .accounting import RequestMeter
from .http import Message, Scope, Send

log = logging.getLogger("dragoman.access")

#: where a request's ``AccessLine`` rides in the ASGI scope, for the handlers to fill in
SCOPE_KEY = "dragoman.access"


class AccessLine:
    __slots__ = ("_start", "meter", "method", "model", "outcome", "path", "status")

    def __init__(self, scope: Scope) -> None:
        self._start = time.perf_counter()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.status = 0
        self.model = "-"
        self.outcome = "ok"
        #: a generation's meter: the deployment that served it and its outcome
        self.meter: RequestMeter | None = None

    def watch(self, send: Send) -> Send:
        """``send``, noting the status the client is answered with."""
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            await send(message)

        return watched

    def emit(self) -> None:
        meter = self.meter
        deployment = "-"
        outcome = self.outcome
        if meter is not None:
            deployment = meter.deployment or "-"
            if outcome == "ok":
                outcome = meter.outcome
        status = self.status or "-"  # (none: the client left before any answer)
        log.info("access method=%s path=%s status=%s model=%s deployment=%s outcome=%s "
                 "duration_ms=%.1f", self.method, logfmt_value(self.path[:200]), status,
                 logfmt_value(self.model[:200]), logfmt_value(deployment), outcome,
                 (time.perf_counter() - self._start) * 1000)

