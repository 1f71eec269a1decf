"""bash: run a shell command in the workspace.

What it guarantees: the command starts in the workspace root, with a scrubbed environment
(a fixed PATH, HOME set to the workspace, nothing of the server's environment unless listed
in ``pass_env``), no stdin, in its own process group; it is killed — the whole group, so
its children too — when it outlives ``timeout``, when its output passes
``max_output_bytes``, or when the agent is cancelled.

With a ``SandboxPolicy`` (every agent built from a config has one) the command runs inside
the sandbox (``dragoman.agents.sandbox``): it sees only the workspace, at ``/workspace``,
under CPU, memory, file-size and process limits, and after each command the workspace's
quotas are checked. A thread's commands start in its warm sandbox (``warm_sandbox``) when
the server runs as root: namespaces and mounts are built once per thread, not per call.
Without one (a ``Bash`` built in Python, or ``sandbox: none``) it is not a sandbox: a
command can read whatever the server's user can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import msgspec

from ..sandbox import SandboxError, SandboxPolicy
from ..tools import ToolError
from ..warm_sandbox import Running, start_command
from ..workspace import Workspace
from .files import _schema, _str_arg

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BashOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timeout: float = 30.0
    max_output_bytes: int = 64 * 1024
    shell: str = "/bin/bash"
    env: dict[str, str] = msgspec.field(default_factory=dict)
    pass_env: list[str] = msgspec.field(default_factory=list)


async def _reap(proc: Running) -> None:
    """Kill the command and wait for it. The unread output must be drained first: on
    Python 3.11 ``wait()`` completes only once the pipe is closed, and a full, paused pipe
    never reports its end."""
    proc.kill()
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
        try:
            proc = await start_command(argv, self.ws, self.policy, self.env)
        except SandboxError as e:
            raise ToolError(str(e)) from None
        out = bytearray()
        cap = opts.max_output_bytes
        overflow = False
        try:
            async with asyncio.timeout(opts.timeout):
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
            proc.kill()
            with contextlib.suppress(BaseException):
                await asyncio.shield(_reap(proc))
            raise
        finally:
            # Background children the shell left behind share its process group (a warm
            # sandbox's command: its PID namespace, gone with it already).
            proc.kill()
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
