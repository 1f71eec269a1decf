"""A real MCP server for the agent tests, written with the official SDK (``MCPServer``,
formerly FastMCP).

``python mcp_notes_server.py`` serves over stdio (the agent starts it inside the thread's
sandbox, with the workspace as cwd); ``python mcp_notes_server.py http PORT TOKEN`` serves
streamable HTTP on loopback and answers 401 unless ``Authorization: Bearer TOKEN``.
The http flavour has its own tools and a ``list_notes`` too, so the two servers' names
collide and the agent namespaces them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

#: A 1x1 PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def stdio_server() -> MCPServer:
    mcp = MCPServer("notes")

    @mcp.tool()
    def add_note(text: str) -> str:
        """Append a note to notes.txt in the current directory."""
        with open("notes.txt", "a") as f:
            f.write(text + "\n")
        return f"saved note {text!r}"

    @mcp.tool()
    def list_notes() -> str:
        """The notes saved so far."""
        try:
            with open("notes.txt") as f:
                return "notes: " + " | ".join(f.read().split("\n")[:-1])
        except FileNotFoundError:
            return "notes: (none)"

    @mcp.tool()
    def where() -> str:
        """The server's working directory and process id."""
        return f"cwd={os.getcwd()} pid={os.getpid()} home={os.environ.get('HOME')}"

    @mcp.tool()
    def pixel() -> Image:
        """A tiny picture."""
        return Image(data=PIXEL, format="png")

    @mcp.tool()
    def forecast(city: str) -> dict[str, Any]:
        """Structured weather."""
        return {"city": city, "temp_c": 18, "sky": "sunny"}

    @mcp.tool()
    def broken() -> str:
        """Always fails."""
        raise ToolError("the notes are on fire")

    @mcp.tool()
    async def slow() -> str:
        """Takes far too long."""
        await asyncio.sleep(60)
        return "finally"

    @mcp.tool()
    async def unlock(ctx: Context) -> str:
        """Adds the tool secret_door and tells the client the list changed."""
        @mcp.tool()
        def secret_door() -> str:
            """Only there after unlock."""
            return "you found the secret door"

        await ctx.session.send_tool_list_changed()
        return "unlocked"

    return mcp


def http_server() -> MCPServer:
    mcp = MCPServer("search")

    @mcp.tool()
    def search(query: str) -> str:
        """Search the web (pretend)."""
        return f"3 results for {query!r}"

    @mcp.tool()
    def list_notes() -> str:
        """The remote notes."""
        return "remote notes: none"

    return mcp


def main() -> None:
    if sys.argv[1:2] != ["http"]:
        stdio_server().run()
        return
    import uvicorn

    port, token = int(sys.argv[2]), sys.argv[3]
    app = http_server().streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            if auth != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"no"})
                return
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
