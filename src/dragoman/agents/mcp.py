"""MCP servers as tool sources (the official ``mcp`` SDK).

```yaml
mcp_servers:
  - {name: notes, kind: stdio, command: python3, args: [notes_server.py]}
  - {name: search, kind: http, url: "https://mcp.example/mcp",
     headers: {Authorization: "Bearer ${TOKEN}"}}
```

Each thread gets its own connection to each server (``McpHub``): a stdio server is a
process started inside the thread's sandbox with the workspace as its cwd, so what it
writes lands in the thread's workspace and nowhere else; an http server is a streamable
HTTP session. Connections are reused across the thread's turns and closed after ``idle``
seconds without use, when the thread's workspace is gone, or at shutdown; a request
without a thread key gets connections for that request only.

Tools come from ``tools/list`` (all pages), listed again after the server sends
``notifications/tools/list_changed``. A tool keeps its own name unless another tool of the
agent (a built-in, another server's) has it; then every claimant from a server is named
``server__tool``. A call has a timeout (``timeout``, seconds); its result maps to the
tool result: text parts joined, images passed as images, ``structuredContent`` as JSON
text when the server gave no text, and ``isError`` as an error result.

A connection lives in a task of its own: the SDK's transports are anyio task groups,
which must be entered and left by one task, while calls come from requests' tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec

from ..core import Image, UpstreamError
from .egress import guard_network
from .sandbox import SandboxPolicy
from .tools import ToolError, ToolOutput
from .workspaces import ThreadWorkspace

log = logging.getLogger("dragoman.agents.mcp")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SEPARATOR = "__"


class McpServerSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: str
    kind: Literal["stdio", "http"]
    command: str | None = None
    args: list[str] = msgspec.field(default_factory=list)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: float = 60.0
    """Seconds per tool call."""
    connect_timeout: float = 60.0
    """Seconds to start the server and initialize the session (a Python server's imports
    alone take seconds on a busy machine)."""
    idle: float = 600.0
    """Seconds without a call after which the thread's connection is closed."""

    def __repr__(self) -> str:  # env and headers may hold secrets
        return f"McpServerSpec(name={self.name!r}, kind={self.kind!r})"

    def check(self) -> str | None:
        """What is wrong with the entry, or None."""
        if not self.name or SEPARATOR in self.name:
            return f"an MCP server name must be non-empty and without {SEPARATOR!r}"
        if self.kind == "stdio" and not self.command:
            return "a stdio MCP server needs `command`"
        if self.kind == "http" and not (self.url and self.url.startswith(("http://",
                                                                           "https://"))):
            return "an http MCP server needs an http(s) `url`"
        return None


Transport = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


class McpConnection:
    """One live session with one server (see the module docstring)."""

    def __init__(self, spec: McpServerSpec, transport: Transport, home: str) -> None:
        self.spec = spec
        self.home = home
        self._transport = transport
        self._session: Any = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tools: list[Any] | None = None
        self.last_used = time.monotonic()

    @property
    def alive(self) -> bool:
        return (self._task is not None and not self._task.done()
                and os.path.isdir(self.home))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.spec.name}")
        try:
            async with asyncio.timeout(self.spec.connect_timeout):
                await asyncio.shield(self._ready)
        except BaseException:
            await self.close()
            raise

    async def _run(self) -> None:
        from mcp import ClientSession

        try:
            async with self._transport() as streams, ClientSession(
                    streams[0], streams[1], message_handler=self._on_message) as session:
                await session.initialize()
                self._session = session
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e if isinstance(e, Exception) else
                                          RuntimeError("the connection was cancelled"))
            elif not isinstance(e, asyncio.CancelledError):
                log.warning("MCP server %s: connection ended: %s", self.spec.name, e)
        finally:
            self._session = None

    async def _on_message(self, message: Any) -> None:
        import mcp_types

        root = getattr(message, "root", message)
        if isinstance(root, mcp_types.ToolListChangedNotification):
            self._tools = None  # listed again before the next request uses them

    async def list_tools(self) -> list[Any]:
        if self._tools is None:
            session = self._live()
            tools: list[Any] = []
            cursor: str | None = None
            while True:
                import mcp_types

                params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
            self._tools = tools
        return self._tools

    def _live(self) -> Any:
        if self._session is None:
            raise ToolError(f"MCP server {self.spec.name!r} is not connected")
        return self._session

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        self.last_used = time.monotonic()
        session = self._live()
        try:
            async with asyncio.timeout(self.spec.timeout):
                return await session.call_tool(name, args)
        except TimeoutError:
            raise ToolError(f"MCP tool {name!r} of server {self.spec.name!r} timed out "
                            f"after {self.spec.timeout:g} s") from None
        finally:
            self.last_used = time.monotonic()

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(10):
                await asyncio.shield(task)
        except (TimeoutError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def map_result(result: Any) -> str | ToolOutput:
    """A ``CallToolResult`` → the tool result (``ToolError`` when ``isError``)."""
    texts: list[str] = []
    images: list[Image] = []
    for part in result.content or ():
        kind = getattr(part, "type", None)
        if kind == "text":
            texts.append(part.text)
        elif kind == "image":
            images.append(Image(mime=part.mime_type, data=part.data))
        elif kind == "resource_link":
            texts.append(f"[resource {part.uri}]")
        elif kind == "resource":
            inner = part.resource
            texts.append(getattr(inner, "text", None) or f"[resource {inner.uri}]")
        else:
            texts.append(f"[{kind} content]")
    if not texts and result.structured_content is not None:
        texts.append(msgspec.json.encode(result.structured_content).decode())
    text = "\n".join(texts)
    if result.is_error:
        raise ToolError(text or "the MCP tool reported an error")
    return ToolOutput(text=text, images=images) if images else text


class McpTool:
    """One MCP tool as an agent tool; ``name`` is what the model sees."""

    def __init__(self, conn: McpConnection, tool: Any, name: str) -> None:
        self.conn = conn
        self.remote = tool.name
        self.name = name
        self.description = tool.description or tool.title or tool.name
        self.parameters: dict[str, Any] = dict(tool.input_schema or {"type": "object"})

    def __repr__(self) -> str:
        return f"McpTool({self.conn.spec.name}:{self.remote})"

    async def run(self, args: dict[str, Any]) -> str | ToolOutput:
        return map_result(await self.conn.call(self.remote, args))


class McpHub:
    """The MCP servers of one agent, with a connection per (tenant, thread, server)."""

    def __init__(self, specs: list[McpServerSpec], policy: SandboxPolicy | None) -> None:
        self.specs = specs
        self.policy = policy
        self._conns: dict[tuple[str, str, str], McpConnection] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"McpHub({[s.name for s in self.specs]!r})"

    def _transport(self, spec: McpServerSpec, ws: ThreadWorkspace) -> Transport:
        if spec.kind == "http":
            assert spec.url is not None
            url, headers = spec.url, dict(spec.headers)

            @contextlib.asynccontextmanager
            async def http() -> AsyncIterator[Any]:
                from mcp.client.streamable_http import streamable_http_client
                from mcp.shared._httpx_utils import create_mcp_http_client

                async with create_mcp_http_client(headers=headers) as client, \
                        streamable_http_client(url, http_client=client) as streams:
                    yield streams
            return http
        from mcp.client.stdio import StdioServerParameters, stdio_client

        assert spec.command is not None
        argv = [spec.command, *spec.args]
        home = str(ws.root)
        if self.policy is not None:
            home = self.policy.home(ws.root)
            argv = self.policy.command(argv, ws.root, owner=ws.owner, file_bytes=ws.max_bytes)
        # The SDK adds HOME, PATH, USER… of the server's environment: override them all.
        env = {"PATH": DEFAULT_PATH, "HOME": home, "USER": "agent", "LOGNAME": "agent",
               "SHELL": "/bin/sh", "TERM": "dumb", "LANG": "C.UTF-8", **spec.env}
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=env,
                                       cwd=str(ws.root))
        return lambda: stdio_client(params)

    async def _connection(self, key: tuple[str, str, str], spec: McpServerSpec,
                          ws: ThreadWorkspace) -> McpConnection:
        conn = self._conns.get(key)
        if conn is not None and conn.alive:
            return conn
        if spec.kind == "stdio":
            await guard_network(self.policy)
        conn = McpConnection(spec, self._transport(spec, ws), str(ws.root))
        try:
            await conn.start()
        except Exception as e:
            cause: BaseException = e
            while isinstance(cause, BaseExceptionGroup) and cause.exceptions:  # anyio
                cause = cause.exceptions[0]
            raise UpstreamError(f"MCP server {spec.name!r} did not start: "
                                f"{type(cause).__name__}: {str(cause)[:300]}") from None
        self._conns[key] = conn
        return conn

    async def tools(self, tenant: str, thread: str | None, ws: ThreadWorkspace,
                    taken: set[str], stack: contextlib.AsyncExitStack) -> list[McpTool]:
        """The thread's MCP tools (connecting on first use); ``taken``: the names of the
        agent's other tools. A request without a thread closes its connections on
        leaving ``stack``."""
        await self._sweep()
        thread_key = thread if thread is not None else f"request:{id(stack)}"
        listed: list[tuple[McpConnection, Any]] = []
        async with self._lock:
            for spec in self.specs:
                key = (tenant, thread_key, spec.name)
                conn = await self._connection(key, spec, ws)
                conn.last_used = time.monotonic()
                if thread is None:
                    stack.push_async_callback(self._drop, key)
                listed += [(conn, t) for t in await conn.list_tools()]
        counts: dict[str, int] = {}
        for name in (*taken, *(t.name for _, t in listed)):
            counts[name] = counts.get(name, 0) + 1
        return [McpTool(conn, t, t.name if counts[t.name] == 1
                        else f"{conn.spec.name}{SEPARATOR}{t.name}") for conn, t in listed]

    async def _drop(self, key: tuple[str, str, str]) -> None:
        conn = self._conns.pop(key, None)
        if conn is not None:
            await conn.close()

    async def _sweep(self) -> None:
        """Close connections idle too long, or whose thread's workspace is gone."""
        now = time.monotonic()
        stale = [k for k, c in self._conns.items()
                 if not c.alive or now - c.last_used > c.spec.idle]
        for key in stale:
            await self._drop(key)

    async def aclose(self) -> None:
        for key in list(self._conns):
            await self._drop(key)


def check_specs(specs: list[McpServerSpec]) -> str | None:
    names = [s.name for s in specs]
    for s in specs:
        problem = s.check()
        if problem is not None:
            return f"{s.name!r}: {problem}"
    if len(set(names)) != len(names):
        return "two MCP servers have one name"
    return None


__all__ = ["McpConnection", "McpHub", "McpServerSpec", "McpTool", "check_specs", "map_result"]
