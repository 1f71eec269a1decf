"""File tools confined to a workspace: read_file, write_file, edit_file, list_dir, glob.

Each takes its options as a msgspec struct (unknown keys refused) and resolves every path
through ``Workspace``. File I/O runs in a worker thread: the event loop never waits on a
disk.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path
from typing import Any

import msgspec

from ..tools import ToolError
from ..workspace import Workspace


def _read_bytes(ws: Workspace, path: Path, limit: int) -> bytes:
    fd = ws.open_read(path)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ToolError(f"{ws.relative(path)} is a directory")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def _write_bytes(ws: Workspace, path: Path, data: bytes) -> None:
    ws.check(len(data))
    fd = ws.open_write(path)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _text(ws: Workspace, path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ToolError(f"{ws.relative(path)} is a binary file")
    return data.decode("utf-8", "replace")


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


_PATH = {"type": "string", "description": "Path relative to the workspace root."}


def _str_arg(args: dict[str, Any], key: str, default: str | None = None) -> str:
    v = args.get(key, default)
    if not isinstance(v, str):
        raise ToolError(f"'{key}' must be a string" if key in args else f"'{key}' is required")
    return v


def _int_arg(args: dict[str, Any], key: str, default: int | None) -> int | None:
    v = args.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ToolError(f"'{key}' must be an integer")
    return v


# --- read_file --------------------------------------------------------------------------


class ReadFileOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_file_bytes: int = 10 * 1024 * 1024
    max_output_chars: int = 100_000


class ReadFile:
    name = "read_file"
    description = ("Read a text file of the workspace. Optionally a range of lines: "
                   "'offset' is the first line (1-based), 'limit' the number of lines.")
    parameters = _schema({"path": _PATH,
                          "offset": {"type": "integer", "minimum": 1},
                          "limit": {"type": "integer", "minimum": 1}}, ["path"])

    def __init__(self, workspace: Workspace, options: ReadFileOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or ReadFileOptions()

    async def run(self, args: dict[str, Any]) -> str:
        path = self.ws.resolve(_str_arg(args, "path"))
        offset = _int_arg(args, "offset", 1) or 1
        limit = _int_arg(args, "limit", None)
        data = await asyncio.to_thread(_read_bytes, self.ws, path, self.opts.max_file_bytes)
        if len(data) > self.opts.max_file_bytes:
            raise ToolError(f"{self.ws.relative(path)} is larger than "
                            f"{self.opts.max_file_bytes} bytes")
        text = _text(self.ws, path, data)
        if offset > 1 or limit is not None:
            lines = text.splitlines(keepends=True)
            if offset > len(lines) and lines:
                raise ToolError(f"{self.ws.relative(path)} has only {len(lines)} lines")
            end = len(lines) if limit is None else offset - 1 + limit
            text = "".join(lines[offset - 1:end])
        cap = self.opts.max_output_chars
        if len(text) > cap:
            shown = text[:cap]
            next_line = offset + shown.count("\n")
            return (shown + f"\n[truncated: {len(text)} characters; continue with "
                            f"offset={next_line}]")
        return text


# --- write_file -------------------------------------------------------------------------


class WriteFileOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_bytes: int = 10 * 1024 * 1024


class WriteFile:
    name = "write_file"
    description = ("Create or overwrite a file of the workspace with 'content' (parent "
                   "directories are created).")
    parameters = _schema({"path": _PATH, "content": {"type": "string"}}, ["path", "content"])

    def __init__(self, workspace: Workspace, options: WriteFileOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or WriteFileOptions()

    async def run(self, args: dict[str, Any]) -> str:
        path = self.ws.resolve(_str_arg(args, "path"))
        data = _str_arg(args, "content").encode()
        if len(data) > self.opts.max_bytes:
            raise ToolError(f"the content is larger than {self.opts.max_bytes} bytes")
        await asyncio.to_thread(_write_bytes, self.ws, path, data)
        return f"wrote {len(data)} bytes to {self.ws.relative(path)}"


# --- edit_file --------------------------------------------------------------------------


class EditFile:
    name = "edit_file"
    description = ("Replace one exact occurrence of 'old_string' with 'new_string' in a file "
                   "of the workspace. 'old_string' must match exactly once (include enough "
                   "surrounding lines to make it unique).")
    parameters = _schema({"path": _PATH, "old_string": {"type": "string"},
                          "new_string": {"type": "string"}},
                         ["path", "old_string", "new_string"])

    def __init__(self, workspace: Workspace, options: ReadFileOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or ReadFileOptions()

    def _edit(self, path: Path, old: str, new: str) -> int:
        data = _read_bytes(self.ws, path, self.opts.max_file_bytes)
        if len(data) > self.opts.max_file_bytes:
            raise ToolError(f"{self.ws.relative(path)} is larger than "
                            f"{self.opts.max_file_bytes} bytes")
        text = _text(self.ws, path, data)
        count = text.count(old)
        rel = self.ws.relative(path)
        if count == 0:
            raise ToolError(f"'old_string' was not found in {rel}")
        if count > 1:
            raise ToolError(f"'old_string' occurs {count} times in {rel}; include more "
                            "context so it matches exactly once")
        _write_bytes(self.ws, path, text.replace(old, new, 1).encode())
        return text.count("\n", 0, text.index(old)) + 1

    async def run(self, args: dict[str, Any]) -> str:
        path = self.ws.resolve(_str_arg(args, "path"))
        old = _str_arg(args, "old_string")
        new = _str_arg(args, "new_string")
        if not old:
            raise ToolError("'old_string' must not be empty (use write_file to create a file)")
        if old == new:
            raise ToolError("'old_string' and 'new_string' are the same")
        line = await asyncio.to_thread(self._edit, path, old, new)
        return f"edited {self.ws.relative(path)} at line {line}"


# --- list_dir ---------------------------------------------------------------------------


class ListOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_entries: int = 1000
    max_scanned: int = 200_000  # glob: entries walked before giving up


def _describe(ws: Workspace, entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_symlink():
            target = os.readlink(entry.path)
            inside = ws.contains(os.path.realpath(entry.path))
            return f"{entry.name}@ -> {target}" + ("" if inside else " (outside the workspace)")
        if entry.is_dir():
            return entry.name + "/"
        return f"{entry.name} ({entry.stat().st_size} bytes)"
    except OSError:
        return entry.name


class ListDir:
    name = "list_dir"
    description = ("List a directory of the workspace: sub-directories end with '/', "
                   "symbolic links show their target, files their size.")
    parameters = _schema({"path": {**_PATH, "default": "."}}, [])

    def __init__(self, workspace: Workspace, options: ListOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or ListOptions()

    def _list(self, path: Path) -> str:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except NotADirectoryError:
            raise ToolError(f"{self.ws.relative(path)} is not a directory") from None
        except FileNotFoundError:
            raise ToolError(f"{self.ws.relative(path)} does not exist") from None
        except OSError as e:
            raise ToolError(f"cannot list {self.ws.relative(path)}: {e.strerror}") from None
        cap = self.opts.max_entries
        lines = [_describe(self.ws, e) for e in entries[:cap]]
        if len(entries) > cap:
            lines.append(f"[{len(entries) - cap} more entries not shown]")
        return "\n".join(lines) if lines else "(empty directory)"

    async def run(self, args: dict[str, Any]) -> str:
        path = self.ws.resolve(_str_arg(args, "path", "."))
        return await asyncio.to_thread(self._list, path)


# --- glob -------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths: ``*`` and ``?`` stay within one segment,
    ``**`` spans any number of segments, ``[...]`` is a character class."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def check_pattern(pattern: str) -> None:
    if pattern.startswith("/") or ".." in pattern.split("/"):
        raise ToolError(f"glob pattern {pattern!r} must stay inside the workspace "
                        "(relative, without '..')")


def walk(ws: Workspace, top: Path, max_scanned: int) -> Any:
    """(relative path, DirEntry) for every entry under ``top``, not following symlinks."""
    scanned = 0
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            scanned += 1
            if scanned > max_scanned:
                raise ToolError(f"more than {max_scanned} entries under "
                                f"{ws.relative(top)}; narrow the path")
            yield os.path.relpath(e.path, top).replace(os.sep, "/"), e
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))


class Glob:
    name = "glob"
    description = ("Find files of the workspace whose path (relative to 'path') matches a "
                   "glob pattern: '*' within a directory, '**' across directories, e.g. "
                   "'**/*.py'.")
    parameters = _schema({"pattern": {"type": "string"},
                          "path": {**_PATH, "default": "."}}, ["pattern"])

    def __init__(self, workspace: Workspace, options: ListOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or ListOptions()

    def _glob(self, top: Path, rx: re.Pattern[str]) -> str:
        if not top.is_dir():
            raise ToolError(f"{self.ws.relative(top)} is not a directory")
        hits: list[str] = []
        more = 0
        for rel, entry in walk(self.ws, top, self.opts.max_scanned):
            if not rx.match(rel):
                continue
            if entry.is_symlink() and not self.ws.contains(os.path.realpath(entry.path)):
                continue  # a link out of the workspace is not a result
            if len(hits) < self.opts.max_entries:
                hits.append(self.ws.relative(entry.path))
            else:
                more += 1
        hits.sort()
        if more:
            hits.append(f"[{more} more matches not shown]")
        return "\n".join(hits) if hits else "(no matches)"

    async def run(self, args: dict[str, Any]) -> str:
        pattern = _str_arg(args, "pattern")
        check_pattern(pattern)
        top = self.ws.resolve(_str_arg(args, "path", "."))
        return await asyncio.to_thread(self._glob, top, glob_regex(pattern))
