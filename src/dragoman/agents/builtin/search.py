"""grep: search the workspace's text files with a regular expression (Python syntax).

Runs in a worker thread with a deadline and a stop flag, so a cancelled agent or a slow
search ends at the next line; binary files, files over the size limit and symbolic links
leading out of the workspace are skipped, and long lines are cut before matching (a
pathological pattern cannot spin on a megabyte-long line).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from ..tools import ToolError
from ..workspace import Workspace
from .files import _PATH, _schema, _str_arg, check_pattern, glob_regex, walk

_MAX_LINE = 2000
_SHOWN_LINE = 300


class GrepOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_results: int = 200
    max_file_bytes: int = 5 * 1024 * 1024
    max_scanned: int = 200_000
    timeout: float = 20.0


class Grep:
    name = "grep"
    description = ("Search the workspace's text files for a regular expression (Python "
                   "syntax). Prints 'path:line: text' for each matching line. 'path' limits "
                   "the search to a file or directory, 'glob' to file paths matching a "
                   "pattern such as '**/*.py'.")
    parameters = _schema({
        "pattern": {"type": "string", "description": "Regular expression."},
        "path": {**_PATH, "default": "."},
        "glob": {"type": "string"},
        "ignore_case": {"type": "boolean", "default": False},
    }, ["pattern"])

    def __init__(self, workspace: Workspace, options: GrepOptions | None = None) -> None:
        self.ws = workspace
        self.opts = options or GrepOptions()

    def _files(self, top: Path, only: re.Pattern[str] | None) -> Any:
        if top.is_file():
            yield top
            return
        for rel, entry in walk(self.ws, top, self.opts.max_scanned):
            if only is not None and not only.match(rel):
                continue
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if self.ws.contains(real) and os.path.isfile(real):
                    yield Path(real)
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)

    def _search(self, top: Path, rx: re.Pattern[str], only: re.Pattern[str] | None,
                stop: threading.Event) -> str:
        deadline = time.monotonic() + self.opts.timeout
        out: list[str] = []
        cap = self.opts.max_results
        more = 0
        for path in self._files(top, only):
            if stop.is_set() or time.monotonic() > deadline:
                out.append(f"[search stopped after {self.opts.timeout:g} s; narrow it]")
                break
            try:
                if os.path.getsize(path) > self.opts.max_file_bytes:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if b"\x00" in data[:8192]:
                continue
            rel = self.ws.relative(path)
            for no, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if rx.search(line[:_MAX_LINE]):
                    if len(out) < cap:
                        shown = line if len(line) <= _SHOWN_LINE else line[:_SHOWN_LINE] + "…"
                        out.append(f"{rel}:{no}: {shown}")
                    else:
                        more += 1
        if more:
            out.append(f"[{more} more matching lines not shown]")
        return "\n".join(out) if out else "(no matches)"

    async def run(self, args: dict[str, Any]) -> str:
        pattern = _str_arg(args, "pattern")
        flags = re.IGNORECASE if args.get("ignore_case") else 0
        try:
            rx = re.compile(pattern, flags)
        except re.error as e:
            raise ToolError(f"invalid regular expression: {e}") from None
        only = None
        if args.get("glob") is not None:
            g = _str_arg(args, "glob")
            check_pattern(g)
            only = glob_regex(g)
        top = self.ws.resolve(_str_arg(args, "path", "."))
        if not top.exists():
            raise ToolError(f"{self.ws.relative(top)} does not exist")
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self._search, top, rx, only, stop)
        finally:
            stop.set()  # a cancelled search ends at its next file
