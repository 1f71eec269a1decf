"""The directory built-in tools are confined to.

Every path a model gives is resolved (``..``, symlinks, absolute spellings) and must land
inside the root, or the tool answers with an error naming the path. Files are then opened
with ``O_NOFOLLOW``, so a symlink planted on the last component between the check and the
open is refused too. (A directory symlink swapped in mid-call by another process could still
race the check; the workspace is a guard against a model's mistakes and a hostile prompt,
not against a second attacker already on the host.)
"""

from __future__ import annotations

import os
from pathlib import Path

from .tools import ToolError


class Workspace:
    #: The uid sandboxed processes run as in this workspace (None: the server's).
    owner: int | None = None
    #: The byte quota (None: none); also the sandbox's largest-file limit.
    max_bytes: int | None = None

    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ValueError(f"workspace {os.fspath(root)!r} is not a directory")
        self.root = Path(real)
        self._prefix = real.rstrip(os.sep) + os.sep

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def contains(self, real: str) -> bool:
        return real == str(self.root) or real.startswith(self._prefix)

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` (relative to the root, or absolute inside it)."""
        if not isinstance(path, str) or not path:
            raise ToolError("a path is required")
        if "\x00" in path:
            raise ToolError("the path contains a NUL byte")
        candidate = os.path.join(self.root, path)  # an absolute path replaces the root
        real = os.path.realpath(candidate)
        if self.contains(real):
            return Path(real)
        lexical = os.path.normpath(candidate)
        if self.contains(lexical):
            raise ToolError(f"{path!r} leads outside the workspace through a symbolic link")
        raise ToolError(f"{path!r} is outside the workspace")

    def relative(self, path: Path | str) -> str:
        """How a path inside the workspace is shown to the model."""
        rel = os.path.relpath(path, self.root)
        return "." if rel == "." else rel.replace(os.sep, "/")

    def check(self, extra: int = 0) -> None:
        """Raise ``ToolError`` when writing ``extra`` more bytes would pass a quota (none
        here; per-thread workspaces have them, ``workspaces.ThreadWorkspace``)."""

    def adopt(self, path: Path) -> None:
        """Called on each file and directory the tools create (a per-thread workspace
        hands it to the sandbox's uid)."""

    def open_read(self, path: Path) -> int:
        """A read-only descriptor; the last component must not be a symlink."""
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ToolError(f"{self.relative(path)} does not exist") from None
        except IsADirectoryError:
            raise ToolError(f"{self.relative(path)} is a directory") from None
        except OSError as e:
            raise ToolError(f"cannot open {self.relative(path)}: {e.strerror}") from None

    def open_write(self, path: Path) -> int:
        """A descriptor truncating/creating ``path``; its parents are created inside the
        workspace first."""
        parent = path.parent
        if not self.contains(os.path.realpath(parent)):
            raise ToolError(f"{self.relative(path)} is outside the workspace")
        try:
            missing = [p for p in (parent, *parent.parents) if not p.exists()]
            parent.mkdir(parents=True, exist_ok=True)
            for made in reversed(missing):
                self.adopt(made)
            # mkdir may have followed a symlink created meanwhile: check again.
            if not self.contains(os.path.realpath(parent)):
                raise ToolError(f"{self.relative(path)} is outside the workspace")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644)
            self.adopt(path)
            return fd
        except IsADirectoryError:
            raise ToolError(f"{self.relative(path)} is a directory") from None
        except OSError as e:
            raise ToolError(f"cannot write {self.relative(path)}: {e.strerror}") from None
