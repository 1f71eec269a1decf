"""bash: run a shell command in the workspace.

What it guarantees: the command starts in the workspace root, with a scrubbed environment
(a fixed PATH, HOME set to the workspace, nothing of the server's environment unless listed
in ``pass_env``), no stdin, in its own process group; it is killed — the whole group, so
its children too — when it outlives ``timeout``, when its output passes
``max_output_bytes``, or when the agent is cancelled.

With a ``SandboxPolicy`` (every agent built from a config has one) the command runs inside
the sandbox (``dragoman.agents.sandbox``): it sees only the workspace, at ``/workspace``,
under CPU, memory, file-size and process limits, and after each command the workspace's
quotas are checked. Without one (a ``Bash`` built in Python, or ``sandbox: none``) it is not
a sandbox: a command can read whatever the server's user can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import msgspec

from ..sandbox import SandboxPolicy, descendants
from ..tools import ToolError
from ..workspace import Workspace
from .files import _schema, _str_arg

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BashOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timeout: float = 30.0
    max_output_bytes: int = 64 * 1024
    shell: str = "/bin/bash"
    env: dict[str, str] = msgspec.field(default_factory=dict)
    pass_env: list[str] = msgspec.field(default_factory=list)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill the process group, and every process below the command in other sessions (a
    sandbox's PID-namespace init: killing it ends everything in the sandbox)."""
    if proc.returncode is None and proc.pid > 0:
        for pid in descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill the group and wait for it. The unread output must be drained first: on
    Python 3.11 ``wait()`` completes only once the pipe is closed, and a full, paused pipe
    never reports its end."""
    _kill_group(proc)
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                while await proc.stdout.read(1 << 16):
                    pass
    await proc.wait()


class Bash:
    name = "bash"
    description = ("Run a bash command in the workspace directory and return its output "
                   "(stdout and stderr together). Each call is a fresh shell: no state is "
                   "kept between calls.")
    parameters = _schema({"command": {"type": "string"}}, ["command"])

    def __init__(self, workspace: Workspace, options: BashOptions | None = None,
                 policy: SandboxPolicy | None = None) -> None:
        self.ws = workspace
        self.opts = options or BashOptions()
        self.policy = policy
        root = policy.home(workspace.root) if policy is not None else str(workspace.root)
        env = {"PATH": DEFAULT_PATH, "HOME": root, "PWD": root, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8", "TERM": "dumb", "TMPDIR": os.environ.get("TMPDIR", "/tmp")}
        for name in self.opts.pass_env:
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.opts.env)
        self.env = env

    def __repr__(self) -> str:  # the env may hold secrets
        return f"Bash(workspace={self.ws!r})"

    async def run(self, args: dict[str, Any]) -> str:
        command = _str_arg(args, "command")
        if not command.strip():
            raise ToolError("'command' is empty")
        opts = self.opts
        argv = [opts.shell, "-c", command]
        if self.policy is not None:
            argv = self.policy.command(argv, self.ws.root, owner=self.ws.owner,
                                       file_bytes=self.ws.max_bytes)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=self.ws.root, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        out = bytearray()
        cap = opts.max_output_bytes
        overflow = False
        try:
            async with asyncio.timeout(opts.timeout):
                assert proc.stdout is not None
                while chunk := await proc.stdout.read(65536):
                    out += chunk
                    if len(out) > cap:
                        overflow = True
                        break
                if overflow:
                    await _reap(proc)
                else:
                    await proc.wait()
        except TimeoutError:
            await _reap(proc)
            raise ToolError(_show(out, cap) + f"\n[the command timed out after "
                            f"{opts.timeout:g} s and was killed]") from None
        except BaseException:  # cancelled: leave nothing running
            _kill_group(proc)
            with contextlib.suppress(BaseException):
                await asyncio.shield(_reap(proc))
            raise
        finally:
            # Background children the shell left behind share its process group.
            _kill_group(proc)
        if overflow:
            raise ToolError(_show(out, cap) + f"\n[output passed {cap} bytes: the command "
                            "was stopped; redirect it to a file or filter it]")
        text = _show(out, cap)
        try:  # a command that filled the workspace hears it at once
            await asyncio.to_thread(self.ws.check)
        except ToolError as e:
            raise ToolError(f"{text}\n[{e.message}]".lstrip("\n")) from None
        if proc.returncode:
            raise ToolError(f"{text}\n[exit code {proc.returncode}]".lstrip("\n"))
        return text or "(no output)"


def _show(out: bytearray, cap: int) -> str:
    return bytes(out[:cap]).decode("utf-8", "replace")
