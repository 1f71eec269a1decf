"""What travels with a request but is not part of it: who asked, and what the server learnt
about the call that no wire format carries.

The neutral ``ChatRequest`` is what the client asked for, exactly as parsed; a
``RequestContext`` rides beside it (``provider.stream(req, ctx)``) from the server through
the router and agents to the providers. Keeping the two apart means the server never
writes into a parsed request, so a request can be shared, cached or compared as the
client sent it, and the context is built once per request (one small frozen struct) —
not copied into the request with ``msgspec.structs.replace``.

Code that calls a provider or an agent in-process, without a server, passes nothing: the
default ``NO_CONTEXT`` is the anonymous caller (tenant ``""``), no thread, no headers.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from .spans import RequestSpan


class RequestContext(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The request's caller and circumstances, set by the server (never parsed from or
    rendered to a wire format).

    - ``tenant``: the authenticated caller's tenant. State kept across requests is scoped
      by it: an agent's hidden part of a turn (``dragoman.agents.turns``), its workspaces
      and tool servers. ``""`` is the in-process caller.
    - ``subject``: who within the tenant (the principal's subject), when known.
    - ``thread``: the request's thread key (header or ``metadata``), when it has one: an
      agent keeps a workspace and tool servers per (tenant, thread).
    - ``forward_headers``: client headers meant for a same-family upstream
      (``anthropic-beta``…), forwarded by the providers that know them.
    - ``span``: the request's trace span (``core.spans.RequestSpan``) when tracing is on.
      New spans find their parent through the running task; this is for code that wants
      to annotate the request's own span.
    """

    tenant: str = ""
    subject: str | None = None
    thread: str | None = None
    forward_headers: Mapping[str, str] | None = None
    span: RequestSpan | None = None


#: The context of a call made in-process, without a server: the anonymous caller.
NO_CONTEXT = RequestContext()
