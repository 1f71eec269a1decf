"""The session side of one generation request: its thread key, ``previous_response_id``,
a history-holding thread's lease, and recording the turn before it is acknowledged.

Thread keys come from the first non-empty header of ``THREAD_KEY_HEADERS``: an explicit
``x-dragoman-thread-key`` first, then Centaur's ``X-Centaur-Thread-Key`` (the same thing
under Centaur's name), then what clients send on their own (Claude Code's
``X-Claude-Code-Session-Id``, Codex's ``session-id``/``session_id``, ``x-session-id``).
Semantics are in ``dragoman.sessions``.

A request with no thread key that reaches a history-holding model (an agent) starts a
fresh thread ``api:<uuid>`` (as Centaur does) and is told its key in the
``x-dragoman-thread-key`` response header, so it can continue that thread.

The native headers of Claude Code and Codex (``RESENDING_CLIENTS``) come from clients that
resend their whole conversation every turn, and that multiplex unrelated conversations on
one session id (Claude Code's title and sub-agent calls). On a history-holding model such
a request is de-duplicated against the thread but never taken as "only the newest message"
and never waits for the thread: a request that does not extend the stored conversation is
a conversation of its own. The generic keys (``x-dragoman-thread-key``, ``x-session-id``)
let a client send only its newest message; their turns are serialized per thread (409
after ``lock_wait``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..auth import Principal
from ..core import ChatRequest, ChatResponse, InvalidRequest, Message, NotFound
from ..dialects import openai_responses
from ..dialects.contract import Dialect, RenderContext
from ..router import Route
from ..sessions import NewResponse, PreviousResponse, SessionStore, Turn
from .gateway import Gateway
from .http import Scope

RESPONSES = openai_responses.DIALECT.name

THREAD_KEY_HEADERS = (b"x-dragoman-thread-key", b"x-centaur-thread-key",
                      b"x-claude-code-session-id", b"session-id", b"session_id", b"x-session-id")
#: the response header that tells a client the key of the thread started for it
NEW_THREAD_HEADER = b"x-dragoman-thread-key"
_PRIORITY = {name: i for i, name in enumerate(THREAD_KEY_HEADERS)}
RESENDING_CLIENTS = frozenset({b"x-claude-code-session-id", b"session-id", b"session_id"})
MAX_THREAD_KEY = 256


@dataclass(frozen=True, slots=True)
class ThreadKey:
    value: str
    resending: bool
    """Sent by a client known to resend its whole conversation (``RESENDING_CLIENTS``)."""
    fresh: bool = False
    """Minted by the gateway for a request that sent none (``api:<uuid>``)."""


def fresh_thread_key() -> ThreadKey:
    return ThreadKey(f"api:{uuid.uuid4()}", resending=False, fresh=True)


def thread_key(scope: Scope) -> ThreadKey | None:
    """The request's thread key, or None (one pass over the headers). Refuses (400) a key
    that is too long or holds control characters, and a header sent twice (never resolved
    by picking one), naming the header."""
    best: tuple[int, bytes, bytes] | None = None
    seen = 0  # a bit per rank
    for name, raw in scope["headers"]:
        rank = _PRIORITY.get(name)
        if rank is None:
            continue
        if seen >> rank & 1:
            raise InvalidRequest(f"The request carries more than one {name.decode()} header: "
                                 "send exactly one.", param=name.decode(),
                                 code="invalid_thread_key")
        seen |= 1 << rank
        if raw.strip() and (best is None or rank < best[0]):
            best = (rank, name, raw)
    if best is None:
        return None
    _, name, raw = best
    value = raw.decode("latin-1").strip()
    if len(value) > MAX_THREAD_KEY or not value.isprintable():
        raise InvalidRequest(f"The {name.decode()} header must be at most {MAX_THREAD_KEY} "
                             "printable characters.", param=name.decode(),
                             code="invalid_thread_key")
    return ThreadKey(value, name in RESENDING_CLIENTS)


def holds_history(route: Route) -> bool:
    """Whether dragoman, not the client, holds this model's conversation history: set by
    ``hold_history: true`` on a model entry (agents from the config get it), or by a
    provider declaring ``holds_history = True``."""
    return route.hold_history or any(getattr(d.provider, "holds_history", False)
                                     for d in route.deployments)


class Conversation:
    """What one request does with the session store. ``records``: the turn is committed
    (a stored response, or a thread turn); ``needs_events``: the gateway must see the
    neutral request and events (no same-dialect passthrough)."""

    __slots__ = ("client_input", "holds", "key", "previous", "record_thread",
                 "reply_headers", "store", "store_response", "tenant")

    def __init__(self, store: SessionStore, tenant: str, key: str | None,
                 previous: PreviousResponse | None, client_input: list[Message],
                 store_response: bool, holds: bool) -> None:
        self.store = store
        self.tenant = tenant
        self.key = key
        self.previous = previous
        self.client_input = client_input
        self.store_response = store_response
        self.holds = holds
        self.record_thread = key is not None and (holds or store.settings.record_threads)
        #: response headers this conversation adds (the key of a thread started for it)
        self.reply_headers: list[tuple[bytes, bytes]] = []

    @property
    def records(self) -> bool:
        return self.store_response or self.record_thread

    @property
    def needs_events(self) -> bool:
        return self.records or self.previous is not None or self.holds

    async def commit(self, req: ChatRequest, resp: ChatResponse, ctx: RenderContext) -> None:
        """Record the completed turn; returns once it is durable. Called before the
        client is told the response is complete, so a follow-up naming it (or a crash)
        can never come first."""
        resp.id = ctx.id
        response = NewResponse(id=ctx.id, model=req.model, created=ctx.created, request=req,
                               response=resp) if self.store_response else None
        await self.store.commit_turn(Turn(
            tenant=self.tenant, messages=req.messages,
            output=[Message(role="assistant", content=resp.content)],
            input_count=len(self.client_input),
            thread_key=self.key if self.record_thread else None,
            previous=self.previous, response=response))


class _Plain:
    """The common case, a request with no history to resolve and no thread to hold: the
    context is the conversation itself (no generator, no exit stack: this runs on every
    request)."""

    __slots__ = ("conv",)

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv

    async def __aenter__(self) -> Conversation:
        return self.conv

    async def __aexit__(self, *exc: object) -> None:
        return None


def conversation(gw: Gateway, dialect: Dialect, principal: Principal, req: ChatRequest,
                 route: Route, scope: Scope) -> contextlib.AbstractAsyncContextManager[
                     Conversation]:
    """Resolve the request's history into ``req.messages`` (``previous_response_id``, a
    history-holding thread) and hold that thread for the duration of the request."""
    tk = thread_key(scope)
    if tk is None and holds_history(route):
        tk = fresh_thread_key()
    responses = dialect.name == RESPONSES
    if not (responses and req.previous_response_id) and (tk is None or not holds_history(route)):
        return _Plain(Conversation(gw.sessions, principal.tenant_id,
                                   tk.value if tk is not None else None, None, req.messages,
                                   responses and req.store is not False, False))
    return _with_history(gw, dialect, principal, req, route, tk)


@contextlib.asynccontextmanager
async def _with_history(gw: Gateway, dialect: Dialect, principal: Principal,
                        req: ChatRequest, route: Route,
                        tk: ThreadKey | None) -> AsyncIterator[Conversation]:
    store = gw.sessions
    tenant = principal.tenant_id
    key = tk.value if tk is not None else None
    client_input = req.messages
    previous = None
    if dialect.name == RESPONSES and req.previous_response_id:
        previous = await store.previous(tenant, req.previous_response_id)
        if previous is None:
            raise NotFound(f"Previous response with id '{req.previous_response_id[:100]}' "
                           "not found.", param="previous_response_id",
                           code="previous_response_not_found")
        req.messages = previous.messages + client_input
    store_response = dialect.name == RESPONSES and req.store is not False
    if tk is None or not holds_history(route):
        yield Conversation(store, tenant, key, previous, client_input, store_response, False)
        return
    async with contextlib.AsyncExitStack() as stack:
        if not tk.resending:  # the thread is the only copy of the history: one turn at a time
            await stack.enter_async_context(store.hold(tenant, tk.value))
        view = await store.thread_history(tenant, tk.value)
        req.messages = view.continue_with(req.messages, deltas=not tk.resending).messages
        conv = Conversation(store, tenant, key, previous, client_input, store_response, True)
        if tk.fresh:
            conv.reply_headers.append((NEW_THREAD_HEADER, tk.value.encode()))
        yield conv
