"""Built-in tools and their sandbox: every escape (``../``, absolute paths, symlinks out of
the workspace) is refused with a clear error, huge outputs are capped, a command that never
ends is killed with its whole process group."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dragoman.agents import ToolError, ToolRegistry, Workspace
from dragoman.agents.builtin import BUILTINS, BuiltinError, build_builtin
from dragoman.agents.builtin.files import glob_regex
from dragoman.agents.builtin.web import html_to_text


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("def answer():\n    return 42\n")
    (root / "src" / "main.py").write_text("import pkg\nprint('hello')\n")
    (root / "notes.txt").write_text("line one\nline two\nline three\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    (root / "link-out").symlink_to(outside / "secret.txt")
    (root / "dir-out").symlink_to(outside)
    (root / "link-in").symlink_to(root / "notes.txt")
    yield Workspace(root)


def tools(ws: Workspace, **options: dict[str, Any]) -> ToolRegistry:
    return ToolRegistry([build_builtin(name, options.get(name), ws) for name in BUILTINS])


ESCAPES = ["../outside/secret.txt", "/etc/passwd", "src/../../outside/secret.txt",
           "link-out", "dir-out/secret.txt"]


@pytest.mark.parametrize("path", ESCAPES)
async def test_file_tools_refuse_paths_out_of_the_workspace(ws: Workspace, path: str) -> None:
    reg = tools(ws)
    calls = {
        "read_file": {"path": path},
        "write_file": {"path": path, "content": "pwned"},
        "edit_file": {"path": path, "old_string": "TOP", "new_string": "NOT"},
        "list_dir": {"path": path},
        "grep": {"pattern": "SECRET", "path": path},
        "glob": {"pattern": "*", "path": path},
    }
    for name, args in calls.items():
        r = await reg.call(name, args)
        assert r.is_error, (name, r.text)
        assert "outside the workspace" in r.text, (name, r.text)
        if path in ("link-out", "dir-out/secret.txt"):
            assert "symbolic link" in r.text, (name, r.text)
    assert (ws.root.parent / "outside" / "secret.txt").read_text() == "TOP SECRET"
    assert not (Path("/etc") / "passwd").read_text().startswith("pwned")


async def test_listing_and_searching_never_show_what_is_outside(ws: Workspace) -> None:
    reg = tools(ws)
    listing = (await reg.call("list_dir", {})).text.splitlines()
    assert "src/" in listing and "notes.txt (29 bytes)" in listing
    assert any(line.startswith("link-out@ -> ") and line.endswith("(outside the workspace)")
               for line in listing)
    r = await reg.call("grep", {"pattern": "SECRET"})
    assert r.text == "(no matches)"  # the symlinked secret is skipped
    r = await reg.call("glob", {"pattern": "**/*"})
    assert "link-out" not in r.text.split() and "dir-out" not in r.text.split()
    assert "link-in" in r.text.split()
    r = await reg.call("glob", {"pattern": "../*"})
    assert r.is_error and "must stay inside the workspace" in r.text
    r = await reg.call("grep", {"pattern": "x", "glob": "/etc/*"})
    assert r.is_error and "must stay inside the workspace" in r.text


async def test_read_write_edit(ws: Workspace) -> None:
    reg = tools(ws)
    assert (await reg.call("read_file", {"path": "notes.txt"})).text == \
        "line one\nline two\nline three\n"
    assert (await reg.call("read_file", {"path": "notes.txt", "offset": 2, "limit": 1})).text \
        == "line two\n"
    assert (await reg.call("read_file", {"path": "link-in"})).text.startswith("line one")
    r = await reg.call("read_file", {"path": "blob.bin"})
    assert r.is_error and r.text == "blob.bin is a binary file"
    r = await reg.call("read_file", {"path": "missing.txt"})
    assert r.is_error and r.text == "missing.txt does not exist"
    r = await reg.call("read_file", {"path": "src"})
    assert r.is_error and "src is a directory" in r.text

    r = await reg.call("write_file", {"path": "new/deep/file.txt", "content": "alpha beta"})
    assert r.text == "wrote 10 bytes to new/deep/file.txt"
    assert (ws.root / "new" / "deep" / "file.txt").read_text() == "alpha beta"

    r = await reg.call("edit_file", {"path": "notes.txt", "old_string": "line",
                                     "new_string": "LINE"})
    assert r.is_error and "occurs 3 times" in r.text
    r = await reg.call("edit_file", {"path": "notes.txt", "old_string": "zebra",
                                     "new_string": "x"})
    assert r.is_error and r.text == "'old_string' was not found in notes.txt"
    r = await reg.call("edit_file", {"path": "notes.txt", "old_string": "line two",
                                     "new_string": "line 2"})
    assert not r.is_error and r.text == "edited notes.txt at line 2"
    assert (ws.root / "notes.txt").read_text() == "line one\nline 2\nline three\n"


async def test_glob_and_grep(ws: Workspace) -> None:
    reg = tools(ws)
    assert (await reg.call("glob", {"pattern": "**/*.py"})).text == "src/main.py\nsrc/pkg/mod.py"
    assert (await reg.call("glob", {"pattern": "*.py", "path": "src"})).text == "src/main.py"
    r = await reg.call("grep", {"pattern": r"return \d+", "glob": "**/*.py"})
    assert r.text == "src/pkg/mod.py:2:     return 42"
    r = await reg.call("grep", {"pattern": "HELLO", "ignore_case": True, "path": "src"})
    assert r.text == "src/main.py:2: print('hello')"
    r = await reg.call("grep", {"pattern": "("})
    assert r.is_error and r.text.startswith("invalid regular expression")
    assert glob_regex("a/**/b?.[ch]").match("a/x/y/b1.c")
    assert not glob_regex("*.py").match("dir/x.py")


async def test_huge_outputs_are_capped(ws: Workspace) -> None:
    (ws.root / "big.txt").write_text("0123456789\n" * 100_000)
    reg = tools(ws, read_file={"max_output_chars": 1000},
                bash={"max_output_bytes": 2000, "timeout": 10})
    r = await reg.call("read_file", {"path": "big.txt"})
    assert not r.is_error and len(r.text) < 1200
    assert "[truncated: 1100000 characters; continue with offset=91]" in r.text
    started = time.monotonic()
    r = await reg.call("bash", {"command": "yes dragoman"})  # never ends by itself
    assert r.is_error
    assert r.text.startswith("dragoman\ndragoman\n")
    assert "[output passed 2000 bytes: the command was stopped" in r.text
    assert time.monotonic() - started < 5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


async def _wait_dead(pid: int, timeout: float = 6.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_command_that_never_ends_is_killed_with_its_children(ws: Workspace) -> None:
    reg = tools(ws, bash={"timeout": 0.5})
    started = time.monotonic()
    r = await reg.call("bash", {"command": "sleep 1000 & echo $! > child.pid; echo started; "
                                           "while true; do sleep 0.1; done"})
    assert r.is_error
    assert r.text == "started\n\n[the command timed out after 0.5 s and was killed]"
    assert time.monotonic() - started < 3
    child = int((ws.root / "child.pid").read_text())
    assert await _wait_dead(child), "the background child survived the timeout"


async def test_bash_environment_is_scrubbed_and_cwd_fixed(ws: Workspace,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAGOMAN_TEST_SECRET", "sk-should-not-leak")
    monkeypatch.setenv("DRAGOMAN_TEST_SHARED", "shared-value")
    reg = tools(ws, bash={"pass_env": ["DRAGOMAN_TEST_SHARED"], "env": {"MODE": "agent"}})
    r = await reg.call("bash", {"command": "pwd; env | sort"})
    assert not r.is_error, r.text
    lines = r.text.splitlines()
    assert lines[0] == str(ws.root)
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert "DRAGOMAN_TEST_SECRET" not in env and "sk-should-not-leak" not in r.text
    assert env["DRAGOMAN_TEST_SHARED"] == "shared-value" and env["MODE"] == "agent"
    assert env["HOME"] == str(ws.root)
    r = await reg.call("bash", {"command": "cd / && echo moved; exit 3"})
    assert r.is_error and r.text == "moved\n\n[exit code 3]"
    # each call starts again in the workspace
    assert (await reg.call("bash", {"command": "pwd"})).text.strip() == str(ws.root)


async def test_cancelling_bash_kills_the_process_group(ws: Workspace) -> None:
    reg = tools(ws, bash={"timeout": 60})
    task = asyncio.ensure_future(reg.call("bash", {"command": "echo $$ > shell.pid; sleep 1000"}))
    pid_file = ws.root / "shell.pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_dead(pid)


def test_builtin_config_errors(ws: Workspace) -> None:
    with pytest.raises(BuiltinError, match="unknown built-in tool 'bsh'"):
        build_builtin("bsh", None, ws)
    with pytest.raises(BuiltinError, match="tool 'read_file' needs a `workspace`"):
        build_builtin("read_file", None, None)
    with pytest.raises(BuiltinError, match="unknown field `timout`"):
        build_builtin("bash", {"timout": 3}, ws)
    with pytest.raises(ValueError, match="is not a directory"):
        Workspace(ws.root / "notes.txt")
    with pytest.raises(ToolError, match="NUL"):
        ws.resolve("a\x00b")


# --- web_fetch ---------------------------------------------------------------------------


@pytest.fixture
async def site() -> Any:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><head><title>Docs</title><style>p{}</style></head>"
                                 "<body><h1>Hello</h1><p>from the <b>fake</b> site</p>"
                                 "<script>alert(1)</script></body></html>",
                            content_type="text/html")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/image", image)
    runner = web.AppRunner(app)
    await runner.setup()
    s = web.TCPSite(runner, "127.0.0.1", 0)
    await s.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_web_fetch_refuses_internal_addresses(site: str) -> None:
    reg = ToolRegistry([build_builtin("web_fetch", None, None)])
    for url in (site + "/page", "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/", "http://0x7f000001/", "file:///etc/passwd"):
        r = await reg.call("web_fetch", {"url": url})
        assert r.is_error, url
        assert r.text.startswith(f"cannot fetch {url}: "), r.text


async def test_web_fetch_reads_an_allowed_host_as_text(site: str) -> None:
    reg = ToolRegistry([build_builtin("web_fetch", {"allow_hosts": ["127.0.0.1"]}, None)])
    r = await reg.call("web_fetch", {"url": site + "/page"})
    assert not r.is_error, r.text
    assert r.text == (f"URL: {site}/page\nStatus: 200\nContent-Type: text/html\n\n"
                      "# Docs\n\nHello\nfrom the fake site")
    r = await reg.call("web_fetch", {"url": site + "/image"})
    assert r.is_error and "content type 'image/png'" in r.text


def test_html_to_text() -> None:
    assert html_to_text("<p>a&amp;b</p><ul><li>one</li><li>two</li></ul>") == "a&b\none\ntwo"
