"""``GatewayState``: the model table, stores and settings one server process answers with.

The request handlers read it; ``dragoman.server.gateway.Gateway`` adds the ASGI ``app()``
on top, so no handler module imports the module that imports them all (no import circle).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable

from ..auth import AuthResolver, Principal, StaticTokens
from ..router import ModelTable
from ..router.limits import Limiter
from ..router.usage import UsageAccounting
from ..sessions import SessionStore
from ..sessions.memory import MemoryStore
from .admin_auth import AdminKeys
from .agent_events import EventStyle
from .http import Scope, authenticate
from .model_choice import NO_CHOICE, ModelChoice
from .operations import Operations

DEFAULT_MAX_BODY = 32 * 1024 * 1024

log = logging.getLogger("dragoman.server")


def normalize_prefix(prefix: str) -> str:
    """``openai/`` → ``/openai``; ``""`` and ``/`` → ``""`` (no prefix)."""
    stripped = prefix.strip("/")
    if any(c in stripped for c in "?#") or not stripped.isprintable():
        raise ValueError(f"path_prefix must be a URL path, got {prefix!r}")
    return "/" + stripped if stripped else ""


class GatewayState:
    def __init__(self, models: ModelTable, *, auth: AuthResolver | None = None,
                 api_keys: Iterable[str] | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY,
                 sessions: SessionStore | None = None,
                 usage: UsageAccounting | None = None,
                 limiter: Limiter | None = None,
                 model_choice: ModelChoice = NO_CHOICE, path_prefix: str = "",
                 agents_events: EventStyle = "dragoman",
                 admin_keys: Iterable[str] | None = None) -> None:
        """``auth`` resolves every request to a Principal; ``api_keys`` is the shorthand for
        ``StaticTokens(api_keys)``; with neither, every caller is the anonymous tenant.
        ``model_choice``: the default model for requests without (or with an unknown)
        model; ``path_prefix`` (``/openai``): every route is served under it, and only
        there.
        ``admin_keys`` open the operator's routes (``/metrics``, ``/admin/*``, ``/ui``);
        with none, those routes refuse everyone."""
        self.models = models
        keys = list(api_keys or ())
        self.auth: AuthResolver | None = auth or (StaticTokens(keys) if keys else None)
        self.max_body_bytes = max_body_bytes
        #: stored Responses and threads (``dragoman.sessions``); in memory unless given
        self.sessions = sessions or MemoryStore()
        self._purger: asyncio.Task[None] | None = None
        #: called once per finished generation with its usage and cost (budgets, metrics)
        self.usage = usage or UsageAccounting()
        #: rate limits and budgets (``router.limits``); None admits everything
        self.limiter = limiter
        self.model_choice = model_choice
        self.path_prefix = normalize_prefix(path_prefix)
        #: names and payloads of agent events on the wire: ``dragoman.*`` or tako's
        self.agents_events: EventStyle = agents_events
        #: the operator's keys (``server.admin_keys``), separate from client keys
        self.admin = AdminKeys(admin_keys or ())
        #: metrics, the usage ledger writer, the state sampler (``server.operations``)
        self.ops = Operations(models, self.sessions, self.usage, admin=self.admin.configured)

    async def authenticate(self, scope: Scope) -> Principal:
        """The request's caller (``server.http.authenticate``, which the routes call
        directly)."""
        return await authenticate(self.auth, scope)

    async def open(self) -> None:
        """Start-up work (ASGI lifespan): open the session store and, with a TTL, purge
        expired sessions now and then. A store that cannot open yet is retried on use."""
        try:
            await self.sessions.open()
        except Exception as e:
            log.error("session store not available at start-up (retried on use): %s", e)
        if self.sessions.settings.ttl and self._purger is None:
            self._purger = asyncio.create_task(self._purge_expired())
        self.ops.start()

    async def _purge_expired(self) -> None:
        ttl = self.sessions.settings.ttl
        assert ttl
        while True:
            # Every worker purges, at random times: deletes are idempotent and cheap.
            await asyncio.sleep(random.uniform(0.5, 1.5) * min(ttl / 4, 3600))
            try:
                await self.sessions.purge(ttl)
            except Exception:
                log.warning("purging expired sessions failed", exc_info=True)

    async def readiness(self, caller: Principal | None = None) -> dict[str, object]:
        """What ``/readyz`` reports: the session store and the limits store reachable, and
        some deployment not behind an open breaker. Only for an authenticated ``caller``
        are the details named: why a store is unreachable, and per model name the caller
        may use whether one of its deployments is up. Anyone else learns which subsystem
        is down, never a model name."""
        checks: dict[str, object] = {}
        ready = True
        for name, probe in (("sessions", self.sessions.ping),
                            ("limits", self.limiter.store.ping if self.limiter else None)):
            if probe is None:
                continue
            try:
                async with asyncio.timeout(2.0):
                    await probe()
                checks[name] = "ok"
            except Exception as e:
                ready = False
                checks[name] = f"unreachable ({type(e).__name__})" if caller else "unreachable"
        now = time.monotonic()
        models: dict[str, str] = {}
        any_up = False
        for route in self.models.routes():
            up = any(d.health.breaker.available(now) for d in route.deployments)
            any_up = any_up or up
            if caller is not None and caller.may_use(route.name):
                models[route.name] = "ok" if up else "circuit_open"
        ready = ready and any_up
        checks["models"] = models if caller is not None else "ok" if any_up else "circuit_open"
        return {"status": "ready" if ready else "unavailable", "checks": checks}

    async def aclose(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            self._purger = None
        await self.ops.aclose()  # the last ledger rows, while the store is still open
        await self.sessions.aclose()
        for p in self.models.providers():
            await p.aclose()
        if self.limiter is not None:
            await self.limiter.store.aclose()
        close_auth = getattr(self.auth, "aclose", None)  # resolvers with connection pools
        if close_auth is not None:
            await close_auth()
