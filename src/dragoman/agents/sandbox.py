"""The sandbox runner: how every process an agent starts (``bash``, a stdio MCP server, a
harness CLI) is wrapped so it sees only its thread's workspace.

``Bwrap.wrap(argv, workspace)`` returns the command line that runs ``argv`` inside
bubblewrap: a read-only view of the system (``/usr`` and a few files of ``/etc``), the
workspace bound read-write at ``/workspace`` (the only writable path besides a private
``/tmp``), fresh PID, IPC, UTS, cgroup, user and network namespaces (``--unshare-all``; the
network is shared back only with ``network=True``), ``--die-with-parent`` so nothing
outlives the server, and resource limits set by ``prlimit`` before the command starts (CPU
seconds, address space, largest file, processes). Under a server running as root the
command drops to the workspace's own uid (``setpriv``, all capabilities gone, no new
privileges): the process limit is per uid, so it bounds a fork bomb, and no two
workspaces share an owner.

``NoSandbox`` is the opt-out (``sandbox: none``): the command runs as the server's user in
the workspace directory, in its own process group — what ``bash`` did before sandboxes.

Wrapping is a pure function of its inputs (an argv list), so bash, MCP stdio servers and
harnesses share it; the caller starts the process (asyncio, the MCP SDK) and kills its
process group when the request ends. Killing bubblewrap kills the whole PID namespace.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import msgspec

#: Where the workspace appears inside the sandbox.
SANDBOX_HOME = "/workspace"

#: Files of ``/etc`` a command may need (alternatives symlinks, TLS roots, the dynamic
#: loader cache, the time zone); the rest of ``/etc`` — passwd, shadow, the server's
#: configuration — is not there.
_ETC = ("/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/ld.so.cache",
        "/etc/localtime", "/etc/nsswitch.conf", "/etc/mime.types")
_ETC_NETWORK = ("/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf")

SandboxKind = Literal["bwrap", "none"]

#: What a warm sandbox's supervisor keeps (it drops them all in each command it starts):
#: uid and gid changes, a PID namespace per command (CAP_SYS_ADMIN), killing a command
#: running as another uid (CAP_KILL).
SUPERVISOR_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SYS_ADMIN", "CAP_KILL")


@functools.cache
def _system_python() -> tuple[str, list[str]]:
    """The interpreter a warm sandbox's supervisor runs on, and what must be mounted for
    it besides ``/usr``: the system's Python 3.9+ when there is one (nothing to add),
    else the server's own (its installation becomes visible in the sandbox, read-only)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(candidate)
        if real.startswith("/usr/") and os.access(real, os.X_OK):
            check = subprocess.run([real, "-I", "-S", "-c",
                                    "import sys; sys.exit(sys.version_info < (3, 9))"],
                                   capture_output=True, timeout=30, check=False)
            if check.returncode == 0:
                return real, []
    real = os.path.realpath(sys.executable)
    return real, sorted({sys.base_prefix, os.path.dirname(real)})


class SandboxLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Per-process limits inside the sandbox (``None``: no limit). ``memory_mb`` is the
    address space, which JIT runtimes (node) reserve generously: raise it for them."""

    cpu_seconds: int | None = 60
    memory_mb: int | None = 2048
    processes: int | None = 256
    file_mb: int | None = None
    """Largest file a process may write; defaults to the workspace's byte quota."""


class SandboxError(RuntimeError):
    """The sandbox cannot run on this machine (the message says why)."""


class Sandbox(Protocol):
    @property
    def kind(self) -> SandboxKind: ...

    def wrap(self, argv: Sequence[str], workspace: Path, *, owner: int | None,
             network: bool, ro_paths: Sequence[str], limits: SandboxLimits,
             file_bytes: int | None) -> list[str]:
        """The command line running ``argv`` in ``workspace`` (see the module docstring)."""
        ...

    def cwd(self, workspace: Path) -> str:
        """The directory the command starts in, as the command sees it."""
        ...


def rlimits(limits: SandboxLimits, file_bytes: int | None, *,
            per_uid: bool) -> dict[str, tuple[int, int]]:
    """The limits as ``resource`` names and (soft, hard) values."""
    out: dict[str, tuple[int, int]] = {}
    if limits.cpu_seconds is not None:
        # soft limit: SIGXCPU (exit 152, a clear "CPU time limit exceeded"); the hard
        # limit a second later kills what ignores it
        out["RLIMIT_CPU"] = (limits.cpu_seconds, limits.cpu_seconds + 1)
    if limits.memory_mb is not None:
        out["RLIMIT_AS"] = (limits.memory_mb << 20,) * 2
    fsize = limits.file_mb << 20 if limits.file_mb is not None else file_bytes
    if fsize is not None:
        out["RLIMIT_FSIZE"] = (fsize, fsize)
    if limits.processes is not None and per_uid:
        out["RLIMIT_NPROC"] = (limits.processes, limits.processes)
    return out


_PRLIMIT_FLAGS = {"RLIMIT_CPU": "--cpu", "RLIMIT_AS": "--as", "RLIMIT_FSIZE": "--fsize",
                  "RLIMIT_NPROC": "--nproc"}


def _prlimit(limits: SandboxLimits, file_bytes: int | None, *, per_uid: bool) -> list[str]:
    chosen = rlimits(limits, file_bytes, per_uid=per_uid)
    if not chosen:
        return []
    return ["prlimit", *(f"{_PRLIMIT_FLAGS[name]}={soft}:{hard}"
                         for name, (soft, hard) in chosen.items()), "--"]


@dataclass(frozen=True, slots=True)
class NoSandbox:
    kind: SandboxKind = "none"

    def wrap(self, argv: Sequence[str], workspace: Path, *, owner: int | None,
             network: bool, ro_paths: Sequence[str], limits: SandboxLimits,
             file_bytes: int | None) -> list[str]:
        # The process limit is per uid and would count the server's own processes.
        return [*_prlimit(limits, file_bytes, per_uid=False), *argv]

    def cwd(self, workspace: Path) -> str:
        return str(workspace)


def _system_binds() -> list[str]:
    """Read-only ``/usr`` and the top-level directories that point into it (merged /usr)
    or are real directories on older layouts."""
    out = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            out += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            out += ["--ro-bind", top, top]
    return out


@dataclass(frozen=True, slots=True)
class Bwrap:
    """bubblewrap. ``binary``: its path (found on PATH by ``probe``)."""

    binary: str = "bwrap"
    kind: SandboxKind = "bwrap"

    def wrap(self, argv: Sequence[str], workspace: Path, *, owner: int | None,
             network: bool, ro_paths: Sequence[str], limits: SandboxLimits,
             file_bytes: int | None) -> list[str]:
        if owner is not None:
            # Root: bubblewrap mounts as root (so the workspace root needs no 'x' bit for
            # others) without a user namespace, and the command drops to the owner's uid
            # inside, with no capabilities left and no way to regain any.
            drop = ["setpriv", f"--reuid={owner}", f"--regid={owner}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        else:
            drop = []
        args = self._box(workspace, as_root=owner is not None, network=network,
                         ro_paths=ro_paths, caps=("CAP_SETUID", "CAP_SETGID"))
        return [*args, *drop, *_prlimit(limits, file_bytes, per_uid=owner is not None), *argv]

    def supervisor(self, workspace: Path, *, network: bool, ro_paths: Sequence[str],
                   control_fd: int) -> list[str]:
        """The command line of a warm sandbox for a root server: bubblewrap running
        ``sandbox_supervisor`` (as root inside, with ``SUPERVISOR_CAPS`` only), which
        starts each command as the workspace's uid (``warm_sandbox``)."""
        python, extra = _system_python()
        args = self._box(workspace, as_root=True, network=network,
                         ro_paths=[*ro_paths, *extra], caps=SUPERVISOR_CAPS)
        from . import sandbox_supervisor

        source = Path(sandbox_supervisor.__file__).read_text()
        return [*args, python, "-I", "-S", "-c", source, str(control_fd)]

    def _box(self, workspace: Path, *, as_root: bool, network: bool,
             ro_paths: Sequence[str], caps: Sequence[str]) -> list[str]:
        """bubblewrap with its namespaces and mounts, up to the ``--`` before the command."""
        if as_root:
            unshare = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                       "--unshare-cgroup-try"]
            for cap in caps:
                unshare += ["--cap-add", cap]
        else:
            unshare = ["--unshare-all"]
        if network:
            unshare = [u for u in unshare if u != "--unshare-net"] + ["--share-net"]
        # Directories bwrap creates are 0700 root's: the dropped uid needs to enter them.
        args = [self.binary, *unshare, "--die-with-parent", "--new-session", *_system_binds(),
                "--perms", "0755", "--dir", "/etc"]
        for path in (*_ETC, *(_ETC_NETWORK if network else ())):
            args += ["--ro-bind-try", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        made = {"/", "/etc", "/usr"}
        for path in ro_paths:
            for parent in reversed(Path(path).parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
        return [*args, "--bind", str(workspace), SANDBOX_HOME, "--chdir", SANDBOX_HOME, "--"]

    def cwd(self, workspace: Path) -> str:
        return str(workspace)  # bwrap itself starts anywhere; --chdir moves the command


@functools.cache
def probe(binary: str = "bwrap") -> Bwrap:
    """A working bubblewrap, or ``SandboxError`` saying what is missing: the binary, or
    the namespaces it needs (a container without user namespaces, say)."""
    path = shutil.which(binary)
    if path is None:
        raise SandboxError(f"bubblewrap ({binary!r}) is not installed (Debian/Ubuntu: "
                           "apt-get install bubblewrap), or set `sandbox: none`")
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            raise SandboxError(f"{tool!r} (util-linux) is needed by the sandbox")
    box = Bwrap(path)
    with _scratch() as ws:
        owner = sandbox_uid(ws.name) if os.geteuid() == 0 else None
        if owner is not None:
            os.chown(ws, owner, owner)
        argv = box.wrap(["/bin/sh", "-c", "echo ok > probe"], ws, owner=owner,
                        network=False, ro_paths=(), limits=SandboxLimits(), file_bytes=None)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SandboxError(f"bubblewrap does not start: {e}") from None
        if done.returncode != 0 or not (ws / "probe").exists():
            err = done.stderr.decode(errors="replace").strip()[:300]
            raise SandboxError(f"bubblewrap does not work here: {err or done.returncode}")
    return box


class _scratch:
    """A temporary directory removed on exit (tempfile's would be owned by the caller,
    the probe needs one the dropped uid can write)."""

    def __enter__(self) -> Path:
        import tempfile

        self.path = Path(tempfile.mkdtemp(prefix="dragoman-probe-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


#: Sandboxed processes of a root server run as a uid in this range, one per workspace.
UID_BASE = 200_000
UID_SPAN = 500_000


def sandbox_uid(name: str) -> int:
    """The uid owning a workspace, from its (hashed) directory name: stable across
    restarts and workers, distinct per workspace with overwhelming probability."""
    digest = hashlib.sha256(name.encode()).digest()
    return UID_BASE + int.from_bytes(digest[:8], "big") % UID_SPAN


def make_sandbox(kind: SandboxKind | None) -> Sandbox:
    """The configured runner: ``None`` means bubblewrap, which must work (a start-up
    error otherwise); ``none`` is the unsandboxed runner."""
    if kind == "none":
        return NoSandbox()
    return probe()


class ThreadSandboxes(Protocol):
    """The threads' warm sandboxes (``warm_sandbox.WarmPool``), as a policy holds them."""

    async def stop(self, root: Path) -> None:
        """Stop the warm sandbox of the workspace at ``root``, if one runs."""

    async def aclose(self) -> None:
        """Stop them all."""


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What an agent's processes get: the runner, network access, extra read-only paths
    (an interpreter's packages, a CLI's install directory) and limits; ``warm``: the
    threads' warm sandboxes, where ``bash`` runs (``warm_sandbox``; None: a cold sandbox
    per command)."""

    sandbox: Sandbox
    network: bool = False
    ro_paths: tuple[str, ...] = ()
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    warm: ThreadSandboxes | None = field(default=None, compare=False)

    def command(self, argv: Sequence[str], workspace: Path, *, owner: int | None = None,
                file_bytes: int | None = None) -> list[str]:
        return self.sandbox.wrap(argv, workspace, owner=owner, network=self.network,
                                 ro_paths=self.ro_paths, limits=self.limits,
                                 file_bytes=file_bytes)

    def home(self, workspace: Path) -> str:
        """The workspace's path as the sandboxed process sees it."""
        return SANDBOX_HOME if self.sandbox.kind == "bwrap" else str(workspace)


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children first), from ``/proc``: a sandbox's init runs
    in a session of its own, so killing the caller's process group does not reach it, and
    the parent-death signal bubblewrap sets is not something to rely on alone."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may hold spaces and parentheses
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out
