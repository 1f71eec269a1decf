"""One workspace directory per agent thread, below the agent's ``workspace:`` root.

Layout: ``ROOT/<tenant hash>/<thread hash>/files`` is the workspace (what the tools and the
sandbox see), ``ROOT/<tenant hash>/<thread hash>/last-use`` its clock. The directory names
are SHA-256 digests of the tenant and of (tenant, thread key), so no key can spell a path
(``..``, ``/``, NUL) and one tenant's keys never name another tenant's directory; the
clock sits outside ``files`` where a sandboxed command cannot touch it.

A request without a thread key gets a fresh workspace, removed when the request ends.
A thread's workspace is created on first use, kept across turns and restarts (it is just a
directory: workers sharing the storage share it), and removed once unused for the
sessions TTL (swept at most once a minute, or twice a TTL if shorter, while agents run)
or by ``dragoman sessions purge``.

Quotas (``WorkspaceQuota``): bytes and files per workspace, checked by the file tools
before they write and by ``bash`` after each command; workspaces per tenant, checked when a
thread's workspace is created. Each is a ``ToolError`` the model reads.

When the server runs as root, each workspace is owned by its own uid
(``sandbox.sandbox_uid``), which the sandboxed processes run as.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from .sandbox import sandbox_uid
from .tools import ToolError
from .workspace import Workspace

FILES = "files"
CLOCK = "last-use"
EPHEMERAL_PREFIX = "req-"
SWEEP_EVERY = 60.0


class WorkspaceQuota(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    max_bytes: int | None = 1 << 30
    max_files: int | None = 100_000
    max_workspaces: int | None = 1000
    """Per tenant."""


class QuotaExceeded(ToolError):
    """A workspace quota is exceeded; the message says which and by how much."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def usage(root: Path) -> tuple[int, int]:
    """(bytes, files) below ``root``, not following symlinks."""
    size = files = 0
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                        continue
                    size += e.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
                files += 1
    return size, files


class ThreadWorkspace(Workspace):
    """A workspace with quotas and (as root) an owning uid. ``check(extra)`` raises
    ``QuotaExceeded`` when the workspace, plus ``extra`` bytes about to be written, is
    over a quota."""

    def __init__(self, root: Path, quota: WorkspaceQuota, owner: int | None) -> None:
        super().__init__(root)
        self.quota = quota
        self.owner = owner
        self.max_bytes = quota.max_bytes

    def check(self, extra: int = 0) -> None:
        q = self.quota
        if q.max_bytes is None and q.max_files is None:
            return
        size, files = usage(self.root)
        if q.max_bytes is not None and size + extra > q.max_bytes:
            raise QuotaExceeded(f"workspace quota exceeded: {size + extra} bytes of "
                                f"{q.max_bytes} allowed; delete files to make room")
        if q.max_files is not None and files > q.max_files:
            raise QuotaExceeded(f"workspace quota exceeded: {files} files of {q.max_files} "
                                "allowed; delete files to make room")

    def adopt(self, path: Path) -> None:
        """Give a file or directory the tools created to the workspace's uid, so
        sandboxed commands may change it."""
        if self.owner is not None:
            with contextlib.suppress(OSError):
                os.chown(path, self.owner, self.owner, follow_symlinks=False)


class ThreadWorkspaces:
    """The workspaces below one root. ``ttl``: seconds of disuse after which a thread's
    workspace is removed (None: kept until purged)."""

    def __init__(self, root: str | os.PathLike[str], *, quota: WorkspaceQuota | None = None,
                 template: str | os.PathLike[str] | None = None,
                 ttl: float | None = None) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ValueError(f"workspace {os.fspath(root)!r} is not a directory")
        self.root = Path(real)
        self.quota = quota or WorkspaceQuota()
        self.template = Path(template) if template is not None else None
        if self.template is not None and not self.template.is_dir():
            raise ValueError(f"workspace_template {os.fspath(self.template)!r} is not a "
                             "directory")
        self.ttl = ttl
        self.as_root = os.geteuid() == 0
        self._last_sweep = 0.0

    def __repr__(self) -> str:
        return f"ThreadWorkspaces({str(self.root)!r})"

    def thread_dir(self, tenant: str, thread: str) -> Path:
        return self.root / _digest("tenant", tenant) / _digest("thread", tenant, thread)

    @contextlib.asynccontextmanager
    async def open(self, tenant: str, thread: str | None) -> AsyncIterator[ThreadWorkspace]:
        """The thread's workspace for one request (a fresh one, removed afterwards,
        without a thread key). Raises ``QuotaExceeded`` when the tenant has too many."""
        await self._maybe_sweep()
        if thread is None:
            tdir = self.root / _digest("tenant", tenant) / (EPHEMERAL_PREFIX
                                                             + uuid.uuid4().hex)
        else:
            tdir = self.thread_dir(tenant, thread)
        ws = await asyncio.to_thread(self._ensure, tdir)
        try:
            yield ws
        finally:
            if thread is None:
                await asyncio.to_thread(shutil.rmtree, tdir, True)
            else:
                with contextlib.suppress(OSError):
                    os.utime(tdir / CLOCK)

    def _ensure(self, tdir: Path) -> ThreadWorkspace:
        files = tdir / FILES
        owner = sandbox_uid(tdir.name) if self.as_root else None
        if not files.is_dir():
            tenant_dir = tdir.parent
            tenant_dir.mkdir(mode=0o711, exist_ok=True)
            os.chmod(tenant_dir, 0o711)
            limit = self.quota.max_workspaces
            if limit is not None and sum(1 for _ in tenant_dir.iterdir()) >= limit:
                raise QuotaExceeded(f"workspace quota exceeded: this tenant already has "
                                    f"{limit} workspaces; older threads expire or are "
                                    "purged by the operator")
            tdir.mkdir(mode=0o711, exist_ok=True)
            staging = tdir / f".new-{uuid.uuid4().hex}"
            if self.template is not None:
                shutil.copytree(self.template, staging, symlinks=True)
            else:
                staging.mkdir()
            staging.chmod(0o700)
            if owner is not None:
                for dirpath, dirnames, filenames in os.walk(staging):
                    for name in (dirpath, *(os.path.join(dirpath, n)
                                            for n in (*dirnames, *filenames))):
                        os.chown(name, owner, owner, follow_symlinks=False)
            try:
                staging.rename(files)  # two workers racing: one wins, both use it
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        (tdir / CLOCK).touch()
        return ThreadWorkspace(files, self.quota, owner)

    async def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if self.ttl is None or now - self._last_sweep < min(SWEEP_EVERY, self.ttl / 2):
            return
        self._last_sweep = now
        await asyncio.to_thread(purge_workspaces, self.root, self.ttl)


def default_workspace_root() -> Path:
    """``$XDG_DATA_HOME/dragoman/workspaces`` (``~/.local/share/…`` when unset), for agents
    that name no ``workspace:``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "share")
    return Path(base) / "dragoman" / "workspaces"


def purge_workspaces(root: str | os.PathLike[str], older_than: float) -> int:
    """Remove the workspaces below ``root`` unused for ``older_than`` seconds (and
    leftovers of requests that died before cleaning up); returns how many."""
    cutoff = time.time() - older_than
    removed = 0
    base = Path(root)
    if not base.is_dir():
        return 0
    for tenant_dir in base.iterdir():
        if not tenant_dir.is_dir() or tenant_dir.is_symlink():
            continue
        for tdir in tenant_dir.iterdir():
            try:
                clock = (tdir / CLOCK).stat().st_mtime
            except OSError:
                clock = tdir.lstat().st_mtime
            if clock <= cutoff:
                shutil.rmtree(tdir, ignore_errors=True)
                removed += 1
    return removed
