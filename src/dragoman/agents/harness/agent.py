"""``HarnessAgent``: a coding CLI (Codex, Claude Code) run as an orchestrator.

Each turn runs the real CLI once, in the thread's workspace and sandbox, on the newest user
message; the CLI calls back into this gateway for its model (``model:``, any configured
model or agent), and on later turns resumes its own session, whose id is kept next to the
thread's workspace (outside what the sandbox can write). Its JSON events become the neutral
stream (``events``): assistant text as content, reasoning as thinking, every command, file
change or tool call as ``AgentToolCall``/``AgentToolResult``, usage summed from the CLI's
own report.

The client's system text is appended to the harness's; client tools are refused (the
harness owns its tools) unless ``client_tools: ignore`` — for clients such as the Codex CLI
that always declare theirs. Cancelling the stream kills the CLI and its sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

import msgspec

from ...core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Finish,
    InvalidRequest,
    RequestContext,
    StepStart,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    UpstreamError,
    UsageUpdate,
    acollect,
    new_id,
)
from ..builtin.shell import DEFAULT_PATH, _reap
from ..egress import close_guard, guard_network
from ..sandbox import SandboxPolicy
from ..warm_sandbox import ColdRun
from ..workspaces import ThreadWorkspace, ThreadWorkspaces
from .clis import ClaudeCode, Codex, Turn

#: Where the thread's CLI session id is kept: in the thread's directory, beside ``files``.
SESSION_FILE = "harness-session"
_decode = msgspec.json.Decoder().decode

#: The URL ``dragoman serve`` publishes for agents that call the gateway back.
SELF_URL_ENV = "DRAGOMAN_SELF_URL"


def _prompt(req: ChatRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            text = "".join(p.text for p in m.content if isinstance(p, Text)).strip()
            if text:
                return text
    raise InvalidRequest("a harness agent needs a user message with text",
                         param="messages")


class HarnessAgent:
    """See the module docstring. ``url``: this gateway's base URL (None: the one
    ``dragoman serve`` publishes in ``DRAGOMAN_SELF_URL``)."""

    holds_history = True  # one turn at a time per thread: the CLI session is not shared

    def __init__(self, cli: Codex | ClaudeCode, binary: str, *, model: str,
                 workspaces: ThreadWorkspaces, policy: SandboxPolicy | None, key: str,
                 name: str = "harness", system: str | None = None, url: str | None = None,
                 client_tools: Literal["refuse", "ignore"] = "refuse",
                 timeout: float = 1800.0) -> None:
        self.cli = cli
        self.binary = binary
        self.model = model
        self.workspaces = workspaces
        self.policy = policy
        self.key = key
        self.name = name
        self.system = system
        self.url = url
        self.client_tools = client_tools
        self.timeout = timeout

    def __repr__(self) -> str:  # the key is a secret
        return f"HarnessAgent(name={self.name!r}, cli={self.cli.name!r}, model={self.model!r})"

    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        await close_guard()

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        async with contextlib.aclosing(self.stream(req, ctx)) as events:
            return await acollect(events, new_id("harness-"), req.model)

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncGenerator[StreamEvent, None]:
        if req.tools and self.client_tools == "refuse":
            raise InvalidRequest(f"{self.name!r} is a {self.cli.name} harness: it runs its own "
                                 "tools and cannot call the client's (send no `tools`)",
                                 param="tools", code="client_tools_unsupported")
        return self._run(req, ctx, _prompt(req))

    def _system(self, req: ChatRequest) -> str | None:
        parts = [self.system] if self.system else []
        parts += [t.text for t in req.system or () if t.text]
        return "\n\n".join(parts) or None

    def _gateway_url(self) -> str:
        url = self.url or os.environ.get(SELF_URL_ENV)
        if not url:
            raise UpstreamError(f"harness {self.name!r} does not know the gateway's URL: "
                                f"set `gateway_url:` (or run under `dragoman serve`)")
        return url.rstrip("/")

    async def _run(self, req: ChatRequest, ctx: RequestContext,
                   prompt: str) -> AsyncGenerator[StreamEvent, None]:
        thread = ctx.thread
        async with self.workspaces.open(ctx.tenant, thread) as ws:
            session_file = ws.root.parent / SESSION_FILE
            session = None
            if thread is not None and session_file.is_file():
                session = session_file.read_text().strip() or None
            translator = self.cli.translator()
            async with self._process(ws, Turn(
                    binary=self.binary, prompt=prompt, model=self.model,
                    url=self._gateway_url(), system=self._system(req),
                    session=session)) as (proc, stderr):
                yield StepStart(index=0)
                assert proc.stdout is not None
                try:
                    async with asyncio.timeout(self.timeout):
                        async for line in proc.stdout:
                            if not line.startswith(b"{"):
                                continue  # a warning line, not an event
                            try:
                                event = _decode(line)
                            except msgspec.DecodeError:
                                continue
                            if isinstance(event, dict):
                                for ev in translator.feed(event):
                                    yield ev
                        code = await proc.wait()
                except TimeoutError:
                    yield StreamError(error=UpstreamError(
                        f"harness {self.name!r} ran longer than {self.timeout:g} s"))
                    return
            if thread is not None and translator.session_id:
                session_file.write_text(translator.session_id)
            if translator.failure or code != 0:
                detail = translator.failure or bytes(stderr[-2000:]).decode(errors="replace")
                yield StreamError(error=UpstreamError(
                    f"harness {self.name!r} ({self.cli.name}) failed (exit {code}): "
                    f"{detail.strip()[:2000]}"))
                return
            yield UsageUpdate(usage=translator.usage)
            yield Finish(stop_reason=StopReason.END_TURN)

    @contextlib.asynccontextmanager
    async def _process(self, ws: ThreadWorkspace, turn: Turn
                       ) -> AsyncIterator[tuple[asyncio.subprocess.Process, bytearray]]:
        """The CLI running in the sandbox; killed (with everything it started) on exit."""
        home = self.policy.home(ws.root) if self.policy is not None else str(ws.root)
        for name in self.cli.dirs:
            made = ws.root / name
            if not made.is_dir():
                made.mkdir()
                ws.adopt(made)
        argv = self.cli.argv(turn)
        if self.policy is not None:
            argv = self.policy.command(argv, ws.root, owner=ws.owner, file_bytes=ws.max_bytes)
        env = {"PATH": DEFAULT_PATH, "HOME": home, "LANG": "C.UTF-8", "TERM": "dumb",
               **self.cli.env(home, self.key, turn.url)}
        await guard_network(self.policy)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ws.root, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, limit=16 << 20)
        stderr = bytearray()

        async def drain() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                stderr.extend(chunk)
                del stderr[:-8192]

        reader = asyncio.create_task(drain())
        try:
            yield proc, stderr
        finally:
            with contextlib.suppress(BaseException):
                await asyncio.shield(_reap(ColdRun(proc)))
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
