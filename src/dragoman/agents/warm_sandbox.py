"""One warm sandbox per thread: bubblewrap started once, commands started inside it.

A cold sandboxed command pays for a new bubblewrap every time (its namespaces, its mounts,
``setpriv``, ``prlimit``: ~14 ms over a bare ``fork``+``exec``). A thread's
``WarmSandbox`` builds them once, on the thread's first command, around a small
supervisor (``sandbox_supervisor``) that then starts each command with a few ``fork``s:
in a PID namespace of its own, as the workspace's uid, under the agent's limits.

Lifecycle (``WarmPool``, one per agent): a thread's sandbox starts with its first command
and is reused by its later turns; it stops after ``idle`` seconds without a command,
when its workspace is removed (the thread expired, or ``dragoman sessions purge``; a
purged and re-created workspace gets a new sandbox), at the end of a request without a
thread key, and when the server shuts down. Each command is killed — everything it
started with it — when it times out, when its output overflows, or when the request is
cancelled; if the server dies, bubblewrap's ``--die-with-parent`` and the supervisor's
end-of-input take the sandbox down.

Only a root server has warm sandboxes (each command's drop to the workspace's uid needs
it); otherwise, and without a pool, ``start_command`` starts a cold sandbox per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .egress import guard_network
from .sandbox import SANDBOX_HOME, Bwrap, SandboxError, SandboxPolicy, descendants, rlimits
from .workspace import Workspace

log = logging.getLogger("dragoman.agents.sandbox")

#: Seconds a sandbox may take to start and report ready.
START_TIMEOUT = 30.0
#: Seconds between checks for idle sandboxes and removed workspaces (at most).
REAP_EVERY = 5.0


class Running(Protocol):
    """A started command: its output (stdout and stderr together), its end, its kill."""

    stdout: asyncio.StreamReader

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None:
        """Kill the command and everything it started (idempotent)."""
        ...


class ColdRun:
    """A command in a process of its own (a cold sandbox, or none)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self.stdout = proc.stdout

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        """The process group, and every process below the command in other sessions (a
        cold sandbox's PID-namespace init: killing it ends everything in the sandbox)."""
        proc = self.proc
        if proc.returncode is None and proc.pid > 0:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


class WarmRun:
    """A command started by a warm sandbox's supervisor. ``fate``: the stream socket the
    supervisor writes the exit code to, and which kills the command when written to."""

    def __init__(self, stdout: asyncio.StreamReader, fate: socket.socket,
                 transport: asyncio.BaseTransport) -> None:
        self.stdout = stdout
        self.fate = fate
        self._transport = transport
        self._code: int | None = None
        self._waiter: asyncio.Task[int] = asyncio.ensure_future(self._fate())

    @property
    def returncode(self) -> int | None:
        return self._code

    async def _fate(self) -> int:
        loop = asyncio.get_running_loop()
        data = b""
        with contextlib.suppress(OSError):
            while chunk := await loop.sock_recv(self.fate, 64):
                data += chunk
        self.fate.close()
        self._code = int(data) if data.strip().isdigit() else 137
        return self._code

    async def wait(self) -> int:
        # (Its output pipe closes when the last process holding it dies: the end of the
        # command's PID namespace sees to that.)
        return await asyncio.shield(self._waiter)

    def kill(self) -> None:
        if self._code is None and self.fate.fileno() >= 0:
            with contextlib.suppress(OSError):
                self.fate.send(b"k")


class WarmSandbox:
    """A thread's bubblewrap with its supervisor."""

    def __init__(self, proc: asyncio.subprocess.Process, control: socket.socket,
                 inode: int) -> None:
        self.proc = proc
        self.control = control
        self.inode = inode
        self.last_used = time.monotonic()
        self.running = 0

    @classmethod
    async def start(cls, box: Bwrap, policy: SandboxPolicy, root: Path) -> WarmSandbox:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        inode = os.stat(root).st_ino
        try:
            argv = box.supervisor(root, network=policy.network, ro_paths=policy.ro_paths,
                                  control_fd=theirs.fileno())
            proc = await asyncio.create_subprocess_exec(
                *argv, pass_fds=[theirs.fileno()], env={"PATH": "/usr/bin:/bin"},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        box_ = cls(proc, ours, inode)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                ready = await asyncio.get_running_loop().sock_recv(ours, 16)
        except (TimeoutError, OSError):
            ready = b""
        if ready != b"ready":
            await box_.stop()
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        err = await proc.stderr.read(2000)
            raise SandboxError("the sandbox did not start: "
                               + (err.decode(errors="replace").strip() or "no reason given"))
        return box_

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and self.control.fileno() >= 0

    async def run(self, argv: Sequence[str], *, env: dict[str, str], uid: int,
                  limits: dict[str, tuple[int, int]]) -> WarmRun:
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        fate_ours, fate_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = json.dumps({"argv": list(argv), "env": env, "cwd": SANDBOX_HOME,
                              "uid": uid, "rlimits": limits}).encode()
        try:
            await self._send(request, [write_end, fate_theirs.fileno()])
        except BaseException:
            os.close(read_end)
            fate_ours.close()
            raise
        finally:
            os.close(write_end)
            fate_theirs.close()
        fate_ours.setblocking(False)
        reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(read_end, "rb", buffering=0))
        self.running += 1
        self.last_used = time.monotonic()
        run = WarmRun(reader, fate_ours, transport)
        run._waiter.add_done_callback(lambda _: self._done())
        return run

    def _done(self) -> None:
        self.running -= 1
        self.last_used = time.monotonic()

    async def _send(self, data: bytes, fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(self.control, [data], fds)
                return
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(self.control, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self.control)
            except OSError as e:
                raise SandboxError(f"the sandbox is gone: {e.strerror}") from None

    async def stop(self) -> None:
        """Close the supervisor's input (it kills its commands and exits), and make sure."""
        self.control.close()
        proc = self.proc
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class WarmPool:
    """The warm sandboxes of one agent, one per workspace (thread)."""

    def __init__(self, idle: float = 300.0) -> None:
        self.idle = idle
        self._boxes: dict[str, WarmSandbox] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._boxes)

    async def get(self, box: Bwrap, policy: SandboxPolicy, root: Path) -> WarmSandbox:
        key = str(root)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            warm = self._boxes.get(key)
            if warm is not None and warm.alive and _inode(root) == warm.inode:
                warm.last_used = time.monotonic()
                return warm
            if warm is not None:  # died, or its workspace was purged and made again
                await self._stop(key)
            warm = await WarmSandbox.start(box, policy, root)
            self._boxes[key] = warm
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.create_task(self._reap())
            return warm

    async def stop(self, root: Path) -> None:
        """Stop the sandbox of ``root`` (its request ended without a thread key)."""
        await self._stop(str(root))

    async def _stop(self, key: str) -> None:
        warm = self._boxes.pop(key, None)
        self._locks.pop(key, None)
        if warm is not None:
            await warm.stop()

    async def _reap(self) -> None:
        """Stop the sandboxes idle too long or whose workspace is gone."""
        while self._boxes:
            await asyncio.sleep(min(self.idle / 2, REAP_EVERY))
            now = time.monotonic()
            for key, warm in list(self._boxes.items()):
                idle = warm.running == 0 and now - warm.last_used > self.idle
                if idle or not warm.alive or _inode(Path(key)) != warm.inode:
                    await self._stop(key)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for key in list(self._boxes):
            await self._stop(key)


def _inode(root: Path) -> int | None:
    try:
        return os.stat(root).st_ino
    except OSError:
        return None


async def start_command(argv: Sequence[str], ws: Workspace, policy: SandboxPolicy | None,
                        env: dict[str, str]) -> Running:
    """Start ``argv`` in ``ws``: in the thread's warm sandbox when there is one (a root
    server, bubblewrap, a pool), else in a process of its own (a cold sandbox, or none);
    stdout and stderr together, no stdin, its own session."""
    await guard_network(policy)
    if policy is not None and isinstance(policy.warm, WarmPool) and ws.owner is not None \
            and isinstance(policy.sandbox, Bwrap):
        warm = await policy.warm.get(policy.sandbox, policy, ws.root)
        return await warm.run(argv, env=env, uid=ws.owner,
                              limits=rlimits(policy.limits, ws.max_bytes, per_uid=True))
    if policy is not None:
        argv = policy.command(argv, ws.root, owner=ws.owner, file_bytes=ws.max_bytes)
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ws.root, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    return ColdRun(proc)
